"""The format registry drives export, the CLI, `inspect` and the card.

A toy format (a `.keras` file beside the versions, run back in Keras) is
registered for a test and removed after it: it must become a `--format`
choice, go through the one stage -> verify -> place driver (converted,
verified in its runtime, placed with its sidecar), be read back by
`inspect`, and put exactly its packages on the model card.
"""

import json
import os

import pytest
from click.testing import CliRunner

from cli.export_cli import export_command, inspect_command
from kerascnn.errors import ExportError
from kerascnn.export import ExportConfig, formats, verify
from kerascnn.export.inspect import inspect_artifact
from tests.helpers import export

TOY = "keras_file"


def _option(command, name):
    return next(p for p in command.params if p.name == name)


def _keras_bytes(job, check, folder):
    """The toy's convert step: the float model as `.keras` bytes."""
    import tempfile

    job.metadata = dict(job.meta.to_dict(), toy={"converted": True})
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        job.model.save(path)
        with open(path, "rb") as f:
            return f.read()


def _load_keras(data_or_path):
    import tempfile

    import keras

    if isinstance(data_or_path, str):
        return keras.saving.load_model(data_or_path)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        with open(path, "wb") as f:
            f.write(data_or_path)
        return keras.saving.load_model(path)


def _prepare(job, data):
    config = job.config
    job.path = config.artifact_path(job.name)
    job.examples = data.verification() if config.verify else None
    job.label = TOY
    job.limits = dict(tolerance=1e-6)


def _toy(calls, shift=0.0, **overrides):
    """An `ExportFormat` whose steps record themselves in `calls`."""

    def convert(job, check, folder):
        calls.append(("convert", folder))
        return _keras_bytes(job, check, folder)

    def runner(artifact):
        calls.append(("runner", type(artifact).__name__))
        model = _load_keras(artifact)
        return lambda x: verify.keras_runner(model)(x) + shift

    def inspect(path):
        calls.append(("inspect", path))
        with open(f"{path}.json") as f:
            metadata = json.load(f)
        return {
            "format": TOY,
            "path": path,
            "signatures": {},
            "metadata": metadata,
        }

    settings = dict(
        name=TOY,
        title="Keras file",
        artifact="a .keras file",
        placement=formats.FILE,
        default_path=lambda model_dir, name, quantize: os.path.join(
            model_dir, f"{name}.keras"
        ),
        prepare=_prepare,
        convert=convert,
        runner=runner,
        size=verify.disk_size,
        inspect=inspect,
        claims=lambda path: os.path.isfile(path) and path.endswith(".keras"),
        quantize_modes=("none", "toy8"),
        packages=("numpy",),
    )
    settings.update(overrides)
    return formats.ExportFormat(**settings)


@pytest.fixture
def toy_format():
    """Registers the toy format for one test; yields `(format, calls)`."""
    calls = []
    registered = formats.register_format(_toy(calls))
    yield registered, calls
    formats.unregister_format(TOY)


def test_builtin_formats_come_from_the_registry():
    names = formats.format_names()
    assert names == ("saved_model", "tflite", "onnx", "openvino")
    assert _option(export_command, "format_name").type.choices == names
    assert formats.quantize_modes() == ("none", "dynamic", "float16", "int8")
    assert _option(export_command, "quantize").type.choices == (
        formats.quantize_modes()
    )
    placements = {f.name: f.placement for f in formats.all_formats()}
    assert placements == {
        "saved_model": formats.VERSION,
        "tflite": formats.FILE,
        "onnx": formats.FILE,
        "openvino": formats.FOLDER,
    }
    extras = {f.name: f.extra for f in formats.all_formats() if f.extra}
    assert extras == {"onnx": "onnx", "openvino": "openvino"}


def test_a_registered_format_is_a_choice_everywhere(toy_format):
    assert TOY in _option(export_command, "format_name").type.choices
    assert "toy8" in _option(export_command, "quantize").type.choices
    help_text = CliRunner().invoke(export_command, ["--help"]).output
    assert TOY in help_text and "toy8" in help_text
    config = ExportConfig(format=TOY, quantize="toy8").validate()
    assert config.artifact_path("lenet") == os.path.join(
        "saved_models", "lenet", "lenet.keras"
    )
    # Its quantize mode belongs to it, not to the other formats.
    with pytest.raises(ExportError, match="Received: format='onnx'"):
        ExportConfig(format="onnx", quantize="toy8").validate()


def test_unregistered_format_is_gone(toy_format):
    formats.unregister_format(TOY)
    try:
        assert TOY not in _option(export_command, "format_name").type.choices
        with pytest.raises(ExportError, match="Received: format='keras_file'"):
            ExportConfig(format=TOY).validate()
    finally:
        formats.register_format(toy_format[0])  # the fixture removes it


