"""Training configuration and the per-model default recipes.

A recipe is data: a `TrainConfig` with the settings that make one model
train well on its default data set. `recipe_for(model, **overrides)` starts
from the recipe and applies what the user changed (CLI flags or keyword
arguments); `None` means "keep the recipe's value".
"""

import dataclasses
import json

from kerascnn import validation as v
from kerascnn.data.augment import RECIPES as AUGMENTATIONS
from kerascnn.data.sources import KNOWN
from kerascnn.errors import InvalidArgumentError
from kerascnn.hardware import POLICIES

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
SCHEDULES = ("constant", "cosine", "step", "one_cycle")
LOG_FORMATS = ("progress", "json", "quiet")
# "fast": the default recipes, at the literature's accuracy in few epochs;
# "paper": each model's paper (or earlier default) recipe.
RECIPE_NAMES = ("fast", "paper")
CACHE_MODES = ("auto", "memory", "disk", "none")
# `mixed_precision` / `--mixed-precision`: "auto" (kerascnn.hardware picks
# for this machine), "none" (float32) or a Keras mixed policy.
PRECISIONS = ("auto", "none", *POLICIES)


@dataclasses.dataclass
class TrainConfig:
    """Everything that defines one training run.

    Attributes:
        model: registry name, e.g. `"lenet"`.
        dataset: data set name for `kerascnn.data.load`.
        data_dir: local data folder (else `KERASCNN_DATA_DIR`, TFDS).
        epochs: passes over the training data.
        batch_size: GLOBAL batch size, split across replicas.
        optimizer: one of `OPTIMIZERS`.
        learning_rate: peak learning rate.
        momentum: SGD momentum (ignored by other optimizers).
        nesterov: Nesterov momentum for SGD.
        weight_decay: the papers' L2 coefficient (ResNet 1e-4, VGG 5e-4;
            0 = off), as if `weight_decay * w` were added to the gradient
            before momentum. SGD applies exactly that (through Keras'
            decoupled decay, see `kerascnn.optimizers`); Adam and RMSprop
            take the number as Keras' decoupled `weight_decay`, and AdamW
            uses 1e-4 when it is 0. Biases and batch-norm scales and
            offsets are not decayed.
        schedule: `"constant"`, `"cosine"` (to 0), `"step"` (divide by 10
            at 50% and 75% of training, He et al. 2016) or `"one_cycle"`
            (a linear rise over the warm-up, then a linear fall to ~0,
            `kerascnn.schedules.OneCycle`).
        warmup_epochs: linear learning-rate warm-up epochs.
        label_smoothing: cross-entropy label smoothing.
        ema_momentum: keep an exponential moving average of the weights
            with this momentum (e.g. 0.999) and end with it (the saved,
            evaluated and exported model); 0 = off
            (`kerascnn.optimizers`).
        augment: `True` (the data set's augmentation recipe), `False`, or
            a recipe name of `kerascnn.data.augment.RECIPES` (e.g.
            `"affine"`).
        recipe: the name of the recipe this config started from
            (`RECIPE_NAMES`: `"fast"`, the default, or `"paper"`).
        model_options: extra builder keyword arguments.
        input_shape: model input shape; default: the data set's.
        seed: seed for initialization, shuffling and augmentation.
        limit: use only the first N training examples (quick runs).
        eval_limit: use only the first N test examples.
        validation_split: fraction (or count) of the training examples
            held out for validation when the data set has no validation
            split; `None`: the source's default (0.2 for an image folder
            without split folders; others validate on their test split).
        mixed_precision: `"auto"` (the policy `kerascnn.hardware` picks for
            the machine: bf16 on CPUs with native bf16, float16 on GPUs
            with tensor cores, else float32), `"none"` (float32), or a
            policy name, `"mixed_bfloat16"` / `"mixed_float16"`. `fit`
            records the resolved choice in the run's config.json.
        jit_compile: compile the train step with XLA.
        steps_per_execution: train steps per `tf.function` call (fewer
            Python round trips; small models' recipes set it, see
            benchmarks/README.md).
        strategy: distribution strategy name (`kerascnn.distribute`).
        run_dir: output folder; default `runs/<model>-<timestamp>`.
        runs_root: parent folder of default run directories.
        export_dir: export root for the final SavedModel.
        export: export a SavedModel at the end of training.
        export_name: model folder name under `export_dir` (default: the
            model name).
        log_format: `"progress"` (Keras bar), `"json"` (a line per epoch) or
            `"quiet"`.
        cache: how image folders and shards are held (`kerascnn.data.
            streaming`): `"auto"` (memory if the decoded split fits the
            budget, else streamed), `"memory"`, `"none"` (stream), `"disk"`
            (stream cached in `<run_dir>/data_cache`) or `"disk:FOLDER"`.
        skip_bad: skip (and count, per epoch) corrupt image files instead
            of stopping with an error that names the file.
        data_service: `grpc://HOST:PORT` of a tf.data service dispatcher
            that decodes and augments the training data, or `None`.
        weights: pretrained weights to start from: `"imagenet"`, a `.h5`,
            `.weights.h5` or `.keras` file, or a kerascnn run directory
            (`kerascnn.models.weights`); `None`: random initialization.
            With weights the run follows `kerascnn.fine_tune`'s schedule.
        freeze_epochs: with `weights`, epochs that train the head alone
            (backbone frozen) before all layers train at a tenth of the
            rate; `None`: a third of the epochs (`recipe_for` fills it).
        precise_bn_batches: training batches over which the batch-norm
            moving statistics are recomputed at the end of the last epoch,
            before its validation (`kerascnn.precise_bn`); 0: off.
        small_data: the number of images of a small folder for which
            `recipe_for` chose the small-data recipe
            (`kerascnn.small_data`), else `None`.
    """

    model: str
    dataset: str = "mnist"
    data_dir: str = None
    epochs: int = 10
    batch_size: int = 128
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 0.0
    schedule: str = "constant"
    warmup_epochs: int = 0
    label_smoothing: float = 0.0
    ema_momentum: float = 0.0
    augment: bool = True
    recipe: str = "fast"
    model_options: dict = dataclasses.field(default_factory=dict)
    input_shape: tuple = None
    seed: int = 0
    limit: int = None
    eval_limit: int = None
    validation_split: float = None
    mixed_precision: str = "auto"
    jit_compile: bool = False
    steps_per_execution: int = 1
    strategy: str = "auto"
    run_dir: str = None
    runs_root: str = "runs"
    export_dir: str = "saved_models"
    export: bool = True
    export_name: str = None
    log_format: str = "progress"
    cache: str = "auto"
    skip_bad: bool = False
    data_service: str = None
    weights: str = None
    freeze_epochs: int = None
    precise_bn_batches: int = 100
    small_data: int = None

    def validate(self):
        """Raises `InvalidArgumentError` on values no run could use."""
        for name in ("epochs", "batch_size", "steps_per_execution"):
            v.check_positive_int(name, getattr(self, name))
        for name in ("limit", "eval_limit"):
            if getattr(self, name) is not None:
                v.check_positive_int(name, getattr(self, name))
        v.check_positive_number("learning_rate", self.learning_rate)
        v.check_choice("optimizer", self.optimizer, OPTIMIZERS)
        v.check_choice("schedule", self.schedule, SCHEDULES)
        v.check_choice("log_format", self.log_format, LOG_FORMATS)
        # `None` (float32) is what run directories before "auto" recorded.
        v.check_choice(
            "mixed_precision", self.mixed_precision, (*PRECISIONS, None)
        )
        v.check_rate("label_smoothing", self.label_smoothing)
        v.check_rate("ema_momentum", self.ema_momentum)
        v.check_choice("recipe", self.recipe, RECIPE_NAMES)
        if not isinstance(self.augment, bool):
            v.check_choice("augment", self.augment, AUGMENTATIONS)
        mode = str(self.cache).partition(":")[0]
        v.check_choice("cache", mode, CACHE_MODES)
        if self.data_service is not None and not str(
            self.data_service
        ).startswith("grpc://"):
            raise InvalidArgumentError(
                "`data_service` must be the dispatcher's grpc://HOST:PORT. "
                f"Received: data_service={self.data_service!r}"
            )
        v.check_positive_int("warmup_epochs", self.warmup_epochs, minimum=0)
        v.check_positive_int(
            "precise_bn_batches", self.precise_bn_batches, minimum=0
        )
        self._validate_weights()
        if self.warmup_epochs and self.warmup_epochs >= self.epochs:
            raise InvalidArgumentError(
                "`warmup_epochs` must be in [0, epochs). "
                f"Received: warmup_epochs={self.warmup_epochs!r}, "
                f"epochs={self.epochs!r}"
            )
        return self

    def _validate_weights(self):
        if self.weights is None:
            return
        # Start-up: the CLI reads recipes before the zoo (Keras) loads.
        from kerascnn.models import get_model_info
        from kerascnn.models import weights as pretrained

        if pretrained.check_source(self.weights) == pretrained.IMAGENET:
            pretrained.imagenet_file(get_model_info(self.model).name, True)
        if self.freeze_epochs is not None:
            v.check_positive_int("freeze_epochs", self.freeze_epochs, minimum=0)
            if self.freeze_epochs >= self.epochs:
                raise InvalidArgumentError(
                    "`freeze_epochs` must be in [0, epochs): the head-only "
                    "epochs come before the fine-tuning ones. Received: "
                    f"freeze_epochs={self.freeze_epochs!r}, "
                    f"epochs={self.epochs!r}"
                )

    def to_dict(self):
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, d):
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise InvalidArgumentError(
                f"Unknown training setting(s): {', '.join(unknown)}."
            )
        return cls(**d)


