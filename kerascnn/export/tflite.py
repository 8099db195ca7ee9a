"""TFLite export with builtin ops only, so the file runs on mobile.

Quantization modes:
    `none`     float32 weights and activations.
    `dynamic`  int8 weights, float activations (dynamic-range).
    `float16`  float16 weights.
    `int8`     full-integer weights and activations, calibrated on real
               training examples; input/output int8 with `int8_io=True`,
               else float32 (quantize/dequantize ops at the edges).

Inputs have batch size 1, the shape a mobile app feeds. The model a
task converts is the task's (`Task.tflite_model`): the model as it is
(`model_as_is`), or another fixed-shape model (the slot tagger's
fixed-length, unrolled one: `kerascnn.tasks.sequence_tagging.tflite`).

Metadata travels twice: as the flatbuffer `metadata` entry
`kerascnn_metadata` (JSON bytes, written with TensorFlow's own schema
bindings, no tflite_support needed) and as a sidecar `<file>.json`.
"""

import dataclasses
import json
import tempfile

from kerascnn import validation as v
from kerascnn.errors import ExportError
from kerascnn.lazy import LazyModule

keras = LazyModule("keras")
np = LazyModule("numpy")
tf = LazyModule("tensorflow")

QUANTIZE_MODES = ("none", "dynamic", "float16", "int8")
METADATA_NAME = "kerascnn_metadata"


# === The model TFLite converts (its task's `Task.tflite_model`) ===


@dataclasses.dataclass
class TFLiteModel:
    """A fixed-shape Keras model to convert and what the file says of it.

    Attributes:
        model: the `keras.Model` to convert.
        metadata: the metadata dict the file carries.
        input_shape, input_dtype, input_name: the input without batch
            axis; `None` for the model's own (named `images`).
        length: the fixed sequence length examples are padded or cut to,
            or `None`.
    """

    model: object
    metadata: dict
    input_shape: tuple = None
    input_dtype: str = None
    input_name: str = None
    length: int = None


def model_as_is(model, meta, config):
    """The model itself at its own input (image models)."""
    if config.max_length is not None:
        raise ExportError(
            "`max_length` applies to sequence models (the slot tagger) "
            f"only. Received: max_length={config.max_length!r}"
        )
    return TFLiteModel(model, meta.to_dict())


IMAGE_INPUT_NAME = "images"  # as in the SavedModel's signatures

# === Conversion ===


def _write_intermediate(model, input_shape, dtype, path, input_name):
    """Traces the model at batch 1 into a SavedModel with one signature.

    TFLite converts Keras 3 models reliably from a SavedModel (variables
    are frozen there); `from_concrete_functions` loses them.
    """

    def serve(x):
        outputs = model(x, training=False)
        if isinstance(outputs, dict):
            return {
                k: v if v.dtype.is_integer else tf.cast(v, tf.float32)
                for k, v in outputs.items()
            }
        return {"probabilities": tf.cast(outputs, tf.float32)}

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        "serving_default",
        serve,
        input_signature=[
            tf.TensorSpec((1, *input_shape), dtype, name=input_name)
        ],
    )
    archive.write_out(path, verbose=False)


def convert(
    model,
    quantize="none",
    representative_data=None,
    int8_io=False,
    allow_flex=False,
    input_shape=None,
    input_dtype=None,
    input_name=None,
    per_channel=True,
):
    """Converts a fixed-shape Keras model to TFLite flatbuffer bytes.

    Args:
        model: a built `keras.Model` with a fully defined input shape.
        quantize: one of `QUANTIZE_MODES`. Defaults to `"none"`.
        representative_data: array of model inputs (no batch of 1 needed)
            for `int8` calibration.
        int8_io: int8 input and output tensors (`int8` mode only;
            `ExportConfig.validate` rejects it with other modes).
        allow_flex: also allow TensorFlow (Flex) ops. Defaults to `False`.
        input_shape, input_dtype, input_name: the input without batch
            axis, for models without a symbolic input (the fixed-length
            tagger). Default to the model's own shape and dtype, named
            `images` like the SavedModel's input.
        per_channel: int8 convolutions get one scale per output channel;
            `False` uses one scale per tensor (smaller file: each scale
            also carries an int64 zero point). Defaults to `True`.

    Returns:
        The `.tflite` bytes.
    """

    v.check_choice("quantize", quantize, QUANTIZE_MODES, error=ExportError)
    if input_shape is None:
        input_shape = tuple(model.input_shape[1:])
        input_dtype = model.inputs[0].dtype
        # The SavedModel's name (`images`), not the Keras layer's (`image`),
        # so a client sets one input name for every format.
        input_name = IMAGE_INPUT_NAME
    dtype = tf.as_dtype(input_dtype or "float32")
    with tempfile.TemporaryDirectory() as tmp:
        _write_intermediate(
            model, input_shape, dtype, tmp, input_name or "input"
        )
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
        _configure(
            converter, quantize, representative_data, int8_io, allow_flex, dtype
        )
        if quantize == "int8" and not per_channel:
            converter._experimental_disable_per_channel = True
        try:
            return converter.convert()
        except Exception as e:  # ConverterError and friends
            raise _conversion_error(e, quantize, allow_flex) from None


