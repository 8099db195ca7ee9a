"""Checks an exported artifact against the Keras model on real examples.

Every export runs the same N test examples through Keras and through the
artifact in its own runtime (a SavedModel's `serving_default`, the
`.tflite` file in the LiteRT interpreter, an `.onnx` file in
`onnxruntime.InferenceSession`, an OpenVINO IR compiled by
`openvino.Core().compile_model`) and reports accuracy, the largest
absolute difference of the output probabilities and batch-1 latency.
`check` turns a report into an `ExportError` when a float artifact drifts
(more than 1e-4 for a SavedModel, ONNX or OpenVINO, 1e-3 for float
TFLite) or a quantized one loses more than `max_accuracy_drop` percentage
points.

Examples come from `kerascnn.export.examples` (the test split, or arrays
`(x, y)` a caller passes); the report records which (`verified_on`).
Which outputs are compared and how they are scored is the model's task's
(`Task.compared_outputs`, `Task.verification_scores`): an image
classifier's one float output by top-1 accuracy by default; the slot
tagger's by conlleval span F1 (`slot_f1`) and token accuracy
(`kerascnn.tasks.sequence_tagging.export`).
"""

import dataclasses
import os
import time

from kerascnn.errors import ExportError
from kerascnn.export import openvino as _openvino
from kerascnn.lazy import LazyModule

np = LazyModule("numpy")
tf = LazyModule("tensorflow")

SAVED_MODEL_TOLERANCE = 1e-4
TFLITE_FLOAT_TOLERANCE = 1e-3
LATENCY_EXAMPLES = 20


@dataclasses.dataclass
class ArtifactResult:
    """One row of the verification table."""

    artifact: str
    size_bytes: int = None
    accuracy: float = None
    max_diff: float = None
    latency_ms: float = None
    slot_f1: float = None

    def to_dict(self):
        d = dataclasses.asdict(self)
        if d["slot_f1"] is None:
            del d["slot_f1"]
        return d