# Small models: a LeNet step is short, so Python's per-step round trip is
# worth batching; 8 steps per call measured fastest (benchmarks/README.md).
_SMALL_MODEL_STEPS_PER_EXECUTION = 8
_MNIST_ADAM = dict(
    dataset="mnist",
    epochs=10,
    batch_size=128,
    optimizer="adam",
    learning_rate=2e-3,
    schedule="cosine",
    steps_per_execution=_SMALL_MODEL_STEPS_PER_EXECUTION,
)
# He et al. (2016) sec. 4.2: SGD 0.1, momentum 0.9, weight decay 1e-4,
# batch 128, /10 at 32k and 48k of 64k iterations (~164 epochs).
# The image recipes keep `mixed_precision="auto"` (bf16 on native-bf16
# CPUs): BN statistics, the loss, the softmax and the weights stay
# float32 under the mixed policy, and ResNet-20 reaches float32's test
# accuracy in bf16 (curves over seeds; VGG/AlexNet: a one-step
# diagnosis only; docs/performance.md).
_CIFAR_RESNET = dict(
    dataset="cifar10",
    epochs=164,
    batch_size=128,
    optimizer="sgd",
    learning_rate=0.1,
    momentum=0.9,
    weight_decay=1e-4,
    schedule="step",
)
# BN-free VGG/AlexNet from scratch diverge or stall at SGD 0.1; a short
# linear warm-up into SGD 0.01 plus weight decay trains them reliably.
_CIFAR_WARMUP_SGD = dict(
    dataset="cifar10",
    epochs=30,
    batch_size=128,
    optimizer="sgd",
    learning_rate=0.01,
    weight_decay=5e-4,
    schedule="cosine",
)
# The fast recipes (`recipe="fast"`, the default) reach the literature's
# accuracy in a fraction of the paper's epochs; every setting was chosen
# on a validation split held out of the training data (the last 5,000
# images), never on the test split (docs/training.md says how).
# LeNet-5 on MNIST: small random rotations (10 degrees), zooms (10%) and
# shifts (10%) of the digits ("affine") and a one-cycle learning rate (a
# linear rise over 2 epochs to Adam 3e-3, then a linear fall to ~0). The
# weights' moving average (0.999) measured the same on the held-out split
# and is left out; label smoothing, batch 64 or 256, 2e-3 or 6e-3, 12
# epochs, weaker distortions and Nesterov SGD were no better.
_MNIST_FAST = dict(
    _MNIST_ADAM,
    learning_rate=3e-3,
    schedule="one_cycle",
    warmup_epochs=2,
    augment="affine",
)
# CIFAR ResNets in 40 epochs instead of 164: one-cycle Nesterov SGD at
# the paper's batch 128 (batch 256 was no faster per epoch on a 2-core
# CPU), label smoothing 0.1, the papers' L2 at 5e-4 (kernels only:
# `kerascnn.optimizers` never decays biases or batch-norm parameters),
# each residual block starting as its shortcut (`zero_init_residual`),
# pad-crop-flip (translate + flip) augmentation. These are the
# literature's pieces (Goyal et al. 2017; Page 2018; airbench); the full
# 40-epoch run is the lead's to measure (docs/training.md).
_CIFAR_RESNET_FAST = dict(
    dataset="cifar10",
    epochs=40,
    batch_size=128,
    optimizer="sgd",
    learning_rate=0.1,
    momentum=0.9,
    nesterov=True,
    weight_decay=5e-4,
    schedule="one_cycle",
    warmup_epochs=8,
    label_smoothing=0.1,
)
RECIPES = {
    "lenet": TrainConfig(model="lenet", **_MNIST_FAST),
    "simple_convnet": TrainConfig(model="simple_convnet", **_MNIST_FAST),
    # The 4096-wide classifier is sized for ImageNet: 512 suffices for
    # CIFAR-10 and cuts the parameters by 30x.
    "vgg16": TrainConfig(
        model="vgg16",
        **_CIFAR_WARMUP_SGD,
        warmup_epochs=2,
        model_options={"fc_units": 512},
    ),
    "alexnet": TrainConfig(
        model="alexnet",
        **_CIFAR_WARMUP_SGD,
        warmup_epochs=1,
        model_options={"fc_units": 1024},
    ),
    # Small batches, many updates (~7k Adam steps), cosine decay, dropout
    # 0.5 on the embeddings and BiLSTM outputs, word dropout to train
    # <unk>; checkpoint by dev span F1 (see kerascnn.tasks.sequence_tagging).
    "slot_tagger": TrainConfig(
        model="slot_tagger",
        dataset="atis",
        epochs=25,
        batch_size=16,
        optimizer="adam",
        learning_rate=3e-3,
        schedule="cosine",
        # Label smoothing 0.1 (tags and intent) lifted test intent accuracy
        # over 3 seeds without costing span F1 (README, Slot filling).
        label_smoothing=0.1,
        model_options={
            "embedding_dim": 200,
            "units": 200,
            "dropout": 0.5,
            "embedding_dropout": 0.5,
            "word_dropout": 0.1,
            "intent_pooling": "attention",
        },
        # float32: on a CPU Keras runs the LSTM as a generic per-time-step
        # loop (no fused kernel), where bf16 re-casts the weight matrices
        # at every step and batch-16 bf16 products are no faster, so bf16
        # steps were slower (docs/performance.md).
        mixed_precision="none",
    ),
}
for _depth in (20, 32, 44, 56, 110):
    RECIPES[f"resnet{_depth}"] = TrainConfig(
        model=f"resnet{_depth}",
        **_CIFAR_RESNET_FAST,
        model_options={"zero_init_residual": True},
    )
