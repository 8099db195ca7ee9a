"""Tasks: the registry, what each built-in task decides, and the seam.

The seam tests train, evaluate, checkpoint, export and serve a task
defined only in the test suite (`tests/tasks/counting/`, one folder and
one registry line) through the library's own `fit`, `evaluate`,
`kerascnn export` and model server.
"""

import json
import os
import subprocess
import sys

import pytest

from kerascnn import models, tasks
from kerascnn.errors import KerasCNNError
from kerascnn.metadata import ModelMetadata

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))


def test_every_model_task_is_registered():
    used = {models.get_model_info(n).task for n in models.list_models()}
    assert used <= set(tasks.task_names())
    assert {"image_classification", "sequence_tagging"} <= used


def test_unknown_task_is_one_line():
    with pytest.raises(KerasCNNError, match="Unknown task 'counting'; known"):
        tasks.get_task("counting")


@pytest.mark.parametrize(
    "shape, name",
    [((28, 28, 1), "image_classification"), ((None,), "sequence_tagging")],
)
def test_task_for_input_shape(shape, name):
    assert tasks.task_for_input_shape(shape).name == name


def test_task_for_an_unknown_rank_says_so():
    with pytest.raises(KerasCNNError, match=r"No task takes inputs of shape"):
        tasks.task_for_input_shape((4, 4))


def _tiny_model_and_data(model_name):
    """`(model, x, y, metadata)`: a small zoo model of `model_name` and 16
    random examples shaped like its data set's."""
    import numpy as np

    from tests.helpers import tagger_metadata

    rng = np.random.default_rng(0)
    if model_name == "lenet":
        model = models.build("lenet", input_shape=(28, 28, 1), num_classes=10)
        x = rng.random((16, 28, 28, 1), dtype=np.float32)
        y = rng.integers(0, 10, 16)
        meta = ModelMetadata(model="lenet", class_names=list("0123456789"))
        return model, x, y, meta
    tags = ["<pad>", "O", "B-fromloc.city_name", "B-toloc.city_name"]
    vocab = ["<pad>", "<unk>", "flights", "from", "boston", "to", "denver"]
    intents = ["flight", "airfare"]
    model = models.build(
        "slot_tagger",
        input_shape=(None,),
        num_classes=len(tags),
        vocab_size=len(vocab),
        num_intents=len(intents),
        embedding_dim=8,
        units=8,
    )
    x = rng.integers(2, len(vocab), (16, 6))
    y = {
        "tags": rng.integers(1, len(tags), (16, 6)),
        "intent": rng.integers(0, len(intents), 16),
    }
    return model, x, y, tagger_metadata(tags, vocab, intents)


@pytest.mark.parametrize("model_name", ["lenet", "slot_tagger"])
def test_builtin_tasks_train_and_log_what_their_checkpoint_watches(
    model_name, data_dir
):
    import keras

    from kerascnn.config import recipe_for

    task = tasks.get_task(models.get_model_info(model_name).task)
    model, x, y, meta = _tiny_model_and_data(model_name)
    made = []

    def make_loss():  # the recipe's loss, used for every output
        made.append(keras.losses.SparseCategoricalCrossentropy())
        return made[-1]

    loss, metrics = task.loss_and_metrics(make_loss)
    model.compile("adam", loss=loss, metrics=metrics)
    config = recipe_for(model_name, data_dir=data_dir)
    history = model.fit(
        x,
        y,
        validation_data=(x, y),
        epochs=1,
        batch_size=8,
        verbose=0,
        callbacks=task.epoch_callbacks(config, meta),
    )
    logs = history.history
    # The checkpoint's monitor is a value the task's training really logs
    # (for the tagger, its dev span F1 callback adds it), and its mode
    # says which way is better.
    assert task.checkpoint_monitor in logs, sorted(logs)
    assert 0.0 <= logs[task.checkpoint_monitor][0] <= 1.0
    lower_is_better = "loss" in task.checkpoint_monitor
    assert task.checkpoint_mode == ("min" if lower_is_better else "max")
    # The recipe's loss scores every output the model has.
    assert len(made) == len(model.outputs)
    for output in model.output_names if len(model.outputs) > 1 else []:
        assert f"val_{output}_accuracy" in logs, sorted(logs)


