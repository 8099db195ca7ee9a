"""The model card beside every export, and the optional-package errors.

The card's numbers must be the run's `metrics.json` and the verification
results of the exports, `inspect` must show it, and a missing optional
package must be one line naming the extra to install.
"""

import json
import os
import shutil
import sys

import pytest
from click.testing import CliRunner

from cli.export_cli import export_command, inspect_command
from kerascnn.errors import ExportError
from kerascnn.export.inspect import format_text, inspect_artifact
from tests.helpers import export


@pytest.fixture(scope="module")
def lenet_run_with_metrics(lenet_run, tmp_path_factory):
    """The LeNet run plus a `metrics.json` from real MNIST test digits."""
    from kerascnn.tasks import evaluate

    run = tmp_path_factory.mktemp("card") / "lenet"
    shutil.copytree(lenet_run, run)
    metrics = evaluate(str(run), limit=300)
    with open(run / "metrics.json", "w") as f:
        json.dump(metrics, f)
    return str(run), metrics


def _card(model_dir):
    with open(os.path.join(model_dir, "model_card.json")) as f:
        return json.load(f)


def test_card_numbers_are_metrics_and_verification(
    lenet_run_with_metrics, mnist_test, tmp_path
):
    run, metrics = lenet_run_with_metrics
    results = [
        export(run, base_dir=tmp_path, examples=mnist_test),
        export(run, format="tflite", base_dir=tmp_path, examples=mnist_test),
    ]
    if _have("onnxruntime"):
        results.append(
            export(run, format="onnx", base_dir=tmp_path, examples=mnist_test)
        )
    model_dir = tmp_path / "lenet"
    card = _card(model_dir)
    # Test metrics: metrics.json as it is, per-class table included.
    assert card["test_metrics"]["accuracy"] == metrics["accuracy"]
    assert card["test_metrics"]["num_examples"] == metrics["num_examples"]
    assert (
        card["test_metrics"]["per_class_accuracy"]
        == metrics["per_class_accuracy"]
    )
    # Every export so far, with its own verification figures and size.
    assert set(card["exports"]) == {r.format for r in results}
    for result in results:
        entry = card["exports"][result.format]
        report = result.verification
        assert entry["max_abs_diff"] == report.artifact.max_diff
        assert entry["accuracy"] == report.artifact.accuracy
        assert entry["keras_accuracy"] == report.keras.accuracy
        assert entry["num_examples"] == len(mnist_test[0])
        assert entry["size_bytes"] == result.size_bytes
        assert result.card_path == str(model_dir / "MODEL_CARD.md")
    if "onnx" in card["exports"]:
        assert card["exports"]["onnx"]["opset"] == 17
        assert card["exports"]["onnx"]["outputs"] == [
            "probabilities",
            "class_ids",
        ]
    assert card["exports"]["saved_model"]["path"] == "1"
    assert card["model"]["parameters"] == 61706
    assert card["model"]["reference"].startswith("LeCun et al. (1998)")
    assert card["dataset"]["split_sizes"] == {"train": 60000, "test": 10000}
    assert card["class_names"] == [str(i) for i in range(10)]
    markdown = (model_dir / "MODEL_CARD.md").read_text()
    accuracy = 100 * results[0].verification.artifact.accuracy
    keras = 100 * results[0].verification.keras.accuracy
    assert f"| saved_model | 1 | {results[0].size_bytes:,} | yes |" in markdown
    assert f"| {accuracy:.2f} ({keras:.2f}) |" in markdown
    assert f"| accuracy | {metrics['accuracy']:.4f} |" in markdown


def test_inspect_shows_the_card(lenet_run_with_metrics, mnist_test, tmp_path):
    run, metrics = lenet_run_with_metrics
    result = export(run, base_dir=tmp_path, examples=mnist_test)
    info = inspect_artifact(result.path)
    assert info["model_card"]["exports"]["saved_model"]["version"] == 1
    text = format_text(info)
    assert f"model card: {tmp_path / 'lenet' / 'MODEL_CARD.md'}" in text
    assert f"test: accuracy {metrics['accuracy']:.4f}" in text
    assert "saved_model: 1 (" in text
    out = CliRunner().invoke(inspect_command, [str(tmp_path / "lenet")])
    assert out.exit_code == 0, out.output
    assert "model card:" in out.output


def test_card_of_another_run_starts_fresh(
    lenet_run_with_metrics, lenet_run, mnist_test, tmp_path
):
    run, _ = lenet_run_with_metrics
    export(run, format="tflite", base_dir=tmp_path, examples=mnist_test)
    other = tmp_path / "other-run"
    shutil.copytree(lenet_run, other)
    os.remove(other / "metrics.json")
    export(str(other), base_dir=tmp_path, examples=mnist_test)
    card = _card(tmp_path / "lenet")
    assert list(card["exports"]) == ["saved_model"]
    assert card["test_metrics"] is None  # that run has no metrics.json
    assert (
        "No test metrics: the source has no metrics.json."
        in (card["limitations"])
    )


def test_no_card_when_disabled(lenet_run, mnist_test, tmp_path):
    export(lenet_run, base_dir=tmp_path, examples=mnist_test, model_card=False)
    assert os.listdir(tmp_path / "lenet") == ["1"]


def _have(module):
    try:
        __import__(module)
    except ImportError:
        return False
    return True


# === Missing optional packages ===


@pytest.mark.parametrize("fmt", ["onnx", "openvino"])
def test_missing_package_is_one_line_naming_the_extra(
    fmt, lenet_run, tmp_path, monkeypatch
):
    from kerascnn.export import formats

    extra = formats.get_format(fmt).extra
    modules = formats.get_format(fmt).requires
    for name in modules:  # every import of them fails
        monkeypatch.setitem(sys.modules, name, None)
    message = (
        f"{fmt} export needs the optional package '{modules[0]}', which is "
        f"not installed; install it with: pip install 'kerascnn[{extra}]'"
    )
    with pytest.raises(ExportError) as error:
        export(lenet_run, format=fmt, base_dir=tmp_path)
    assert str(error.value) == message
    result = CliRunner().invoke(
        export_command, [lenet_run, "--format", fmt, "-b", str(tmp_path)]
    )
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [f"Error: {message}"]
    assert not (tmp_path / "lenet").exists()