for _depth in (11, 13, 19):
    RECIPES[f"vgg{_depth}"] = dataclasses.replace(
        RECIPES["vgg16"], model=f"vgg{_depth}"
    )
# ResNet-18..152 on a small built-in set (--dataset cifar10).
SMALL_SET_RECIPES = {
    f"resnet{_depth}": TrainConfig(
        model=f"resnet{_depth}",
        dataset="cifar10",
        epochs=90,
        batch_size=128,
        optimizer="sgd",
        learning_rate=0.1,
        weight_decay=1e-4,
        schedule="step",
    )
    for _depth in (18, 34, 50, 101, 152)
}
RECIPES.update(SMALL_SET_RECIPES)
# `recipe="paper"`: the recipes the fast ones replaced (each model's
# paper, or for LeNet the earlier default, 99.08% on MNIST); models
# without an entry have one recipe, the same under both names.
PAPER_RECIPES = {
    "lenet": TrainConfig(model="lenet", recipe="paper", **_MNIST_ADAM),
    "simple_convnet": TrainConfig(
        model="simple_convnet", recipe="paper", **_MNIST_ADAM
    ),
}
for _depth in (20, 32, 44, 56, 110):
    PAPER_RECIPES[f"resnet{_depth}"] = TrainConfig(
        model=f"resnet{_depth}", recipe="paper", **_CIFAR_RESNET
    )