def test_require_names_what_the_model_is():
    meta = ModelMetadata(model="slot_tagger", task="sequence_tagging")
    with pytest.raises(KerasCNNError) as e:
        tasks.require(meta, picture="confusion", what="confusion draws X")
    assert str(e.value) == (
        "confusion draws X; 'slot_tagger' is a sequence tagging model."
    )
    assert (
        tasks.require(meta, predict_input="text", what="-")
        is tasks.SEQUENCE_TAGGING
    )


def test_takes_says_what_a_task_reads():
    assert tasks.takes("sequence_tagging", "text")
    assert tasks.takes("image_classification", "images")
    assert not tasks.takes("image_classification", "text")
    assert not tasks.takes("counting", "images")  # registered only there


def test_default_verification_compares_the_one_float_output():
    import numpy as np

    from kerascnn.errors import ExportError

    task = tasks.IMAGE_CLASSIFICATION
    probs = np.array([[0.2, 0.8], [0.9, 0.1]], np.float32)
    saved_model = {
        "probabilities": probs,
        "class_ids": np.array([1, 0]),
        "class_names": np.array([b"b", b"a"]),
    }
    main, second = task.compared_outputs(saved_model)
    np.testing.assert_array_equal(main, probs)
    assert second is None
    assert task.verification_scores(probs, np.array([1, 1]), None) == {
        "accuracy": 0.5
    }
    with pytest.raises(
        ExportError, match=r"one float output; this one has 2: \['a', 'b'\]"
    ):
        task.compared_outputs({"a": probs, "b": probs})


def test_tagger_verification_reads_every_runtime_s_names():
    import numpy as np

    rng = np.random.default_rng(0)
    tags = rng.random((2, 3, 4)).astype(np.float32)
    intent = rng.random((2, 5)).astype(np.float32)
    ids = np.zeros((2, 3), np.int64)
    runtimes = [
        {"tags": tags, "intent": intent, "tag_ids": ids.astype(np.int32)},
        {  # SavedModel: the strings share the Keras names
            "tag_probabilities": tags,
            "tags": np.full((2, 3), b"O"),
            "intent_probabilities": intent,
            "intent": np.array([b"x", b"y"]),
        },
        {
            "tag_probabilities": tags,
            "tag_ids": ids,
            "intent_probabilities": intent,
            "intent_ids": ids[:, 0],
        },
    ]
    for outputs in runtimes:
        main, second = tasks.SEQUENCE_TAGGING.compared_outputs(outputs)
        np.testing.assert_array_equal(main, tags)
        np.testing.assert_array_equal(second, intent)


def test_register_task_rejects_what_is_not_a_task():
    with pytest.raises(KerasCNNError, match="named Task instance"):
        tasks.register_task("counting")


def test_data_of_another_kind_is_refused_in_one_line():
    """`fit` checks `DatasetInfo.kind` against `Task.consumes`."""
    from types import SimpleNamespace

    from kerascnn.config import recipe_for
    from kerascnn.errors import TrainingError
    from kerascnn.train import check_data_kind

    config = recipe_for("slot_tagger", dataset="mnist")
    images = SimpleNamespace(kind="images")
    with pytest.raises(TrainingError) as e:
        check_data_kind(tasks.SEQUENCE_TAGGING, images, config)
    assert str(e.value) == (
        "Model 'slot_tagger' does sequence tagging on tagged text, but data "
        "set 'mnist' holds images (for image classification)."
    )
    check_data_kind(tasks.IMAGE_CLASSIFICATION, images, config)  # no error
    assert tasks.IMAGE_CLASSIFICATION.consumes == "images"
    assert tasks.SEQUENCE_TAGGING.consumes == "tagged_text"


