import pytest

from kerascnn import models, summary


@pytest.mark.parametrize(
    "name, macs, rel",
    # Published forward costs: VGG16 15.5 GMACs, ResNet-50 3.8-3.9 GMACs
    # (He et al. Table 1: 3.8e9 multiply-adds), ResNet-20 about 41M.
    [
        ("vgg16", 15.47e9, 0.01),
        ("resnet50", 3.86e9, 0.02),
        ("resnet20", 41e6, 0.02),
    ],
)
def test_forward_cost_matches_published(name, macs, rel):
    s = summary.summarize(models.build(name))
    assert s.macs == pytest.approx(macs, rel=rel)
    assert s.flops == 2 * s.macs


def test_lenet_table_rows_and_totals():
    s = summary.summarize(models.build("lenet"))
    rows = {r.name: r for r in s.rows}
    assert rows["c1_conv"].params == 156
    assert rows["c1_conv"].macs == 28 * 28 * 6 * 25
    assert rows["c5_fc"].params == 48_120
    assert s.total_params == 61_706 and s.non_trainable_params == 0
    text = summary.format_summary(s)
    assert "Total params: 61,706" in text
    assert "c3_conv (Conv2D)" in text