def _conversion_error(error, quantize, allow_flex):
    """One line: the converter's first line, and the Flex hint."""
    text = str(error).strip()
    first = text.splitlines()[0] if text else ""
    hint = (
        ""
        if allow_flex
        else (
            " Some op has no builtin TFLite kernel; --allow-flex adds "
            "TensorFlow (Flex) ops, which need the Flex delegate on device."
        )
    )
    return ExportError(f"TFLite conversion ({quantize}) failed: {first}{hint}")


def _configure(
    converter, quantize, representative_data, int8_io, allow_flex, dtype
):

    ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    converter.exclude_conversion_metadata = True
    if quantize != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if quantize == "int8":
        if representative_data is None or len(representative_data) == 0:
            raise ExportError(
                "int8 quantization needs calibration examples from the "
                "training data; none were found."
            )
        samples = np.asarray(representative_data)

        def representative_dataset():
            for sample in samples:
                yield [np.asarray(sample[None], dtype.as_numpy_dtype)]

        converter.representative_dataset = representative_dataset
        ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        # One scale per dense layer instead of one per output unit: the
        # per-unit scales and int64 zero points of the fully connected
        # layers make a small int8 model (LeNet) larger for no accuracy
        # we could measure (benchmarks/README.md, "Measurements behind
        # design choices"); convolutions stay per channel.
        converter._experimental_disable_per_channel_quantization_for_dense_layers = (  # noqa: E501
            True
        )
        if int8_io:
            if dtype.is_integer:
                raise ExportError(
                    "--int8-io needs a float model input; this model takes "
                    f"{dtype.name} (token ids). Use float I/O."
                )
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
    if allow_flex:
        ops.append(tf.lite.OpsSet.SELECT_TF_OPS)
    converter.target_spec.supported_ops = ops


# === Metadata in the flatbuffer ===


def embed_metadata(tflite_bytes, metadata):
    """Adds (or replaces) the `kerascnn_metadata` flatbuffer entry.

    Also trims the converter's fused tensor names (`"a/MatMul;a/Relu;..."`)
    to their first part: about 1 KB of a small model, nothing a runtime
    reads (signatures map names to tensor indices).
    """
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(
        bytearray(tflite_bytes)
    )
    for subgraph in model.subgraphs:
        for tensor in subgraph.tensors:
            if tensor.name and b";" in tensor.name:
                tensor.name = tensor.name.split(b";")[0]
    data = json.dumps(metadata, sort_keys=True).encode("utf-8")
    model.metadata = [
        m for m in (model.metadata or []) if _text(m.name) != METADATA_NAME
    ]
    buffer = schema.BufferT()
    buffer.data = list(data)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = METADATA_NAME
    entry.buffer = len(model.buffers) - 1
    model.metadata.append(entry)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _text(value):
    return value.decode("utf-8") if isinstance(value, bytes) else value


def read_metadata(tflite_bytes):
    """The `kerascnn_metadata` JSON from a `.tflite`, or `None`."""
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.Model.GetRootAsModel(bytearray(tflite_bytes), 0)
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if _text(entry.Name()) == METADATA_NAME:
            data = model.Buffers(entry.Buffer()).DataAsNumpy()
            return json.loads(bytes(data).decode("utf-8"))
    return None
