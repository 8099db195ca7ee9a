"""Helpers shared by the tests."""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np


def save_run(model, meta, run_dir):
    """Writes a minimal run directory (`model.keras` + `metadata.json`)."""
    os.makedirs(run_dir, exist_ok=True)
    model.save(os.path.join(run_dir, "model.keras"))
    meta.save(os.path.join(run_dir, "metadata.json"))
    return str(run_dir)


def tagger_metadata(tags, vocab, intents):
    """Metadata of a slot tagger trained on ATIS-style data (lowercased)."""
    from kerascnn.metadata import ModelMetadata

    return ModelMetadata(
        model="slot_tagger",
        task="sequence_tagging",
        dataset="atis",
        input_shape=(None,),
        class_names=list(tags),
        vocab=list(vocab),
        intent_names=list(intents),
        preprocessing={"lowercase": True},
    )


# One epoch of LeNet on 2,000 real MNIST digits: the float32 run of
# test_train.py and the bf16 run of test_precision.py share these settings
# so that they are held to the same accuracy bar.
SHORT_LENET_RUN = dict(
    epochs=1,
    limit=2000,
    eval_limit=2000,
    batch_size=16,
    learning_rate=3e-3,
    schedule="constant",
)


def trainable_count(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def run_model_test(model, input_shape, num_classes, batch_size=2, seed=0):
    """Forward pass on random data: output shape and valid probabilities.

    Also checks that the Functional config round-trips through JSON.
    """
    rng = np.random.default_rng(seed)
    x = rng.random((batch_size, *input_shape), dtype=np.float32)
    y = model(x, training=False)
    y = np.asarray(y)
    assert y.shape == (batch_size, num_classes)
    assert np.all(np.isfinite(y))
    np.testing.assert_allclose(y.sum(axis=-1), 1.0, rtol=1e-5)
    config = json.loads(json.dumps(model.get_config()))
    clone = model.__class__.from_config(config)
    assert clone.count_params() == model.count_params()
    assert [lyr.name for lyr in clone.layers] == [
        lyr.name for lyr in model.layers
    ]
    return y


def assert_round_trip_in_fresh_process(model, x, tmp_path, atol=0.0):
    """Saves `model` as .keras, reloads it in a new interpreter, compares."""
    expected = model.predict(x, verbose=0)
    if isinstance(expected, dict):
        expected = expected["tags"]
    model.save(tmp_path / "model.keras")
    np.save(tmp_path / "x.npy", x)
    got = load_and_predict_in_subprocess(
        tmp_path / "model.keras", tmp_path / "x.npy", tmp_path / "y.npy"
    )
    np.testing.assert_allclose(got, expected, rtol=0, atol=atol)


def load_and_predict_in_subprocess(model_path, x_path, out_path):
    """Loads a .keras file in a fresh interpreter and predicts on saved x."""
    code = textwrap.dedent(
        f"""
        import numpy as np, keras
        import kerascnn.layers  # registers the custom layers
        model = keras.saving.load_model({str(model_path)!r})
        x = np.load({str(x_path)!r})
        y = model.predict(x, verbose=0)
        if isinstance(y, dict):
            y = y["tags"]
        np.save({str(out_path)!r}, y)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return np.load(out_path)


def clear():
    keras.backend.clear_session()


def export(source, **settings):
    """`kerascnn.export.export` of a run or `.keras` file with its task
    resolved as `kerascnn export` resolves it (`kerascnn.tasks.task_of`):
    the export package itself never looks a task up."""
    from kerascnn import export as export_package
    from kerascnn import tasks

    return export_package.export(source, task=tasks.task_of(source), **settings)
