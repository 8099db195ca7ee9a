"""Per-layer summary of a model: output shapes, parameters and FLOPs.

Like torchsummary's table, plus the forward-pass cost per example. Cost is
counted the usual way for CNN papers: multiply-accumulates (MACs) of
convolution, dense and recurrent layers, and FLOPs = 2 x MACs. Pooling,
normalization and activations add well under 1% and are left out. For
variable-length sequence models the cost is per token.
"""

import dataclasses
import math

import keras


@dataclasses.dataclass
class LayerRow:
    """One line of the summary table."""

    name: str
    kind: str
    output_shape: str
    params: int
    macs: int


@dataclasses.dataclass
class ModelSummary:
    """A model's table plus totals."""

    name: str
    rows: list
    total_params: int
    trainable_params: int
    non_trainable_params: int
    macs: int

    @property
    def flops(self):
        return 2 * self.macs


def _prod(dims):
    return math.prod(1 if d is None else d for d in dims)


def _count(weights):
    return sum(_prod(w.shape) for w in weights)


def _layer_macs(layer):
    out_shape = _output_shape(layer)
    if isinstance(layer, keras.layers.Conv2D) and not isinstance(
        layer, keras.layers.Conv2DTranspose
    ):
        kh, kw = layer.kernel_size
        cin = layer.kernel.shape[2]
        return _prod(out_shape[1:]) * kh * kw * cin
    if isinstance(layer, keras.layers.Dense):
        return _prod(out_shape[1:]) * layer.kernel.shape[0]
    if isinstance(layer, keras.layers.Bidirectional):
        return _recurrent_macs(layer.forward_layer) + _recurrent_macs(
            layer.backward_layer
        )
    if isinstance(layer, keras.layers.RNN):
        return _recurrent_macs(layer)
    return 0


def _recurrent_macs(layer):
    """MACs per time step of an LSTM/GRU/SimpleRNN layer."""
    cell = layer.cell
    kernel, recurrent = cell.kernel, cell.recurrent_kernel
    return _prod(kernel.shape) + _prod(recurrent.shape)


def _output_shape(layer):
    try:
        shape = layer.output.shape
    except (AttributeError, ValueError):
        return ()
    return tuple(shape)


def _format_shape(layer):
    output = layer.output
    if isinstance(output, (list, tuple)):
        return ", ".join(str(tuple(o.shape)) for o in output)
    return str(tuple(output.shape))


def summarize(model):
    """Returns a `ModelSummary` of a built Functional model."""
    rows = []
    for layer in model.layers:
        rows.append(
            LayerRow(
                name=layer.name,
                kind=type(layer).__name__,
                output_shape=_format_shape(layer),
                params=_count(layer.weights),
                macs=_layer_macs(layer),
            )
        )
    trainable = _count(model.trainable_weights)
    non_trainable = _count(model.non_trainable_weights)
    return ModelSummary(
        name=model.name,
        rows=rows,
        total_params=trainable + non_trainable,
        trainable_params=trainable,
        non_trainable_params=non_trainable,
        macs=sum(r.macs for r in rows),
    )


def human(n, unit=""):
    """Formats 1234567 as '1.23M'."""
    for threshold, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= threshold:
            return f"{n / threshold:.2f}{suffix}{unit}"
    return f"{n}{unit}"


def format_summary(summary, width=88):
    """Renders the summary as a fixed-width text table."""
    header = ("Layer (type)", "Output shape", "Param #", "MACs")
    lines = ["=" * width]
    lines.append(
        f"{header[0]:<40}{header[1]:<24}{header[2]:>12}{header[3]:>12}"
    )
    lines.append("=" * width)
    for r in summary.rows:
        label = f"{r.name} ({r.kind})"
        lines.append(
            f"{label[:39]:<40}{r.output_shape[:23]:<24}"
            f"{r.params:>12,}{human(r.macs):>12}"
        )
    lines.append("=" * width)
    lines.append(f"Total params: {summary.total_params:,}")
    lines.append(f"Trainable params: {summary.trainable_params:,}")
    lines.append(f"Non-trainable params: {summary.non_trainable_params:,}")
    lines.append(
        f"Forward pass per example: {human(summary.macs)} MACs, "
        f"{human(summary.flops)}FLOPs"
    )
    lines.append("=" * width)
    return "\n".join(lines)
