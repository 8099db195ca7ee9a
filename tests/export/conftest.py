"""Real-data fixtures for the export tests: MNIST IDX, ATIS, tiny models.

Data come from the `data_dir` fixture (`KERASCNN_DATA_DIR`, see
tests/conftest.py). Models are trained once per session for one short
epoch, enough for accuracy checks: the tagger here, LeNet (`lenet_run`)
in tests/conftest.py.
"""

import os

import numpy as np
import pytest

from kerascnn.data import read_idx
from kerascnn.data.text import read_iob
from tests.helpers import save_run, tagger_metadata

MNIST_CLASSES = [str(i) for i in range(10)]


@pytest.fixture(scope="session")
def mnist(data_dir):
    """`{"train": (x, y), "test": (x, y)}`: uint8 pixels (N, 28, 28, 1)."""
    root = os.path.join(data_dir, "mnist")
    out = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        x = read_idx(os.path.join(root, f"{prefix}-images-idx3-ubyte.gz"))
        y = read_idx(os.path.join(root, f"{prefix}-labels-idx1-ubyte.gz"))
        out[split] = (x[..., None], y.astype(np.int64))
    return out


@pytest.fixture(scope="session")
def mnist_test(mnist):
    """200 normalized real test digits `(x, y)` for verification."""
    x, y = mnist["test"]
    return (x[:200] / 255.0).astype(np.float32), y[:200]


@pytest.fixture(scope="session")
def mnist_calibration(mnist):
    x, _ = mnist["train"]
    return (x[5000:5200] / 255.0).astype(np.float32)


def tflite_ops(path):
    """`(builtin op names, custom op codes)` of a `.tflite` file.

    Read from the flatbuffer's operator codes with TensorFlow's schema
    bindings; Flex (TensorFlow) ops are custom ops named `Flex*`.
    """
    from tensorflow.lite.python import schema_py_generated as schema

    with open(path, "rb") as f:
        model = schema.Model.GetRootAsModel(bytearray(f.read()), 0)
    names = {
        v: k
        for k, v in vars(schema.BuiltinOperator).items()
        if not k.startswith("_")
    }
    builtin, custom = set(), []
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        op = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if code.CustomCode() or op == schema.BuiltinOperator.CUSTOM:
            custom.append(code.CustomCode())
        else:
            builtin.add(names[op])
    return builtin, custom


def tflite_op_counts(path):
    """`{builtin op name: number of operators}` in a `.tflite` file's
    subgraphs (how often each op runs, not only which ops exist)."""
    from collections import Counter

    from tensorflow.lite.python import schema_py_generated as schema

    with open(path, "rb") as f:
        model = schema.Model.GetRootAsModel(bytearray(f.read()), 0)
    names = {
        v: k
        for k, v in vars(schema.BuiltinOperator).items()
        if not k.startswith("_")
    }
    codes = [model.OperatorCodes(i) for i in range(model.OperatorCodesLength())]
    counts = Counter()
    for g in range(model.SubgraphsLength()):
        graph = model.Subgraphs(g)
        for i in range(graph.OperatorsLength()):
            code = codes[graph.Operators(i).OpcodeIndex()]
            op = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
            counts[names[op]] += 1
    return counts


def read_atis(path):
    """`[(words, tags, intent)]` from an ATIS `.iob` file, BOS/EOS dropped."""
    return [(u.words, u.tags, u.intent) for u in read_iob(path)]


def encode_atis(rows, vocab, tags, intents):
    """0-padded token ids, tag ids and intent ids (unknown word = 1)."""
    word_ids = {w: i for i, w in enumerate(vocab)}
    length = max(len(r[0]) for r in rows)
    x = np.zeros((len(rows), length), np.int32)
    y = np.zeros((len(rows), length), np.int32)
    for i, (words, labels, _) in enumerate(rows):
        x[i, : len(words)] = [word_ids.get(w, 1) for w in words]
        y[i, : len(words)] = [tags.index(t) if t in tags else 0 for t in labels]
    z = np.array([intents.index(r[2]) if r[2] in intents else 0 for r in rows])
    return x, y, z


@pytest.fixture(scope="session")
def atis_run(data_dir, tmp_path_factory):
    """A joint slot tagger trained one epoch on 1,000 ATIS sentences."""
    import keras

    from kerascnn import models

    root = os.path.join(data_dir, "atis")
    train = read_atis(os.path.join(root, "atis.train.w-intent.iob"))[:1000]
    test = read_atis(os.path.join(root, "atis.test.w-intent.iob"))[:100]
    vocab = ["<pad>", "<unk>"] + sorted({w for r in train for w in r[0]})
    tags = sorted({t for r in train for t in r[1]})
    intents = sorted({r[2] for r in train})
    x, y, z = encode_atis(train, vocab, tags, intents)
    keras.utils.set_random_seed(0)
    model = models.build(
        "slot_tagger",
        input_shape=(None,),
        num_classes=len(tags),
        vocab_size=len(vocab),
        num_intents=len(intents),
        embedding_dim=32,
        units=32,
    )
    model.compile(
        "adam",
        {
            "tags": "sparse_categorical_crossentropy",
            "intent": "sparse_categorical_crossentropy",
        },
    )
    model.fit(x, {"tags": y, "intent": z}, epochs=1, batch_size=32, verbose=0)
    meta = tagger_metadata(tags, vocab, intents)
    run = save_run(model, meta, tmp_path_factory.mktemp("runs") / "tagger")
    tx, ty, _ = encode_atis(test, vocab, tags, intents)
    return {
        "run": run,
        "test": (tx, ty),
        "sentences": test,
        "calibration": x[:100],
        "tags": tags,
        "intents": intents,
    }
