"""A folder as people have them, end to end with no flag beyond -d (and
--skip-bad for the zero-byte file): 20-800 px files in every colour mode
and format (CMYK and grey JPEGs, EXIF-rotated JPEGs, RGBA / LA / palette
/ 16-bit PNGs, BMP, GIF, WebP), upper-case extensions, a README.txt and
a .DS_Store in each class and a zero-byte .jpg: fit, evaluate, export,
predict on the folder, and the served model answering a b64 request per
file with the probabilities `predict` gives (the same pixels)."""

import base64
import glob
import json
import os

import numpy as np
import pytest

from cli.main import cli
from tests.data import messy_images


@pytest.fixture(scope="module")
def photos(tmp_path_factory, data_dir):
    work = tmp_path_factory.mktemp("messy")
    messy_images.messy_folder(data_dir, str(work / "photos"))
    return work


def _notes(output):
    return [line for line in output.splitlines() if line.startswith("note: ")]


def test_a_messy_folder_trains_evaluates_exports_predicts_and_serves(
    photos, runner, monkeypatch
):
    monkeypatch.chdir(photos)
    empty = os.path.join("photos", "cat", "empty.jpg")

    # Without --skip-bad the zero-byte file stops fit, named in one line.
    args = [
        "fit", "lenet", "-d", "photos", "--epochs", "1", "--batch-size",
        "8", "--export-dir", "served", "--mixed-precision", "none", "-q",
    ]  # fmt: skip
    refused = runner.invoke(cli, args)
    assert refused.exit_code == 1
    error = refused.output.strip().splitlines()[-1]
    assert error.startswith(f"Error: Cannot read image file {empty}")
    assert "--skip-bad" in error and "skip_bad" not in error
    assert not os.path.exists("runs") or not os.listdir("runs")

    fitted = runner.invoke(cli, [*args, "--skip-bad"])
    assert fitted.exit_code == 0, fitted.output
    assert "Traceback" not in fitted.output and "Warning" not in fitted.output
    notes = _notes(fitted.output)
    strays = [n for n in notes if "not images by extension" in n]
    assert len(strays) == 1  # listed once, though three splits read it
    assert "Skipped 4 file(s)" in strays[0]
    for stray in ("cat/README.txt", "dog/README.txt", "cat/.DS_Store"):
        assert stray in strays[0]
    bad = [n for n in notes if empty in n]
    assert len(bad) == 1 and "empty or not image data" in bad[0]
    (run,) = glob.glob("runs/lenet-*")

    with open(os.path.join(run, "metadata.json")) as f:
        meta = json.load(f)
    assert meta["input_shape"] == [28, 28, 1]  # lenet's, not a file's
    with open(os.path.join("served", "lenet", "model_card.json")) as f:
        sizes = json.load(f)["dataset"]["split_sizes"]
    listed = 2 * len(messy_images.KINDS) + 1  # the empty .jpg is listed
    assert set(sizes) == {"train", "validation"}
    assert sum(sizes.values()) == listed and sizes["validation"] > 0

    evaluated = runner.invoke(cli, ["evaluate", run, "--skip-bad", "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    metrics = json.loads(evaluated.output.strip().splitlines()[-1])
    assert 0.0 <= metrics["accuracy"] <= 1.0

    # Export verifies on the held-out split, with the same --skip-bad.
    again = ["export", run, "--base-dir", "again"]
    held_out = runner.invoke(cli, ["data", "info", "photos"])
    assert held_out.exit_code == 1  # the zero-byte file, named
    assert (
        held_out.output.strip()
        .splitlines()[-1]
        .startswith(f"Error: Cannot read image file {empty}")
    )
    exported = runner.invoke(cli, [*again, "--skip-bad"])
    assert exported.exit_code == 0, exported.output
    assert "Exported lenet version 1" in exported.output
    # Exported once by fit already: the same export is not repeated.
    same = runner.invoke(cli, ["export", run, "--base-dir", "served"])
    assert same.exit_code == 0, same.output
    assert "Not exported again: the same weights and metadata as version 1" in (
        same.output
    )
    assert sorted(os.listdir(os.path.join("served", "lenet"))) == [
        "1",
        "MODEL_CARD.md",
        "model_card.json",
    ]

    predicted = runner.invoke(
        cli, ["predict", run, "photos/cat", "photos/dog", "--json"]
    )
    assert predicted.exit_code == 1  # the zero-byte file, on its line
    rows = [
        json.loads(line)
        for line in predicted.output.splitlines()
        if line.startswith("{")
    ]
    answered = {r["file"]: r for r in rows if "top_k" in r}
    assert [r["file"] for r in rows if "error" in r] == [empty]
    kinds = sorted(messy_images.KINDS)
    assert len(answered) == 2 * len(kinds)

    from kerascnn.serving import ModelServer, ServeOptions, rest

    server = ModelServer(
        ServeOptions(model_base_path="served", file_system_poll_wait_seconds=0)
    )
    try:
        for path, result in sorted(answered.items()):
            with open(path, "rb") as f:
                body = {
                    "signature_name": "predict_images",
                    "instances": [
                        {"b64": base64.b64encode(f.read()).decode("ascii")}
                    ],
                }
            status, answer = rest.handle(
                server,
                "POST",
                "/v1/models/lenet:predict",
                json.dumps(body).encode(),
            )
            assert status == 200, (path, answer)
            served = answer["predictions"][0]
            best = result["top_k"][0]
            assert served["class_names"] == best["class_name"], path
            np.testing.assert_allclose(
                max(served["probabilities"]), best["probability"], atol=1e-5
            )
    finally:
        server.close()
