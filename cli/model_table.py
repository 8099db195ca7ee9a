"""The model zoo as a static table, so `kerascnn models` starts instantly.

Listing the registry imports every family module and with it Keras and
TensorFlow (seconds); this table answers without them. A test checks it
against the registry (`tests/cli/test_fast_start.py`), so a new model
fails CI until its row is added here.

Rows: (name, family, default input, parameters at the default input,
reference).
"""

MODEL_TABLE = (
    (
        "alexnet",
        "alexnet",
        "227x227x3",
        62_378_344,
        "Krizhevsky et al. (2012), ImageNet classification with deep "
        "convolutional neural networks "
        "(https://papers.nips.cc/paper/4824-imagenet-classification-with-"
        "deep-convolutional-neural-networks)",
    ),
    (
        "lenet",
        "lenet",
        "28x28x1",
        61_706,
        "LeCun et al. (1998), Gradient-based learning applied to document "
        "recognition (http://yann.lecun.com/exdb/publis/pdf/lecun-01a.pdf)",
    ),
    (
        "resnet18",
        "resnet",
        "224x224x3",
        11_699_112,
        "He et al. (2016), Deep residual learning for image recognition "
        "(https://arxiv.org/abs/1512.03385)",
    ),
    (
        "resnet20",
        "resnet",
        "32x32x3",
        274_042,
        "He et al. (2016), Deep residual learning for image recognition "
        "(https://arxiv.org/abs/1512.03385)",
    ),
    (
        "resnet32",
        "resnet",
        "32x32x3",
        469_370,
        "He et al. (2016), Deep residual learning for image recognition "
        "(https://arxiv.org/abs/1512.03385)",
    ),
    (
        "resnet34",
        "resnet",
        "224x224x3",
        21_814_696,
        "He et al. (2016), Deep residual learning for image recognition "
        "(https://arxiv.org/abs/1512.03385)",
    ),
    (
        "resnet44",
        "resnet",
        "32x32x3",
        664_698,
        "He et al. (2016), Deep residual learning for image recognition "
        "(https://arxiv.org/abs/1512.03385)",
    ),
    (
        "resnet50",
        "resnet",
        "224x224x3",
        25_636_712,
        "He et al. (2016), Deep residual learning for image recognition "
        "(https://arxiv.org/abs/1512.03385)",
    ),
    (
        "resnet56",
        "resnet",
        "32x32x3",
        860_026,
        "He et al. (2016), Deep residual learning for image recognition "
        "(https://arxiv.org/abs/1512.03385)",
    ),
    (
        "resnet101",
        "resnet",
        "224x224x3",
        44_707_176,
        "He et al. (2016), Deep residual learning for image recognition "
        "(https://arxiv.org/abs/1512.03385)",
    ),
    (
        "resnet110",
        "resnet",
        "32x32x3",
        1_739_002,
        "He et al. (2016), Deep residual learning for image recognition "
        "(https://arxiv.org/abs/1512.03385)",
    ),
    (
        "resnet152",
        "resnet",
        "224x224x3",
        60_419_944,
        "He et al. (2016), Deep residual learning for image recognition "
        "(https://arxiv.org/abs/1512.03385)",
    ),
    (
        "simple_convnet",
        "simple_convnet",
        "28x28x1",
        433_890,
        "Saito (2016), Deep Learning from Scratch, ch. 7 "
        "(https://github.com/oreilly-japan/deep-learning-from-scratch)",
    ),
    (
        "slot_tagger",
        "slot_tagger",
        "?",
        367_392,
        "Mesnil et al. (2015), Using recurrent neural networks for slot "
        "filling in spoken language understanding "
        "(https://doi.org/10.1109/TASLP.2014.2383614); Hakkani-Tur et al. "
        "(2016), multi-domain joint semantic frame parsing; Liu & Lane "
        "(2016), attention-based recurrent neural network models for joint "
        "intent detection and slot filling",
    ),
    (
        "vgg11",
        "vgg",
        "224x224x3",
        132_863_336,
        "Simonyan & Zisserman (2015), Very deep convolutional networks for "
        "large-scale image recognition (https://arxiv.org/abs/1409.1556)",
    ),
    (
        "vgg13",
        "vgg",
        "224x224x3",
        133_047_848,
        "Simonyan & Zisserman (2015), Very deep convolutional networks for "
        "large-scale image recognition (https://arxiv.org/abs/1409.1556)",
    ),
    (
        "vgg16",
        "vgg",
        "224x224x3",
        138_357_544,
        "Simonyan & Zisserman (2015), Very deep convolutional networks for "
        "large-scale image recognition (https://arxiv.org/abs/1409.1556)",
    ),
    (
        "vgg19",
        "vgg",
        "224x224x3",
        143_667_240,
        "Simonyan & Zisserman (2015), Very deep convolutional networks for "
        "large-scale image recognition (https://arxiv.org/abs/1409.1556)",
    ),
)

# Aliases of the registry (`register_model(aliases=...)`), checked too.
MODEL_ALIASES = {"lenet5": "lenet", "lenet_5": "lenet"}


def unknown_model_message(name):
    """The registry's "Unknown model" line for a name neither the table
    nor its aliases hold, else `None`: said before TensorFlow loads."""
    key = str(name).strip().lower().replace("-", "_")
    names = [row[0] for row in MODEL_TABLE]
    if key in names or key in MODEL_ALIASES:
        return None
    close = [n for n in names if n.startswith(key[:3])]
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    return f"Unknown model {name!r}.{hint} Known models: {', '.join(names)}."


# What each model's default ("fast") recipe reached, measured with the
# command shown (docs/training.md: how the recipe was chosen, the
# curves, the machine). Rows: (model, data set, result, command).
RECIPE_RESULTS = (
    (
        "lenet",
        "mnist",
        "99.27% test accuracy, mean of seeds 0-2 (99.21, 99.32, 99.28; "
        "paper recipe 99.06%), 10 epochs",
        "kerascnn fit lenet --seed S",
    ),
    (
        "simple_convnet",
        "mnist",
        "99.25% test accuracy, mean of seeds 0-2 (99.24, 99.22, 99.28), "
        "10 epochs",
        "kerascnn fit simple_convnet --seed S",
    ),
    (
        "resnet20",
        "cifar10",
        "87.45% test accuracy, mean of seeds 0-1 (87.44, 87.46), "
        "40 epochs (goal 91%)",
        "kerascnn fit resnet20",
    ),
)
RECIPE_HELP = (
    "; ".join(
        f"{model} on {data}: {result}"
        for model, data, result, _ in RECIPE_RESULTS
    )
    + "."
)
