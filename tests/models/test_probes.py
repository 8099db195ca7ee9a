"""`kerascnn.models.probes`: the feature-map layers of the zoo's models
and the default one Grad-CAM weights (the probe and the graph-safe
`feature_map_gradients` are checked through Grad-CAM in
tests/visualize/test_explain_methods.py and tests/serving/test_explain.py)."""

import pytest

from kerascnn.errors import InvalidArgumentError
from kerascnn.models import build, probes


@pytest.mark.parametrize(
    "name, layer",
    [
        ("lenet", "c3_conv"),
        ("resnet20", "conv4_block3_out"),
        ("simple_convnet", "conv1"),
        ("vgg11", "block5_conv2"),
    ],
)
def test_default_layer_is_the_last_spatial_map(name, layer):
    # Small inputs keep VGG's dense layers (and the test) small.
    shape = (32, 32, 3) if name in ("resnet20", "vgg11") else (28, 28, 1)
    model = build(name, input_shape=shape, num_classes=10)
    assert probes.default_layer(model) == (layer,)


def test_resolve_layer_takes_a_name_or_path_and_lists_the_choices():
    model = build("lenet")
    assert probes.resolve_layer(model, "c1_conv") == ("c1_conv",)
    assert probes.feature_map_layers(model)[-1] == ("c3_conv",)
    with pytest.raises(
        InvalidArgumentError, match="layers with feature maps: "
    ):
        probes.resolve_layer(model, "predictions")