# ImageNet at 224x224 (an image folder or shards named by --dataset; the
# ResNets default to it and say how to get it). Learning rates follow the
# papers per batch and scale linearly with --batch-size (Goyal et al.
# 2017): ResNet 0.1 per 256 images, weight decay 1e-4, 90 epochs (He et
# al. 2016); AlexNet 0.01 at batch 128, weight decay 5e-4, 90 epochs
# (Krizhevsky et al. 2012); VGG 0.01 per 256, weight decay 5e-4, 74 epochs
# (Simonyan & Zisserman 2015). "step" divides by 10 at 50% and 75%, where
# the papers divided on plateaus. Batches are smaller than the papers' so
# that a 224 px step fits a CPU host's memory.
IMAGENET = "imagenet"
IMAGENET_SHAPE = (224, 224, 3)
_IMAGENET_SGD = dict(
    dataset=IMAGENET,
    input_shape=IMAGENET_SHAPE,
    optimizer="sgd",
    momentum=0.9,
    schedule="step",
)
IMAGENET_RECIPES = {
    "alexnet": TrainConfig(
        model="alexnet", **_IMAGENET_SGD, epochs=90, batch_size=128,
        learning_rate=0.01, weight_decay=5e-4,
    ),
}  # fmt: skip
for _depth in (11, 13, 16, 19):
    IMAGENET_RECIPES[f"vgg{_depth}"] = TrainConfig(
        model=f"vgg{_depth}", **_IMAGENET_SGD, epochs=74, batch_size=64,
        learning_rate=0.01 * 64 / 256, weight_decay=5e-4,
    )  # fmt: skip
