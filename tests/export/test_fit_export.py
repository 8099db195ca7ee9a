"""`fit` exports to `saved_models/<model>/<version>/` (the README's claim)."""

import json
import os

import numpy as np

from kerascnn.export import verify


def test_fit_exports_a_verified_saved_model_version(
    data_dir, mnist, tmp_path, monkeypatch
):
    import keras
    import tensorflow as tf

    from kerascnn.config import recipe_for
    from kerascnn.train import fit

    monkeypatch.chdir(tmp_path)  # the default export root is relative
    verified_on = []
    real_compare = verify.compare

    def compare(*args, **kwargs):
        verified_on.append(kwargs.get("verified_on"))
        return real_compare(*args, **kwargs)

    monkeypatch.setattr(verify, "compare", compare)
    config = recipe_for(
        "lenet",
        data_dir=data_dir,
        epochs=1,
        limit=256,
        eval_limit=100,
        batch_size=32,
        log_format="quiet",
    )
    assert config.export and config.export_dir == "saved_models"
    result = fit(config)

    version_dir = tmp_path / "saved_models" / "lenet" / "1"
    assert os.path.abspath(result.export_path) == str(version_dir)
    assert sorted(os.listdir(tmp_path / "saved_models")) == ["lenet"]
    assert (version_dir / "saved_model.pb").is_file()
    # Verified on the real test split before it was moved into place.
    assert verified_on == ["mnist test split (500 examples)"]
    with open(version_dir / "assets" / "kerascnn_metadata.json") as f:
        meta = json.load(f)
    assert (meta["model"], meta["dataset"]) == ("lenet", "mnist")
    # It loads in TensorFlow and answers like the run's Keras model.
    loaded = tf.saved_model.load(str(version_dir))
    x = (mnist["test"][0][:16] / 255.0).astype(np.float32)
    out = loaded.signatures["serving_default"](images=tf.constant(x))
    model = keras.saving.load_model(os.path.join(result.run_dir, "model.keras"))
    expected = np.asarray(model(x, training=False), np.float32)
    # The export's own SavedModel tolerance (verify.SAVED_MODEL_TOLERANCE).
    np.testing.assert_allclose(
        out["probabilities"].numpy(),
        expected,
        atol=verify.SAVED_MODEL_TOLERANCE,
        rtol=0,
    )
