"""The label-smoothed sparse cross-entropy, and models compiled with it."""

import subprocess
import sys
import textwrap

import keras
import numpy as np

from kerascnn.losses import SparseSmoothedCrossentropy


def test_matches_categorical_crossentropy_on_one_hot_labels():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(5), size=8).astype("float32")
    labels = rng.integers(0, 5, size=8)
    expected = keras.losses.CategoricalCrossentropy(label_smoothing=0.1)(
        np.eye(5, dtype="float32")[labels], probs
    )
    got = SparseSmoothedCrossentropy(0.1)(labels, probs)
    np.testing.assert_allclose(float(got), float(expected), rtol=1e-6)
    # Smoothing changes the value: 0 gives plain sparse cross-entropy.
    plain = keras.losses.SparseCategoricalCrossentropy()(labels, probs)
    no_smoothing = SparseSmoothedCrossentropy(0.0)(labels, probs)
    np.testing.assert_allclose(float(no_smoothing), float(plain), rtol=1e-6)
    assert abs(float(got) - float(plain)) > 1e-3


def test_a_model_trained_with_it_loads_in_a_fresh_process(tmp_path):
    """`kerascnn fit --label-smoothing` saves a model whose compile config
    names this loss; inference (export, predict, evaluate) loads it without
    compiling, so the training code's loss need not be imported."""
    inputs = keras.Input((3,))
    outputs = keras.layers.Dense(4, activation="softmax")(inputs)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss=SparseSmoothedCrossentropy(0.1))
    model.fit(np.ones((4, 3)), np.arange(4), epochs=1, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    code = textwrap.dedent(
        f"""
        import sys
        import numpy as np
        from kerascnn.tasks import load_model_and_metadata
        model, meta = load_model_and_metadata({str(path)!r})
        probs = model.predict(np.ones((2, 3)), verbose=0)
        print("kerascnn.losses" in sys.modules, probs.shape)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "False (2, 4)"