def test_a_bare_keras_file_gets_the_task_of_its_input_rank(tmp_path):
    """Metadata knows no tasks: a `.keras` file without metadata is
    refused there and resolved by the registry, by its input rank."""
    import keras

    from kerascnn.metadata import load_model_and_metadata

    inputs = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(10, 4)(inputs)
    tagger = keras.Model(inputs, keras.layers.Dense(3, name="tags")(x))
    path = str(tmp_path / "bare.keras")
    tagger.save(path)
    with pytest.raises(KerasCNNError, match="has no metadata file"):
        load_model_and_metadata(path)
    _, meta = tasks.load_model_and_metadata(path)
    assert (meta.task, meta.class_names) == (
        "sequence_tagging",
        ["0", "1", "2"],
    )
    assert tasks.task_of(path) is tasks.SEQUENCE_TAGGING


def test_export_refuses_a_model_of_another_task(tmp_path):
    """The exporter is handed the task; one that is not the model's fails
    in one line before anything is written."""
    from kerascnn import models
    from kerascnn.errors import ExportError
    from kerascnn.export import export
    from kerascnn.metadata import ModelMetadata
    from tests.helpers import save_run

    meta = ModelMetadata(model="lenet", input_shape=(28, 28, 1))
    run = save_run(models.build("lenet"), meta, tmp_path / "run")
    with pytest.raises(ExportError) as e:
        export(
            run,
            task=tasks.SEQUENCE_TAGGING,
            base_dir=str(tmp_path / "out"),
            verify=False,
        )
    assert str(e.value) == (
        "'lenet' is a model of task 'image_classification'; export was "
        "given task 'sequence_tagging'."
    )
    assert not (tmp_path / "out").exists()


