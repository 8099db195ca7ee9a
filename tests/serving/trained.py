"""Small trained models on real data for the gRPC and browser tests.

LeNet learns 2 epochs on 12,000 real MNIST digits (about 97% test
accuracy), the joint slot tagger 4 epochs on the ATIS training set; both
are exported once per session with `kerascnn.export.export`, so the
SavedModels carry their warm-up records. Built lazily and cached per
session: the gRPC and the browser tests share them.
"""

import os

import numpy as np

from kerascnn.data import read_idx
from kerascnn.data.text import read_iob
from tests.helpers import save_run, tagger_metadata

MNIST_CLASSES = [str(i) for i in range(10)]
MNIST_PREPROCESSING = {"scale": 1 / 255, "channels": 1, "image_size": [28, 28]}
_CACHE = {}


def mnist_split(data_dir, split):
    """`(uint8 pixels (N, 28, 28, 1), int64 labels)` of a real split."""
    prefix = "train" if split == "train" else "t10k"
    root = os.path.join(data_dir, "mnist")
    x = read_idx(os.path.join(root, f"{prefix}-images-idx3-ubyte.gz"))
    y = read_idx(os.path.join(root, f"{prefix}-labels-idx1-ubyte.gz"))
    return x[..., None], y.astype(np.int64)


def atis_split(data_dir, split):
    """`[Utterance]` of the real ATIS train or test file."""
    name = "train" if split == "train" else "test"
    return read_iob(os.path.join(data_dir, "atis", f"atis.{name}.w-intent.iob"))


def _train_lenet(data_dir, run_dir):
    import keras

    from kerascnn import models
    from kerascnn.metadata import ModelMetadata

    keras.utils.set_random_seed(0)
    x, y = mnist_split(data_dir, "train")
    model = models.build("lenet", input_shape=(28, 28, 1), num_classes=10)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x[:12000] / 255.0, y[:12000], epochs=2, batch_size=32, verbose=0)
    meta = ModelMetadata(
        model="lenet",
        dataset="mnist",
        input_shape=(28, 28, 1),
        class_names=MNIST_CLASSES,
        preprocessing=MNIST_PREPROCESSING,
    )
    return save_run(model, meta, run_dir)


def _train_tagger(data_dir, run_dir):
    """Trained through `kerascnn.data.load`, so the vocabulary is the one
    export reads its verification (and warm-up) sentences with."""
    import keras

    from kerascnn import models
    from kerascnn.data import load

    keras.utils.set_random_seed(0)
    ds, info = load("atis", "train", data_dir=data_dir, batch_size=32)
    model = models.build(
        "slot_tagger",
        input_shape=(None,),
        num_classes=len(info.class_names),
        vocab_size=len(info.vocab),
        num_intents=len(info.intent_names),
        embedding_dim=64,
        units=64,
    )
    model.compile(
        "adam",
        {
            "tags": "sparse_categorical_crossentropy",
            "intent": "sparse_categorical_crossentropy",
        },
    )
    model.fit(ds, epochs=4, verbose=0)
    meta = tagger_metadata(info.class_names, info.vocab, info.intent_names)
    return save_run(model, meta, run_dir)


def exported_models(data_dir, tmp_path_factory):
    """`base_dir` with `lenet/1` and `slot_tagger/1`, exported once."""
    if "base" not in _CACHE:
        from tests.helpers import export

        runs = tmp_path_factory.mktemp("trained_runs")
        base = tmp_path_factory.mktemp("trained_models")
        lenet = _train_lenet(data_dir, runs / "lenet")
        export(
            lenet, base_dir=str(base), verify_examples=200, data_dir=data_dir
        )
        tagger = _train_tagger(data_dir, runs / "tagger")
        export(
            tagger, base_dir=str(base), verify_examples=200, data_dir=data_dir
        )
        _CACHE["base"] = base
    return _CACHE["base"]
