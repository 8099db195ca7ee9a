import dataclasses

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
    assert config.dataset == "cifar10" and config.schedule == "one_cycle"


def test_fast_is_the_default_and_paper_keeps_the_papers_recipe():
    fast, paper = recipe_for("lenet"), recipe_for("lenet", recipe="paper")
    assert fast.recipe == "fast" and paper.recipe == "paper"
    assert fast.augment == "affine" and fast.schedule == "one_cycle"
    assert fast.learning_rate == 3e-3 and fast.warmup_epochs == 2
    assert (paper.epochs, paper.learning_rate, paper.schedule) == (
        10, 2e-3, "cosine",
    )  # fmt: skip
    assert paper.augment is True and paper.ema_momentum == 0
    resnet = recipe_for("resnet20", recipe="paper")
    assert (resnet.epochs, resnet.schedule, resnet.weight_decay) == (
        164, "step", 1e-4,
    )  # fmt: skip
    assert resnet.model_options == {} and not resnet.nesterov
    fast = recipe_for("resnet56")
    assert fast.epochs == 40 and fast.nesterov and fast.label_smoothing
    assert fast.model_options == {"zero_init_residual": True}
    # One recipe only: the same settings under both names.
    vgg = recipe_for("vgg16", recipe="paper")
    assert dataclasses.replace(vgg, recipe="fast") == recipe_for("vgg16")


def test_augment_true_keeps_the_recipes_augmentation():
    assert recipe_for("lenet", augment=True).augment == "affine"
    assert recipe_for("lenet", augment=False).augment is False
    assert recipe_for("lenet", recipe="paper", augment=True).augment is True


def test_fewer_epochs_shorten_the_warmup_in_proportion():
    assert recipe_for("resnet20").warmup_epochs == 8
    assert recipe_for("resnet20", epochs=5).warmup_epochs == 1
    assert recipe_for("resnet20", epochs=20).warmup_epochs == 4
    assert recipe_for("lenet", epochs=1).warmup_epochs == 0
    assert recipe_for("resnet20", epochs=5, warmup_epochs=3).warmup_epochs == 3


@pytest.mark.parametrize(
    "overrides, match",
    [
        ({"recipe": "quick"}, r"`recipe` must be one of 'fast', 'paper'"),
        ({"augment": "twist"}, r"`augment` must be one of .*'affine'"),
        ({"ema_momentum": 1.0}, r"`ema_momentum` must be in \[0, 1\)"),
        ({"schedule": "cyclic"}, "one_cycle"),
    ],
)
def test_bad_recipe_settings_say_what_is_accepted(overrides, match):
    with pytest.raises(InvalidArgumentError, match=match):
        recipe_for("lenet", **overrides)


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

    config = recipe_for(
        "resnet20", recipe="paper", schedule="constant", learning_rate=0.1
    )
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