def test_driver_converts_verifies_and_places_the_toy(
    toy_format, lenet_run, mnist_test, tmp_path
):
    _, calls = toy_format
    result = export(
        lenet_run, format=TOY, base_dir=tmp_path, examples=mnist_test
    )
    path = str(tmp_path / "lenet" / "lenet.keras")
    assert result.format == TOY and result.path == path
    assert result.size_bytes == os.path.getsize(path) > 0
    # Converted in memory (no staged folder), verified on the given
    # examples in its own runtime, then placed with its sidecar.
    assert calls == [("convert", None), ("runner", "bytes")]
    assert result.verification.artifact.max_diff <= 1e-6
    assert result.verification.num_examples == len(mnist_test[0])
    assert result.examples == "given"
    with open(f"{path}.json") as f:
        assert json.load(f)["toy"] == {"converted": True}
    assert result.metadata["toy"] == {"converted": True}
    # The model card lists the export and exactly the registry's packages.
    with open(tmp_path / "lenet" / "model_card.json") as f:
        card = json.load(f)
    assert card["exports"][TOY]["path"] == "lenet.keras"
    assert set(card["versions"]) == {"kerascnn", "tensorflow", "keras", "numpy"}
    # inspect dispatches to the format that claims the file.
    info = inspect_artifact(path)
    assert info["format"] == TOY and info["metadata"]["toy"]
    assert calls[-1] == ("inspect", path)
    shown = CliRunner().invoke(inspect_command, [path])
    assert shown.exit_code == 0 and f"{TOY}: {path}" in shown.output


def test_card_packages_are_the_exported_formats_packages(
    lenet_run, mnist_test, tmp_path
):
    export(lenet_run, base_dir=tmp_path, examples=mnist_test)
    with open(tmp_path / "lenet" / "model_card.json") as f:
        versions = json.load(f)["versions"]
    assert set(versions) == {"kerascnn", "tensorflow", "keras"}
    export(lenet_run, format="tflite", base_dir=tmp_path, examples=mnist_test)
    with open(tmp_path / "lenet" / "model_card.json") as f:
        versions = json.load(f)["versions"]
    tflite = formats.get_format("tflite").packages
    assert tflite and set(versions) == {
        "kerascnn",
        "tensorflow",
        "keras",
        *tflite,
    }


def test_failed_verification_places_nothing(lenet_run, mnist_test, tmp_path):
    calls = []
    formats.register_format(_toy(calls, shift=1.0))
    try:
        with pytest.raises(ExportError, match="Verification failed"):
            export(
                lenet_run, format=TOY, base_dir=tmp_path, examples=mnist_test
            )
    finally:
        formats.unregister_format(TOY)
    assert ("runner", "bytes") in calls
    assert not (tmp_path / "lenet").exists()


def test_missing_package_of_a_format_fails_before_loading(
    lenet_run, tmp_path, monkeypatch
):
    from kerascnn import metadata

    calls = []
    formats.register_format(
        _toy(calls, extra="toy", requires=("kerascnn_no_such_module",))
    )
    monkeypatch.setattr(metadata, "load_model_and_metadata", None)
    try:
        with pytest.raises(ExportError) as error:
            export(lenet_run, format=TOY, base_dir=tmp_path)
    finally:
        formats.unregister_format(TOY)
    assert str(error.value) == (
        "keras_file export needs the optional package "
        "'kerascnn_no_such_module', which is not installed; install it "
        "with: pip install 'kerascnn[toy]'"
    )
    assert calls == []


def test_unknown_format_is_one_line(lenet_run, tmp_path):
    names = ", ".join(repr(n) for n in formats.format_names())
    message = f"`format` must be one of {names}. Received: format='pytorch'"
    with pytest.raises(ExportError) as error:
        formats.get_format("pytorch")
    assert str(error.value) == message
    with pytest.raises(ExportError) as error:
        export(lenet_run, format="pytorch", base_dir=tmp_path)
    assert str(error.value) == message
    result = CliRunner().invoke(export_command, [lenet_run, "-f", "pytorch"])
    assert result.exit_code == 2
    assert "'pytorch' is not one of 'saved_model'" in result.output
    assert "Traceback" not in result.output


def test_a_name_registers_once(toy_format):
    with pytest.raises(ValueError, match="already registered"):
        formats.register_format(toy_format[0])


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"placement": "zip"}, "`placement` must be one of"),
        ({"default_path": None}, "needs a `default_path`"),
        ({"quantize_modes": ("int8",)}, "must include 'none'"),
    ],
)
def test_a_format_is_checked_when_declared(overrides, message):
    with pytest.raises(ValueError, match=message):
        _toy([], **overrides)


def test_inspect_names_every_registered_kind(tmp_path):
    (tmp_path / "notes.txt").write_text("not a model")
    with pytest.raises(ExportError) as error:
        inspect_artifact(tmp_path / "notes.txt")
    kinds = [f.artifact for f in formats.all_formats()]
    assert str(error.value).endswith(
        f"expected {', '.join(kinds[:-1])} or {kinds[-1]}."
    )
