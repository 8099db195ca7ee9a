"""The small-data recipe: defaults for an image folder of a few hundred
images.

A from-scratch recipe counts epochs over 50,000 (CIFAR-10) or 1.28M
(ImageNet) images; on a folder of 300 photos the same numbers give a few
dozen steps, statistics that have not settled and a model that guesses
(docs/your-own-images.md). When `recipe_for` sees an image folder with
fewer than `SMALL_FOLDER_IMAGES` training images, it sets whatever the
caller did not:

* **epochs by steps**: enough epochs for about `TARGET_STEPS` updates
  (`FINE_TUNE_STEPS` when starting from pretrained weights);
* **batch size** `BATCH_SIZE`, so those are more, noisier updates;
* **augmentation**: pad-4 random crop and flip for inputs up to
  `PAD_CROP_MAX_SIZE` px (bigger inputs keep their own recipe);
* **label smoothing** `LABEL_SMOOTHING`, weight decay `WEIGHT_DECAY` and a
  cosine schedule after a short warm-up.

`describe(config)` is the one line `fit` prints about the choice.
"""

import dataclasses
import math
import os

from kerascnn.data import sources
from kerascnn.errors import KerasCNNError

SMALL_FOLDER_IMAGES = 2000
TARGET_STEPS = 400
FINE_TUNE_STEPS = 300
BATCH_SIZE = 32
LABEL_SMOOTHING = 0.1
WEIGHT_DECAY = 5e-4
LEARNING_RATE = 0.05
# From weights: Nesterov SGD for the head at 0.05, all layers at 0.005
# (`kerascnn.fine_tune`). Chosen on a 3-class folder (cat, dog, frog: 80
# training photos a class, 900 other training photos held out) from a
# ResNet-20 run on the other 7 classes, seed 0: 65.1% held out, against
# 55.0% with Adam 1e-2 / 1e-3, 62.1% with Adam 1e-3 and no head-only
# phase, 65.1% with SGD 0.01 and no head-only phase, 47.0% at 0.03, and
# 56-57% from scratch.
FINE_TUNE_LEARNING_RATE = 0.05
WARMUP_EPOCHS = 2
PAD_CROP_MAX_SIZE = 64
# The settings this recipe may choose; an explicit value of any wins.
FIELDS = ("epochs", "batch_size", "augment", "label_smoothing",
          "weight_decay", "learning_rate", "schedule", "warmup_epochs",
          "optimizer")  # fmt: skip


def training_images(dataset, data_dir=None, validation_split=None):
    """Training images of an image-folder `dataset`, or `None` for any
    other data set (or one that cannot be listed: `fit` says why)."""

    if not dataset or not os.path.isdir(os.path.expanduser(str(dataset))):
        return None
    try:
        raw = sources.read(dataset, "train", data_dir, validation_split)
    except KerasCNNError:
        return None
    if not isinstance(raw, sources.FileSplit):
        return None
    return len(raw.paths)


def _small_input(base, changes):
    shape = changes.get("input_shape") or base.input_shape
    return shape is None or max(shape[:2]) <= PAD_CROP_MAX_SIZE


def apply(base, changes):
    """`base` with the small-data recipe for the fields not in `changes`,
    when `changes["dataset"]` is a small image folder; else `base`."""
    n = training_images(
        changes.get("dataset"),
        changes.get("data_dir"),
        changes.get("validation_split"),
    )
    if n is None:
        return base
    if changes.get("limit"):
        n = min(n, changes["limit"])
    if n >= SMALL_FOLDER_IMAGES:
        return base
    batch = changes.get("batch_size", BATCH_SIZE)
    steps = FINE_TUNE_STEPS if changes.get("weights") else TARGET_STEPS
    recipe = {
        "epochs": max(1, math.ceil(steps / math.ceil(n / batch))),
        "batch_size": BATCH_SIZE,
        "label_smoothing": LABEL_SMOOTHING,
        "small_data": n,
    }
    if _small_input(base, changes):
        recipe["augment"] = "pad_crop_flip"
    if changes.get("weights"):
        recipe["learning_rate"] = FINE_TUNE_LEARNING_RATE
    else:
        recipe.update(
            optimizer="sgd",
            learning_rate=LEARNING_RATE,
            weight_decay=WEIGHT_DECAY,
            schedule="cosine",
            warmup_epochs=WARMUP_EPOCHS,
        )
    if "epochs" in changes:
        recipe.pop("warmup_epochs", None)
    return dataclasses.replace(base, **recipe)


def describe(config):
    """One line: what the small-data recipe chose, and why; `None` if it
    did not apply."""
    if not config.small_data:
        return None
    steps = config.epochs * math.ceil(config.small_data / config.batch_size)
    augment = (
        "pad-4 crop and flip" if config.augment == "pad_crop_flip"
        else "the data set's augmentation" if config.augment
        else "no augmentation"
    )  # fmt: skip
    return (
        f"{config.dataset} has {config.small_data} training images, so "
        f"the small-data recipe: {config.epochs} epochs of batch "
        f"{config.batch_size} ({steps} steps), {augment}, label smoothing "
        f"{config.label_smoothing:g} (flags such as --epochs override it)"
    )
