"""`kerascnn export` and `kerascnn inspect`.

Both parse options, call one library function (`kerascnn.export.export`,
`kerascnn.export.inspect.inspect_artifact`) and print. The format and
quantization choices come from the format registry
(`kerascnn.export.formats`). `kerascnn.export` imports no TensorFlow
(its modules import it inside the functions that convert or run a model),
so `--help` stays fast; a `KerasCNNError` becomes one line on stderr and
exit code 1.
"""

import json
import os
import sys
import warnings

import click

from cli.common import (
    POSITIVE_INT,
    command_line_words,
    quiet_tensorflow,
    skip_bad_option,
    user_errors,
)
from kerascnn import tasks
from kerascnn.export import ExportConfig, export, formats
from kerascnn.export.examples import SyntheticVerificationWarning
from kerascnn.export.inspect import format_text, inspect_artifact


class RegistryChoice(click.Choice):
    """A `click.Choice` read from the format registry when it is used, so
    a format registered after this module is imported is a choice too."""

    def __init__(self, names):
        self._names = names
        super().__init__(names())

    @property
    def choices(self):
        return self._names()

    @choices.setter
    def choices(self, value):  # click.Choice.__init__ assigns it
        pass


def _extras():
    """`onnx: kerascnn[onnx], openvino: kerascnn[openvino]`."""
    return ", ".join(
        f"{f.name}: kerascnn[{f.extra}]"
        for f in formats.all_formats()
        if f.extra
    )


@click.command(
    "export", short_help="Export a run (SavedModel, TFLite, ONNX, OpenVINO)."
)
@click.argument("source", type=click.Path())
@click.option(
    "-f",
    "--format",
    "format_name",
    type=RegistryChoice(formats.format_names),
    default=None,
    help="Artifact format [default: saved_model; tflite with --tflite "
    f"or --quantize]. Optional extras: {_extras()}.",
)
@click.option(
    "--tflite",
    "tflite",
    is_flag=True,
    help="Write a .tflite file instead of a SavedModel (--format tflite).",
)
@click.option(
    "-q",
    "--quantize",
    type=RegistryChoice(formats.quantize_modes),
    default="none",
    show_default=True,
    help="TFLite quantization (implies --tflite when not none).",
)
@click.option(
    "-b",
    "--base-dir",
    default="saved_models",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Export root; models go to <base-dir>/<name>/.",
)
@click.option(
    "-n",
    "--name",
    "--export-name",
    "name",
    help="Model folder name [default: model name].",
)
@click.option(
    "-v",
    "--version",
    type=POSITIVE_INT,
    help="SavedModel version [default: highest + 1].",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    help="TFLite/ONNX file (OpenVINO: folder) [default: <base-dir>/<name>/"
    "<name>[-<quantize>].tflite, <name>.onnx, openvino/].",
)
@click.option(
    "--overwrite/--no-overwrite",
    default=False,
    help="Replace an existing version or file.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Add a version even when the folder's newest version has other "
    "classes or inputs (clients of a running server see the change).",
)
@click.option(
    "--verify/--no-verify",
    default=True,
    show_default=True,
    help="Compare with Keras on real test examples (a data set without a "
    "test split: its held-out validation split) first.",
)
@click.option(
    "--verify-examples",
    type=POSITIVE_INT,
    default=500,
    show_default=True,
    help="Test examples to verify on.",
)
@click.option(
    "--max-accuracy-drop",
    type=click.FloatRange(min=0),
    default=1.0,
    show_default=True,
    help="Allowed accuracy loss of a quantized model (pp).",
)
@click.option(
    "--calibration-examples",
    type=POSITIVE_INT,
    default=500,
    show_default=True,
    help="Training examples to calibrate int8 on.",
)
@click.option(
    "--int8-io/--float-io",
    default=False,
    show_default=True,
    help="int8 model input/output tensors (int8 only).",
)
@click.option(
    "--int8-granularity",
    type=click.Choice(["auto", "per-tensor", "per-channel"]),
    default="auto",
    show_default=True,
    help="int8 weight scales: per tensor (smallest), per channel "
    "(most accurate), or auto: per tensor if it passes "
    "verification, else per channel.",
)
@click.option(
    "--max-length",
    type=POSITIVE_INT,
    help="Tagger TFLite: fixed sequence length [default: 64].",
)
@click.option(
    "--allow-flex", is_flag=True, help="TFLite: allow TensorFlow (Flex) ops."
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False),
    help="Data root for verification and calibration.",
)
@skip_bad_option(what="verify without them")
@click.option(
    "--allow-synthetic",
    is_flag=True,
    help="Verify on random inputs (max diff only, no accuracy) when the "
    "test data cannot be read, instead of failing.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print the result as JSON."
)
def export_command(
    source, format_name, tflite, int8_granularity, as_json, **settings
):
    """Export SOURCE (a run directory or a .keras file).

    \b
    By default writes a SavedModel to <base-dir>/<name>/<version>/ with
    signatures serving_default (float images), predict_pixels (raw pixel
    values), predict_images (encoded JPEG/PNG bytes) and metadata; the
    slot tagger gets serving_default (token ids) and predict_sentences.
    With --tflite writes <name>[-<quantize>].tflite beside the versions;
    --format onnx writes <name>.onnx, --format openvino the IR folder
    openvino/ (each run in its own runtime to verify). The artifact is
    verified against Keras, then moved into place atomically; a failed
    export leaves nothing behind. MODEL_CARD.md and model_card.json
    beside the versions are updated by every export.
    """
    quiet_tensorflow()
    if format_name is None:
        tflite = tflite or settings["quantize"] != "none" or settings["output"]
        format_name = "tflite" if tflite else "saved_model"
    elif tflite and format_name != "tflite":
        raise click.BadParameter(
            f"--tflite contradicts --format {format_name}.",
            param_hint="'--format'",
        )
    with user_errors():
        # Every other option is an ExportConfig field of the same name.
        config = ExportConfig(
            format=format_name,
            int8_granularity=int8_granularity.replace("-", "_"),
            command=_command_line(sys.argv),
            **settings,
        )
        # A missing optional package: one line, before anything else.
        formats.get_format(config.format).require()
        if not as_json:
            click.echo(_plan(source, config), err=True)
        result = _export_showing_warnings(source, config)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2, default=str))
        return
    if not result.written:
        click.echo(f"Not exported again: {command_line_words(result.note)}")
        return
    if result.note:
        click.echo(f"note: {command_line_words(result.note)}", err=True)
    if result.verification is not None:
        click.echo(result.verification.table())
    if result.calibrated_on:
        click.echo(f"int8 calibrated on {result.calibrated_on}")
    where = f"version {result.version} " if result.version else ""
    opset = f", opset {result.opset}" if result.opset else ""
    click.echo(
        f"Exported {result.name} {where}to {result.path} "
        f"({result.size_bytes:,} bytes{opset})"
    )
    if result.card_path:
        click.echo(f"Model card: {result.card_path}")