def _counting(*args, timeout=300):
    """`python -m tests.tasks.counting ARGS` (the task registered only
    there); the JSON it prints."""
    proc = subprocess.run(
        [sys.executable, "-m", "tests.tasks.counting", *map(str, args)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "3"},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = proc.stdout.strip()
    try:
        return json.loads(text)  # kerascnn export --json
    except ValueError:
        return json.loads(text.splitlines()[-1])  # after fit's log lines


@pytest.fixture(scope="module")
def counting_run(tmp_path_factory):
    """`(run dir, fit's JSON)` of the counting task trained by `fit`."""
    run_dir = tmp_path_factory.mktemp("counting") / "run"
    return run_dir, _counting("fit", run_dir)


def test_a_task_from_outside_the_library_trains_and_evaluates(counting_run):
    run_dir, out = counting_run
    # Learned: the rounded count is right for nearly every test image.
    assert out["metrics"]["accuracy"] >= 0.9
    assert out["metrics"]["mae"] < 0.3
    # `kerascnn.tasks.evaluate(run)` asks the same task.
    assert out["evaluate"]["mae"] == pytest.approx(out["metrics"]["mae"])
    # The task's loss and metric reached the logs and the run's files.
    assert {"loss", "mae", "val_loss", "val_mae"} <= set(out["history"])
    meta = json.loads((run_dir / "metadata.json").read_text())
    assert meta["task"] == "counting"
    # The task's "min" monitor picked the epoch with the lowest val_loss.
    best = min(out["history"]["val_loss"])
    assert out["best_val_loss"] == pytest.approx(best, rel=1e-3, abs=1e-6)
    assert best < max(out["history"]["val_loss"]) / 10


def test_a_task_from_outside_the_library_exports(counting_run, tmp_path):
    """`kerascnn export` writes the task's own signature, verifies it on
    the task's examples with the task's score, and the SavedModel and
    the .tflite file count squares with TensorFlow / LiteRT alone."""
    import numpy as np
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    from tests.tasks.counting.data import counting_images

    run_dir, _ = counting_run
    export = ["kerascnn", "export", run_dir, "--base-dir", tmp_path, "--json"]
    saved = _counting(*export, "--verify-examples", 200)
    tflite = _counting(*export, "--tflite", "--verify-examples", 200)

    for result, tolerance in ((saved, 1e-4), (tflite, 1e-3)):
        report = result["verification"]
        assert (
            report["verified_on"]
            == "counting-squares test split (200 examples)"
        )
        # Scored by the task's rounded-count accuracy, not argmax.
        assert report["artifact"]["accuracy"] >= 0.9
        assert report["artifact"]["accuracy"] == pytest.approx(
            report["keras"]["accuracy"]
        )
        assert report["artifact"]["max_diff"] <= tolerance
    assert saved["path"] == str(tmp_path / "square_counter" / "1")
    card = json.loads(
        (tmp_path / "square_counter" / "model_card.json").read_text()
    )
    assert set(card["exports"]) == {"saved_model", "tflite"}
    assert card["limitations"][-1].startswith("Counts 0-4 white")

    x, counts = counting_images(64, seed=7)
    loaded = tf.saved_model.load(saved["path"])
    serve = loaded.signatures["serving_default"]
    assert set(serve.structured_outputs) == {"count", "rounded"}
    out = serve(images=tf.constant(x))
    assert out["count"].shape == (64,)
    assert np.mean(out["rounded"].numpy() == counts) >= 0.9
    metadata = json.loads(loaded.signatures["metadata"]()["metadata"].numpy())
    assert (metadata["task"], metadata["model"]) == (
        "counting",
        "square_counter",
    )

    runner = Interpreter(model_path=tflite["path"]).get_signature_runner()
    ((name, _),) = runner.get_input_details().items()
    lite = np.concatenate(
        [next(iter(runner(**{name: x[i : i + 1]}).values())) for i in range(64)]
    ).reshape(-1)
    np.testing.assert_allclose(lite, out["count"].numpy(), atol=1e-3)


def test_a_task_from_outside_the_library_exports_onnx(counting_run, tmp_path):
    """ONNX gets the task's named outputs (`images` -> `count`)."""
    pytest.importorskip("tf2onnx")
    ort = pytest.importorskip("onnxruntime")
    import numpy as np

    from tests.tasks.counting.data import counting_images

    run_dir, _ = counting_run
    result = _counting(
        "kerascnn", "export", run_dir, "--format", "onnx", "--base-dir",
        tmp_path, "--verify-examples", 200, "--json",
    )  # fmt: skip
    report = result["verification"]
    assert report["artifact"]["accuracy"] >= 0.9
    assert report["artifact"]["max_diff"] <= 1e-4
    described = result["metadata"]["onnx"]
    assert (described["inputs"], described["outputs"]) == (
        ["images"],
        ["count"],
    )
    session = ort.InferenceSession(result["path"])
    assert [o.name for o in session.get_outputs()] == ["count"]
    x, counts = counting_images(64, seed=7)
    (count,) = session.run(["count"], {"images": x})
    assert count.shape == (64,)
    assert np.mean(np.round(count) == counts) >= 0.9


def test_a_task_from_outside_the_library_serves(counting_run, tmp_path):
    """The counting SavedModel `kerascnn export` wrote is served by
    kerascnn's own model server: REST `predict` answers with the task's
    outputs (`count`, `rounded`)."""
    import threading
    import urllib.request

    import numpy as np

    from kerascnn.serving import ServeOptions, make_server
    from tests.tasks.counting.data import counting_images

    run_dir, _ = counting_run
    _counting(
        "kerascnn", "export", run_dir, "--base-dir", tmp_path, "--no-verify",
        "--json",
    )  # fmt: skip
    server = make_server(
        ServeOptions(model_base_path=str(tmp_path), rest_api_port=0)
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        x, counts = counting_images(32, seed=7)
        request = urllib.request.Request(
            server.url + "/v1/models/square_counter:predict",
            data=json.dumps({"instances": x.tolist()}).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            predictions = json.loads(response.read())["predictions"]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
    assert set(predictions[0]) == {"count", "rounded"}
    rounded = np.array([p["rounded"] for p in predictions])
    assert np.mean(rounded == counts) >= 0.9