for _depth in (18, 34, 50, 101, 152):
    IMAGENET_RECIPES[f"resnet{_depth}"] = RECIPES[f"resnet{_depth}"] = (
        TrainConfig(
            model=f"resnet{_depth}", **_IMAGENET_SGD, epochs=90,
            batch_size=64, learning_rate=0.1 * 64 / 256, weight_decay=1e-4,
        )
    )  # fmt: skip


def _is_image_path(dataset):
    """A data set named by a path (folder or shards), or ImageNet itself:
    the 224 px models then take their ImageNet recipe."""

    if dataset is None or dataset in KNOWN or dataset.startswith("tfds:"):
        return False
    return not dataset.endswith(".npz")


def _base_recipe(name, dataset, recipe="fast"):
    if name in IMAGENET_RECIPES and _is_image_path(dataset):
        base = IMAGENET_RECIPES[name]
    elif dataset is not None and name in SMALL_SET_RECIPES:
        base = SMALL_SET_RECIPES[name]
    elif recipe == "paper" and name in PAPER_RECIPES:
        base = PAPER_RECIPES[name]
    else:
        base = RECIPES.get(name, TrainConfig(model=name))
    return dataclasses.replace(base, recipe=recipe)


def _scale_learning_rate(base, changes):
    """ImageNet recipes: the learning rate follows a changed batch size."""
    if base.dataset != IMAGENET or "learning_rate" in changes:
        return changes
    batch = changes.get("batch_size", base.batch_size)
    return dict(
        changes, learning_rate=base.learning_rate * batch / base.batch_size
    )


