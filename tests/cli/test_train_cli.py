"""`kerascnn fit / evaluate / predict` through click's CliRunner."""

import json
import os

import pytest

from cli.main import cli


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, data_dir):
    from click.testing import CliRunner

    run_dir = tmp_path_factory.mktemp("cli") / "run"
    result = CliRunner().invoke(
        cli,
        [
            "fit",
            "lenet",
            "--data-dir",
            data_dir,
            "--limit",
            "1000",
            "--eval-limit",
            "500",
            "--epochs",
            "1",
            "--batch-size",
            "32",
            "--no-export",
            "--log-format",
            "json",
            "--run-dir",
            str(run_dir),
        ],
    )
    assert result.exit_code == 0, result.output
    return run_dir, result


def test_fit_prints_json_lines(trained_run):
    _, result = trained_run
    lines = [
        json.loads(line)
        for line in result.stdout.splitlines()
        if line.startswith("{")
    ]
    assert lines[0]["epoch"] == 1 and "val_accuracy" in lines[0]
    assert lines[-1]["test"]["num_examples"] == 500


def test_evaluate_prints_confusion_matrix(runner, trained_run, data_dir):
    run_dir, _ = trained_run
    result = runner.invoke(
        cli,
        [
            "evaluate",
            str(run_dir),
            "--data-dir",
            data_dir,
            "--limit",
            "300",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    (line,) = result.stdout.splitlines()
    metrics = json.loads(line)
    assert metrics["num_examples"] == 300
    assert sum(map(sum, metrics["confusion_matrix"])) == 300


def test_predict_non_image_is_one_clear_line(runner, trained_run, tmp_path):
    run_dir, _ = trained_run
    bogus = tmp_path / "a.jpg"
    bogus.write_bytes(b"\x00\x01garbage")
    result = runner.invoke(cli, ["predict", str(run_dir), str(bogus)])
    assert result.exit_code == 1
    assert "Cannot decode" in result.output and "Traceback" not in result.output


def _mnist_pngs(data_dir, folder, count):
    """The first `count` MNIST test digits as PNG files, and their labels."""
    import tensorflow as tf

    from kerascnn.data import read_idx

    mnist = os.path.join(data_dir, "mnist")
    images = read_idx(os.path.join(mnist, "t10k-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(mnist, "t10k-labels-idx1-ubyte.gz"))
    paths = []
    for i, image in enumerate(images[:count]):
        path = folder / f"digit{i}.png"
        path.write_bytes(tf.io.encode_png(image.reshape(28, 28, 1)).numpy())
        paths.append(str(path))
    return paths, [int(y) for y in labels[:count]]


def test_predict_top_k_lines_in_descending_probability(
    runner, trained_run, data_dir, tmp_path
):
    run_dir, _ = trained_run
    files, labels = _mnist_pngs(data_dir, tmp_path, 8)
    full = runner.invoke(
        cli, ["predict", str(run_dir), *files, "--top-k", "10", "--json"]
    )
    assert full.exit_code == 0, full.output
    everything = [json.loads(line) for line in full.stdout.splitlines()]
    result = runner.invoke(cli, ["predict", str(run_dir), *files, "-k", "4"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == len(files)
    for line, path, ranked in zip(lines, files, everything):
        name, _, shown = line.partition(": ")
        assert name == path
        pairs = [p.split(" ") for p in shown.split(", ")]
        assert len(pairs) == 4
        probs = [float(p) for _, p in pairs]
        assert probs == sorted(probs, reverse=True)
        # The 4 shown are the 4 most likely of all 10 classes.
        top = ranked["top_k"]
        assert len(top) == 10
        assert sum(t["probability"] for t in top) == pytest.approx(1, 1e-5)
        assert [c for c, _ in pairs] == [t["class_name"] for t in top[:4]]
        assert probs == [round(t["probability"], 3) for t in top[:4]]
    predicted = [int(r["top_k"][0]["class_name"]) for r in everything]
    assert sum(p == y for p, y in zip(predicted, labels)) >= 6


def test_predict_top_k_zero_is_a_usage_error(runner, trained_run, tmp_path):
    run_dir, _ = trained_run
    image = tmp_path / "x.png"
    image.write_bytes(b"")
    result = runner.invoke(
        cli, ["predict", str(run_dir), str(image), "-k", "0"]
    )
    assert result.exit_code == 2
    assert result.output == (
        "Error: --top-k must be a positive integer (got 0) "
        "(see cli predict --help)\n"
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["fit", "lenet9"], "Unknown model 'lenet9'"),
        (["fit", "lenet", "--dataset", "nope"], "Unknown data set 'nope'"),
        (["fit", "lenet", "--optimizer", "adagrad"], "'adagrad' is not one of"),
        (
            ["fit", "lenet", "--epochs", "-2"],
            "--epochs must be a positive integer (got -2)",
        ),
        (["evaluate", "/no/such/run"], "does not exist"),
    ],
)
def test_bad_flags_give_one_clear_line(
    runner, args, message, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(cli, args)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output


def test_evaluate_tta_is_reported_beside_the_plain_accuracy(
    runner, trained_run, data_dir
):
    run_dir, _ = trained_run
    args = ["evaluate", str(run_dir), "--data-dir", data_dir, "--limit", "200"]
    plain = runner.invoke(cli, [*args, "--json"])
    tta = runner.invoke(cli, [*args, "--json", "--tta"])
    assert plain.exit_code == 0 and tta.exit_code == 0, tta.output
    plain, tta = json.loads(plain.stdout), json.loads(tta.stdout)
    assert tta["accuracy"] == plain["accuracy"]  # the served model's
    assert "tta_accuracy" not in plain
    assert 0.0 <= tta["tta_accuracy"] <= 1.0 and tta["tta_loss"] > 0
    table = runner.invoke(cli, [*args, "--tta"])
    assert table.exit_code == 0 and "tta_accuracy" in table.output


def test_fit_recipe_paper_trains_with_the_papers_settings(
    runner, tmp_path, data_dir
):
    run_dir = tmp_path / "paper"
    result = runner.invoke(
        cli,
        [
            "fit", "lenet", "--recipe", "paper", "--data-dir", data_dir,
            "--limit", "500", "--eval-limit", "100", "--epochs", "1",
            "--no-export", "--quiet", "--run-dir", str(run_dir),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    config = json.loads((run_dir / "config.json").read_text())
    assert config["recipe"] == "paper" and config["augment"] is True
    assert config["schedule"] == "cosine" and config["ema_momentum"] == 0
    meta = json.loads((run_dir / "metadata.json").read_text())
    assert meta["extra"]["recipe"]["recipe"] == "paper"


def test_fit_help_names_the_default_recipe_and_its_result(runner):
    result = runner.invoke(cli, ["fit", "--help"])
    assert result.exit_code == 0
    help_text = " ".join(result.output.split())
    assert "--recipe [fast|paper]" in help_text
    assert "fast (default): lenet on mnist:" in help_text