@dataclasses.dataclass
class VerifyReport:
    """Keras reference row, artifact row and what was checked."""

    keras: ArtifactResult
    artifact: ArtifactResult
    num_examples: int
    tolerance: float = None
    max_accuracy_drop: float = None
    verified_on: str = None

    @property
    def accuracy_drop(self):
        if self.keras.accuracy is None or self.artifact.accuracy is None:
            return None
        return 100.0 * (self.keras.accuracy - self.artifact.accuracy)

    def to_dict(self):
        return {
            "keras": self.keras.to_dict(),
            "artifact": self.artifact.to_dict(),
            "num_examples": self.num_examples,
            "tolerance": self.tolerance,
            "max_accuracy_drop": self.max_accuracy_drop,
            "accuracy_drop_pp": self.accuracy_drop,
            "verified_on": self.verified_on,
        }

    def table(self):
        """A small fixed-width table, one row per artifact."""
        head = ("artifact", "size", "accuracy", "max diff", "latency/ex")
        spans = self.keras.slot_f1 is not None
        if spans:
            head = (*head[:3], "span F1", *head[3:])
        rows = [head] + [
            (
                r.artifact,
                _size(r.size_bytes),
                "-" if r.accuracy is None else f"{100 * r.accuracy:.2f}%",
                *(
                    ["-" if r.slot_f1 is None else f"{100 * r.slot_f1:.2f}"]
                    if spans
                    else []
                ),
                "-" if r.max_diff is None else f"{r.max_diff:.2e}",
                "-" if r.latency_ms is None else f"{r.latency_ms:.3f} ms",
            )
            for r in (self.keras, self.artifact)
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
        lines = [
            "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip()
            for row in rows
        ]
        lines.append(
            f"(verified on {self.verified_on})"
            if self.verified_on
            else f"({self.num_examples} examples)"
        )
        return "\n".join(lines)


def _size(num_bytes):
    if num_bytes is None:
        return "-"
    for unit in ("B", "KiB", "MiB"):
        if num_bytes < 1024 or unit == "MiB":
            return (
                f"{num_bytes:.0f} {unit}"
                if unit == "B"
                else (f"{num_bytes:.1f} {unit}")
            )
        num_bytes /= 1024


def disk_size(path):
    """Bytes on disk of a file or a directory tree."""
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(
        os.path.getsize(os.path.join(root, f))
        for root, _, files in os.walk(path)
        for f in files
    )


# === Runners: each maps a batch of model inputs to the runtime's outputs ===
# (an array, or a dict of arrays named as that runtime names them; the
# model's task picks what is compared: `Task.compared_outputs`).


def only_float_output(outputs):
    """The one float array of `outputs` (a single-output model: an image
    classifier's probabilities in any runtime)."""

    if not isinstance(outputs, dict):
        return np.asarray(outputs)
    floats = [
        np.asarray(v)
        for v in outputs.values()
        if np.asarray(v).dtype.kind == "f"
    ]
    if len(floats) != 1:
        raise ExportError(
            "Verification compares a model's one float output; this one "
            f"has {len(floats)}: {sorted(outputs)}. Its task must say "
            "which to compare (Task.compared_outputs)."
        )
    return floats[0]


def _numpy(outputs):

    if isinstance(outputs, dict):
        return {k: np.asarray(v) for k, v in outputs.items()}
    return np.asarray(outputs)


def keras_runner(model):
    def run(x):
        return _numpy(model.predict_on_batch(x))

    return run


def saved_model_runner(path):

    loaded = tf.saved_model.load(path)
    fn = loaded.signatures["serving_default"]
    key = next(iter(fn.structured_input_signature[1]))

    def run(x):
        out = fn(**{key: tf.constant(x)})
        return {k: v.numpy() for k, v in out.items()}

    run.loaded = loaded
    return run


def tflite_runner(tflite_bytes, num_threads=None):
    """Runs a batch through the LiteRT interpreter one example at a time."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(
        model_content=bytes(tflite_bytes),
        num_threads=num_threads or os.cpu_count(),
    )
    runner = interpreter.get_signature_runner()
    ((in_name, in_detail),) = runner.get_input_details().items()
    out_details = runner.get_output_details()

    def quantize(x):
        scale, zero = in_detail["quantization"]
        if in_detail["dtype"] in (np.int8, np.uint8) and scale:
            info = np.iinfo(in_detail["dtype"])
            q = np.round(x / scale + zero)
            return np.clip(q, info.min, info.max).astype(in_detail["dtype"])
        return x.astype(in_detail["dtype"])

    def dequantize(name, y):
        scale, zero = out_details[name]["quantization"]
        if y.dtype in (np.int8, np.uint8) and scale:
            return (y.astype(np.float32) - zero) * scale
        return y

    def run(x):
        rows = [
            runner(**{in_name: quantize(x[i : i + 1])}) for i in range(len(x))
        ]
        return {
            k: np.concatenate([dequantize(k, r[k]) for r in rows])
            for k in rows[0]
        }

    run.interpreter = interpreter
    return run


def _runtime_error(runtime, error):
    text = str(error).strip()
    first = text.splitlines()[0] if text else ""
    return ExportError(
        f"Verification failed: {runtime} cannot load the converted model "
        f"({type(error).__name__}: {first}); nothing was written."
    )


def onnx_runner(onnx_bytes, num_threads=None):
    """Runs batches through `onnxruntime.InferenceSession` (CPU)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if num_threads:
        options.intra_op_num_threads = int(num_threads)
    try:
        session = ort.InferenceSession(
            bytes(onnx_bytes), options, providers=["CPUExecutionProvider"]
        )
    except Exception as e:  # InvalidGraph, NotImplemented, ...
        raise _runtime_error("ONNX Runtime", e) from None
    (feed,) = session.get_inputs()
    dtype = np.int32 if "int" in feed.type else np.float32
    names = [o.name for o in session.get_outputs()]

    def run(x):
        values = session.run(names, {feed.name: np.asarray(x, dtype)})
        return dict(zip(names, values))

    run.session = session
    return run


def openvino_runner(xml, num_threads=None):
    """Runs batches through `openvino.Core().compile_model` (CPU, f32)."""

    try:
        compiled = _openvino.compile_model(xml, num_threads)
    except Exception as e:
        raise _runtime_error("OpenVINO", e) from None
    (feed,) = compiled.inputs
    dtype = np.int32 if feed.get_element_type().is_integral() else np.float32
    request = compiled.create_infer_request()

    def run(x):
        results = request.infer({0: np.asarray(x, dtype)})
        out = {}
        for port, value in results.items():
            for name in port.get_names():
                out[name] = np.array(value)
        return out

    run.compiled = compiled
    return run


# === Measuring ===


def top1_accuracy(probabilities, labels):
    """The share of examples whose most probable class is the label."""

    pred = np.argmax(probabilities, axis=-1)
    return float(np.mean(pred == np.asarray(labels).reshape(-1)))


def padding_mask(x):
    """Where integer model inputs `(N, T)` (token ids) are real tokens
    (not 0 padding); `None` for other inputs. Per-token outputs there
    are the only ones compared and scored."""

    x = np.asarray(x)
    return x != 0 if x.ndim == 2 and x.dtype.kind in "iu" else None


def max_difference(reference, outputs, mask=None):
    """Largest |a - b| over main outputs (where `mask`, the real tokens
    of `padding_mask`) and second outputs (intents)."""

    (ref, ref_intent), (out, out_intent) = reference, outputs
    diff = np.abs(ref - out)
    if diff.ndim == 3 and mask is not None:
        diff = diff[mask]
    worst = float(diff.max()) if diff.size else 0.0
    if ref_intent is not None and out_intent is not None:
        worst = max(worst, float(np.abs(ref_intent - out_intent).max()))
    return worst


def batch_latency_ms(run, x, repeats=LATENCY_EXAMPLES):
    """Median milliseconds for one batch-1 call (after one warm-up)."""

    samples = [x[i % len(x) : i % len(x) + 1] for i in range(repeats)]
    run(samples[0])
    times = []
    for sample in samples:
        start = time.perf_counter()
        run(sample)
        times.append(time.perf_counter() - start)
    return 1000.0 * float(np.median(times))


def _predict(run, x, select, batch_size=256):
    """`select(run(batch))` over `x` in batches, concatenated."""

    parts = [
        select(run(x[i : i + batch_size])) for i in range(0, len(x), batch_size)
    ]
    main = np.concatenate([p[0] for p in parts])
    second = (
        None if parts[0][1] is None else np.concatenate([p[1] for p in parts])
    )
    return main, second


def compare(
    model,
    run,
    x,
    y,
    artifact_name,
    size_bytes,
    *,
    task,
    keras_outputs=None,
    batch_size=256,
    verified_on=None,
):
    """Runs Keras and the artifact on `(x, y)`; returns a `VerifyReport`.

    `task` (the model's `Task`) picks the outputs compared
    (`compared_outputs`) and scores them against `y`
    (`verification_scores`); `verified_on` says what `x` is
    (`examples.Examples.description`).
    """
    select = task.compared_outputs
    keras_run = keras_runner(model)
    reference = keras_outputs or _predict(keras_run, x, select)
    outputs = _predict(run, x, select, batch_size)
    rows = []
    for name, main, runner in (
        ("keras", reference[0], keras_run),
        (artifact_name, outputs[0], run),
    ):
        scores = {} if y is None else task.verification_scores(main, y, x)
        rows.append(
            ArtifactResult(
                name,
                latency_ms=batch_latency_ms(runner, x),
                **scores,
            )
        )
    keras_row, row = rows
    row.size_bytes = size_bytes
    row.max_diff = max_difference(reference, outputs, padding_mask(x))
    return VerifyReport(
        keras_row, row, num_examples=len(x), verified_on=verified_on
    )


def check(report, tolerance=None, max_accuracy_drop=None):
    """Raises `ExportError` if the artifact drifted or lost accuracy."""
    report.tolerance = tolerance
    report.max_accuracy_drop = max_accuracy_drop
    row = report.artifact
    if tolerance is not None and row.max_diff > tolerance:
        raise ExportError(
            f"Verification failed: {row.artifact} differs from Keras by "
            f"{row.max_diff:.3g} (tolerance {tolerance:g}) on "
            f"{report.num_examples} examples; nothing was written."
        )
    drop = report.accuracy_drop
    if (
        max_accuracy_drop is not None
        and drop is not None
        and (drop > max_accuracy_drop)
    ):
        raise ExportError(
            f"Verification failed: {row.artifact} accuracy "
            f"{100 * row.accuracy:.2f}% is {drop:.2f} pp below Keras "
            f"({100 * report.keras.accuracy:.2f}%; allowed drop "
            f"{max_accuracy_drop:g} pp); nothing was written."
        )
    return report