def _scale_warmup(base, changes):
    """A recipe's warm-up is a share of its epochs: fewer `epochs` (and no
    `warmup_epochs` given) shorten it in proportion (e.g. resnet20's 8 of
    40 epochs: 1 of 5), so `--epochs N` keeps a valid recipe."""
    if "epochs" not in changes or "warmup_epochs" in changes:
        return changes
    if not base.warmup_epochs or changes["epochs"] == base.epochs:
        return changes
    if not isinstance(changes["epochs"], int) or changes["epochs"] < 1:
        return changes  # `validate` names the bad value
    warmup = round(base.warmup_epochs * changes["epochs"] / base.epochs)
    return dict(changes, warmup_epochs=min(warmup, changes["epochs"] - 1))


def recipe_for(model, **overrides):
    """Returns the model's recipe with non-`None` overrides applied.

    `recipe` (an override like the others) picks the named recipe:
    `"fast"` (the default) or `"paper"` (`PAPER_RECIPES`, for the models
    that have one; the others have one recipe under both names).
    AlexNet, VGG and ResNet-18..152 take their ImageNet recipe (224 px,
    the papers' SGD settings) when `dataset` is an image folder or shard
    set; the ResNets default to it.
    """
    # Start-up: the CLI reads recipes before the zoo (Keras) loads.
    from kerascnn.models import get_model_info

    name = get_model_info(model).name
    recipe = overrides.get("recipe") or "fast"
    v.check_choice("recipe", recipe, RECIPE_NAMES)
    base = _base_recipe(name, overrides.get("dataset"), recipe)
    changes = {k: v for k, v in overrides.items() if v is not None}
    changes = _scale_learning_rate(base, changes)
    base = _fine_tune_and_small_data(base, changes)
    changes = _scale_warmup(base, changes)
    if changes.get("augment") is True and isinstance(base.augment, str):
        del changes["augment"]  # `--augment`: the recipe's own, e.g. affine
    if "model_options" in changes:
        changes["model_options"] = {
            **base.model_options,
            **changes["model_options"],
        }
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(changes) - names)
    if unknown:
        raise InvalidArgumentError(
            f"Unknown training setting(s): {', '.join(unknown)}."
        )
    config = dataclasses.replace(base, **changes)
    if config.weights is not None and config.freeze_epochs is None:
        # Start-up: fine_tune builds on the zoo (Keras).
        from kerascnn.fine_tune import default_freeze_epochs

        config.freeze_epochs = default_freeze_epochs(config.epochs)
    return config.validate()


# Starting from pretrained weights (`--weights`): Nesterov SGD at 1e-2
# for the head, a tenth of it for all layers (`kerascnn.fine_tune`), and
# far fewer epochs than a from-scratch recipe (Keras' transfer-learning
# guide's schedule). Not Adam: one optimizer serves both phases, and
# Adam's bias correction counts the steps from the start of the run, so
# the backbone's first updates in phase 2 came out ~3x the learning rate
# on every weight (Adam's moments of a variable that starts late are
# corrected as if they were old); on a 3-class folder from a 7-class
# CIFAR run the accuracy fell to chance at the switch and the run ended at
# 55.0% (held-out 900 photos) against 65.1% with SGD (docs/your-own-images.md).
FINE_TUNE_DEFAULTS = dict(
    epochs=10,
    optimizer="sgd",
    learning_rate=1e-2,
    momentum=0.9,
    nesterov=True,
    weight_decay=0.0,
    warmup_epochs=0,
    schedule="cosine",
)


def _fine_tune_and_small_data(base, changes):
    """The base recipe with the fine-tuning defaults (when `weights` is
    given) and the small-data recipe (a small image folder) applied;
    the caller's explicit `changes` still win over both."""
    # Start-up: small_data lists folders through kerascnn.data.
    from kerascnn import small_data

    if changes.get("weights") is not None:
        base = dataclasses.replace(base, **FINE_TUNE_DEFAULTS)
    return small_data.apply(base, changes)