def _command_line(argv):
    """The `kerascnn ...` line the model card records, when run as the
    console script or `python -m cli.main` (else the library's own)."""
    if os.path.basename(argv[0]) not in ("kerascnn", "main.py"):
        return None
    return " ".join(["kerascnn", *argv[1:]])


def _plan(source, config):
    """The line printed while an export converts and verifies."""
    what = formats.get_format(config.format).title
    steps = ["converting"]
    if config.verify:
        steps.append(f"verifying on up to {config.verify_examples} examples")
    return f"Exporting {source} as {what} ({', '.join(steps)})..."


def _export_showing_warnings(source, config):
    """Runs `export` with the model's task; a synthetic-verification
    warning becomes one `Warning:` line on stderr (other warnings pass
    through)."""
    task = tasks.task_of(source)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SyntheticVerificationWarning)
        result = export(source, task=task, config=config)
    for w in caught:
        if issubclass(w.category, SyntheticVerificationWarning):
            click.echo(f"Warning: {w.message}", err=True)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return result


@click.command(
    "inspect", short_help="Show an exported model's signatures and card."
)
@click.argument("path", type=click.Path(exists=True))
@click.option(
    "--json", "as_json", is_flag=True, help="Print machine-readable JSON."
)
@click.option(
    "--tensors",
    "all_tensors",
    is_flag=True,
    help="TFLite: list every tensor with its quantization.",
)
def inspect_command(path, as_json, all_tensors):
    """Show signatures, tensors and metadata of PATH.

    PATH is a SavedModel folder (a version, or a model folder: the highest
    version), a .tflite or .onnx file, or an OpenVINO IR (.xml or its
    folder). The model card beside the versions is shown when present.
    """
    quiet_tensorflow()
    with user_errors():
        info = inspect_artifact(path)
    if as_json:
        click.echo(json.dumps(info, indent=2, default=str))
    else:
        click.echo(format_text(info, all_tensors=all_tensors))
