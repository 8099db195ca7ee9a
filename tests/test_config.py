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
