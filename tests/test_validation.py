"""One argument validator, one message style: `Received: name=value`."""

import pytest

from kerascnn import models, validation
from kerascnn.config import recipe_for
from kerascnn.errors import ExportError, InvalidArgumentError


@pytest.mark.parametrize(
    "settings, message",
    [
        (
            {"epochs": 0},
            "`epochs` must be a positive integer. Received: epochs=0",
        ),
        (
            {"optimizer": "adagrad"},
            "`optimizer` must be one of 'adam', 'adamw', 'sgd', 'rmsprop'. "
            "Received: optimizer='adagrad'",
        ),
        ({"learning_rate": 0.0}, "`learning_rate` must be > 0. Received: "),
        ({"label_smoothing": 1.0}, "`label_smoothing` must be in [0, 1). "),
        ({"warmup_epochs": -1}, "`warmup_epochs` must be an integer >= 0. "),
        ({"warmup_epochs": 10, "epochs": 10}, "Received: warmup_epochs=10"),
        ({"mixed_precision": "fp8"}, "Received: mixed_precision='fp8'"),
    ],
)
def test_config_messages(settings, message):
    with pytest.raises(InvalidArgumentError) as e:
        recipe_for("lenet", **settings)
    assert message in str(e.value)


@pytest.mark.parametrize(
    "name, options, message",
    [
        ("lenet", {"num_classes": 0}, "Received: num_classes=0"),
        ("vgg16", {"dropout": 1.5}, "`dropout` must be in [0, 1). Received"),
        ("alexnet", {"dropout": "half"}, "Received: dropout='half'"),
        ("resnet20", {"shortcut": "b"}, "Received: shortcut='b'"),
    ],
)
def test_model_messages(name, options, message):
    with pytest.raises(InvalidArgumentError) as e:
        models.build(name, **options)
    assert message in str(e.value)


def test_error_class_is_the_callers():
    with pytest.raises(ExportError, match=r"Received: quantize='int4'"):
        validation.check_choice(
            "quantize", "int4", ("none", "int8"), error=ExportError
        )
    with pytest.raises(InvalidArgumentError, match="Received: units=True"):
        validation.check_positive_int("units", True)
