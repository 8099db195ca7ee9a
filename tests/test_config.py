import pytest

from kerascnn.config import RECIPES, recipe_for
from kerascnn.errors import InvalidArgumentError, UnknownModelError
from kerascnn.models import list_models


def test_every_model_has_a_valid_recipe():
    for name in list_models():
        config = recipe_for(name)
        assert config.model == name
        assert config.epochs >= 1


def test_overrides_win_and_none_keeps_recipe():
    config = recipe_for("resnet20", epochs=3, learning_rate=None)
    assert config.epochs == 3
    assert config.learning_rate == RECIPES["resnet20"].learning_rate
    assert config.dataset == "cifar10" and config.schedule == "step"


def test_model_options_merge_with_the_recipe():
    config = recipe_for("vgg16", model_options={"batch_norm": True})
    assert config.model_options == {"fc_units": 512, "batch_norm": True}


def test_alias_and_unknown_names():
    assert recipe_for("lenet5").model == "lenet"
    with pytest.raises(UnknownModelError):
        recipe_for("lenet9")
    with pytest.raises(InvalidArgumentError, match="Unknown training setting"):
        recipe_for("lenet", colour="blue")


def test_config_round_trips_through_dict():
    config = recipe_for("slot_tagger")
    assert type(config).from_dict(config.to_dict()) == config


def _sgd_step(optimizer, w, grad, steps):
    import keras

    var = keras.Variable(w)
    for _ in range(steps):
        optimizer.apply([keras.ops.convert_to_tensor(grad)], [var])
    return keras.ops.convert_to_numpy(var)


def test_sgd_weight_decay_matches_the_papers_l2_through_momentum():
    """Recipes give the papers' coupled L2; Keras decays outside momentum."""
    import numpy as np

    from kerascnn.train import make_optimizer

    config = recipe_for("resnet20", schedule="constant", learning_rate=0.1)
    assert config.weight_decay == 1e-4 and config.momentum == 0.9
    optimizer = make_optimizer(config, steps_per_epoch=1)
    w = np.full((4,), 3.0, "float32")
    ours = _sgd_step(optimizer, w, np.zeros(4, "float32"), steps=200)
    # The papers' update: v = 0.9 v + (g + l2 w); w -= lr v, with g = 0.
    ref, v = w.copy(), np.zeros_like(w)
    for _ in range(200):
        v = 0.9 * v + 1e-4 * ref
        ref = ref - 0.1 * v
    shrink_ours, shrink_ref = 3.0 - ours[0], 3.0 - ref[0]
    assert shrink_ours == pytest.approx(shrink_ref, rel=0.1)
