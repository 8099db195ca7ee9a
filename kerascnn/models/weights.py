"""Pretrained weights for the zoo's builders: ImageNet, files and runs.

    >>> from kerascnn import models
    >>> model = models.build("resnet50", weights="imagenet")  # 1000 classes
    >>> model = models.build("resnet50", num_classes=3, weights="imagenet")
    >>> model = models.build("resnet20", num_classes=3, weights="runs/r20")

`weights` is one of:

* `"imagenet"`: keras.applications' ImageNet weights of `resnet50`,
  `resnet101`, `resnet152`, `vgg16` and `vgg19` (the same files, URLs and
  md5 sums as `keras.applications`, fetched once into the Keras cache,
  `~/.keras/models/`, by `keras.utils.get_file`). The zoo's layers carry
  keras.applications' names, so the weights load by layer name. A model
  with 1000 classes at 224x224x3 (and VGG's 4096-wide fc1/fc2) takes the
  full file; any other takes the `_notop` file and keeps a new head.
* a weights file: a Keras-applications-layout `.h5` (layer names, as
  `Model.save_weights` wrote them in Keras 2 or `Model.save("x.h5")` in
  Keras 3), a Keras 3 `.weights.h5` of the same architecture (it stores
  weights by position, not by name), or a `.keras` model.
* a kerascnn run directory: its `model.keras`.

Layers load by name. The head (the layers after the backbone's pooling:
`predictions`, and VGG's `fc1`/`fc2`) is new when the file lacks it or
its shape differs (other classes, another input size); a backbone layer
that is missing or of another shape is an error naming the layer.

keras.applications' ResNet and VGG weights expect "caffe" inputs: BGR
pixels in [0, 255] minus the ImageNet mean. The channel swap is folded
into the first convolution (its input channels are reversed, which is
exact), so the zoo model takes RGB pixels minus the mean in RGB order:
`IMAGENET_CAFFE_PREPROCESSING`, the normalization `fit --weights
imagenet` records in the run's metadata for `predict`, `export` and the
served signature.
"""

import dataclasses
import json
import os

import keras

from kerascnn.errors import KerasCNNError
from kerascnn.files import METADATA_FILENAME, MODEL_FILENAME


class WeightsError(KerasCNNError):
    """Pretrained weights that cannot be found, read or loaded."""


IMAGENET = "imagenet"
_BASE_URL = "https://storage.googleapis.com/tensorflow/keras-applications/"
# name -> (folder, (full file md5, notop file md5)), as keras.applications
# (keras/src/applications/resnet.py WEIGHTS_HASHES, vgg16.py, vgg19.py).
IMAGENET_WEIGHTS = {
    "resnet50": (
        "resnet",
        (
            "2cb95161c43110f7111970584f804107",
            "4d473c1dd8becc155b73f8504c6f6626",
        ),
    ),
    "resnet101": (
        "resnet",
        (
            "f1aeb4b969a6efcfb50fad2f0c20cfc5",
            "88cf7a10940856eca736dc7b7e228a21",
        ),
    ),
    "resnet152": (
        "resnet",
        (
            "100835be76be38e30d865e96f2aaae62",
            "ee4c566cf9a93f14d82f913c2dc6dd0c",
        ),
    ),
    "vgg16": (
        "vgg16",
        (
            "64373286793e3c8b2b4e3219cbf3544b",
            "6d6bbae143d832006294945121d1f1fc",
        ),
    ),
    "vgg19": (
        "vgg19",
        (
            "cbe5617147190e668d6c5d5026f83318",
            "253f8cb515780f3b799900260a226db6",
        ),
    ),
}
# The first convolution, whose input channels the BGR -> RGB fold reverses.
FIRST_CONV = {"resnet": "conv1_conv", "vgg": "block1_conv1"}
# keras.applications.imagenet_utils "caffe": x[..., ::-1] - BGR mean; the
# same mean in RGB order, on raw [0, 255] pixels.
CAFFE_MEAN_RGB = (123.68, 116.779, 103.939)
IMAGENET_CAFFE_PREPROCESSING = {
    "scale": 1.0,
    "mean": list(CAFFE_MEAN_RGB),
    "std": [1.0, 1.0, 1.0],
}
# Layers that start the head of the zoo's classifiers: from here on, a
# layer may be new.
_HEAD_STARTS = ("avg_pool", "flatten")
KERAS_APPLICATIONS_BN_EPSILON = 1.001e-5
IMAGENET_TOP = {"input_shape": (224, 224, 3), "num_classes": 1000}


@dataclasses.dataclass
class LoadReport:
    """What `load_weights` did.

    Attributes:
        source: the weights as the user named them.
        loaded: names of the layers whose weights were loaded.
        new: names of head layers left freshly initialized.
        preprocessing: the input normalization the weights expect (keys
            `scale`, `mean`, `std` of `DatasetInfo.preprocessing`), or
            `None` when they expect the data set's own.
    """

    source: str
    loaded: list
    new: list
    preprocessing: dict = None

    def describe(self):
        """One line: what was loaded from where, and what is new."""
        new = f"; new: {', '.join(self.new)}" if self.new else ""
        return f"Weights: {self.source} ({len(self.loaded)} layers loaded{new})"


def has_imagenet_weights(name):
    return name in IMAGENET_WEIGHTS


def imagenet_file(name, include_top):
    """`(file name, URL, md5)` of keras.applications' weights of `name`."""
    if name not in IMAGENET_WEIGHTS:
        raise WeightsError(
            f"{name} has no ImageNet weights; models with them: "
            f"{', '.join(IMAGENET_WEIGHTS)}. Received: weights='imagenet'"
        )
    folder, hashes = IMAGENET_WEIGHTS[name]
    suffix = "" if include_top else "_notop"
    file_name = f"{name}_weights_tf_dim_ordering_tf_kernels{suffix}.h5"
    md5 = hashes[0] if include_top else hashes[1]
    return file_name, f"{_BASE_URL}{folder}/{file_name}", md5


def keras_home():
    """The Keras cache folder: `$KERAS_HOME`, else `~/.keras`."""
    return os.environ.get("KERAS_HOME") or os.path.join(
        os.path.expanduser("~"), ".keras"
    )


def fetch_imagenet(name, include_top):
    """Path of the ImageNet weights file, downloaded if not cached.

    Raises:
        WeightsError: offline and not cached (one line naming the file,
            where to place it and its md5).
    """

    file_name, url, md5 = imagenet_file(name, include_top)
    home = keras_home()
    try:
        return keras.utils.get_file(
            file_name, url, cache_subdir="models", file_hash=md5,
            cache_dir=home,
        )  # fmt: skip
    except Exception as e:  # URLError, HTTPError, hash mismatch, OSError
        # Keras says "URL fetch failure on URL: None -- [Errno -2] ...".
        reason = str(e).strip().rsplit(" -- ", 1)[-1].splitlines()
        reason = reason[0][:80] if reason else type(e).__name__
        raise WeightsError(
            f"Cannot fetch the ImageNet weights of {name} ({reason}); "
            f"download {url} and place it at "
            f"{os.path.join(home, 'models', file_name)} (md5 {md5})."
        ) from None


def load_weights(model, weights, name=None):
    """Loads pretrained `weights` into a zoo `model`, by layer name.

    Args:
        model: a model built by `kerascnn.models.build`.
        weights: `"imagenet"`, a `.h5` / `.weights.h5` / `.keras` file or
            a kerascnn run directory.
        name: registry name of the model (for `"imagenet"`). Defaults to
            `model.name`.

    Returns:
        A `LoadReport`.

    Raises:
        WeightsError: unknown value, no ImageNet weights for the model, a
            file that cannot be read, a backbone layer missing or of
            another shape.
    """
    name = name or model.name
    source = check_source(weights)
    if source == IMAGENET:
        path = fetch_imagenet(name, _takes_imagenet_top(model))
        named = read_h5_weights(path)
        report = assign_named_weights(model, named, f"imagenet ({name})")
        _reverse_first_conv_channels(model, name)
        _set_batch_norm_epsilon(model, KERAS_APPLICATIONS_BN_EPSILON)
        report.preprocessing = dict(IMAGENET_CAFFE_PREPROCESSING)
        return report
    if os.path.isdir(source):
        return _load_run(model, source)
    if source.endswith(".weights.h5"):
        named = read_keras3_weights(source, model)
    elif source.endswith(".keras"):
        named = read_keras_model_weights(source)
    else:
        named = read_h5_weights(source)
    return assign_named_weights(model, named, source)


def _takes_imagenet_top(model):
    """Whether `model` has keras.applications' 1000-class classifier."""
    shape = tuple(model.input_shape[1:])
    classes = model.output_shape[-1]
    fc1 = _layer_or_none(model, "fc1")
    return (
        shape == IMAGENET_TOP["input_shape"]
        and classes == IMAGENET_TOP["num_classes"]
        and (fc1 is None or fc1.units == 4096)
    )


def _layer_or_none(model, name):
    try:
        return model.get_layer(name)
    except ValueError:
        return None


def _reverse_first_conv_channels(model, name):
    """Folds caffe's RGB -> BGR swap into the first convolution."""
    family = "vgg" if name.startswith("vgg") else "resnet"
    layer = model.get_layer(FIRST_CONV[family])
    kernel, *rest = layer.get_weights()
    if kernel.shape[2] == 3:
        layer.set_weights([kernel[:, :, ::-1, :], *rest])


def _set_batch_norm_epsilon(model, epsilon):
    """keras.applications' ResNets normalize with epsilon 1.001e-5 (the
    zoo's 1e-5 is the CIFAR papers'); the loaded statistics expect it."""

    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.epsilon = epsilon


def expected_normalization(weights):
    """The `{"scale", "mean", "std"}` the weights expect, or `None`.

    `"imagenet"`: `IMAGENET_CAFFE_PREPROCESSING`; a run directory: the
    normalization its metadata records; a file: `None` (a file does not
    say; the data set's own is used).
    """
    if weights is None:
        return None
    source = os.fspath(weights)
    if source == IMAGENET:
        return dict(IMAGENET_CAFFE_PREPROCESSING)
    meta_path = os.path.join(source, METADATA_FILENAME)
    if not (os.path.isdir(source) and os.path.isfile(meta_path)):
        return None
    try:  # the run's metadata.json, as written
        with open(meta_path) as f:
            spec = json.load(f).get("preprocessing") or {}
    except (OSError, ValueError, AttributeError) as e:
        raise WeightsError(f"Cannot read {meta_path}: {e}") from None
    if "scale" not in spec:
        return None
    return {k: spec.get(k) for k in ("scale", "mean", "std")}


def check_source(weights):
    """Refuses a `weights` value no loader takes, before any work."""
    source = os.fspath(weights)
    if source == IMAGENET or os.path.isdir(source):
        return source
    if not source.endswith((".h5", ".hdf5", ".keras")):
        raise WeightsError(
            "`weights` must be 'imagenet', a .h5, .weights.h5 or .keras "
            f"file, or a kerascnn run directory. Received: weights={source!r}"
        )
    if not os.path.isfile(source):
        raise WeightsError(
            f"No such weights file: {source}. Received: weights={source!r}"
        )
    return source


def _load_run(model, run_dir):
    """A kerascnn run: its `model.keras`, and its input normalization."""
    path = os.path.join(run_dir, MODEL_FILENAME)
    if not os.path.isfile(path):
        raise WeightsError(
            f"{run_dir} has no {MODEL_FILENAME} (an unfinished run?); pass "
            "a finished kerascnn run directory or one of its checkpoints, "
            f"e.g. {os.path.join(run_dir, 'checkpoints', 'best.keras')}."
        )
    report = assign_named_weights(
        model, read_keras_model_weights(path), run_dir
    )
    report.preprocessing = expected_normalization(run_dir)
    return report


# =========================== Reading files ============================


def read_h5_weights(path):
    """`{layer name: [arrays]}` of a Keras-applications-layout `.h5`."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            group = f["model_weights"] if "model_weights" in f else f
            if "layer_names" not in group.attrs:
                raise WeightsError(
                    f"{path} has no layer names (a Keras 3 .weights.h5 "
                    "must be named *.weights.h5)."
                )
            named = {}
            for layer in _strings(group.attrs["layer_names"]):
                g = group[layer]
                names = _strings(g.attrs.get("weight_names", []))
                if names:
                    named[layer] = [g[n][()] for n in names]
            return named
    except WeightsError:
        raise
    except Exception as e:  # OSError, KeyError: not an HDF5 weights file
        raise WeightsError(f"Cannot read weights file {path}: {e}") from None


def _strings(values):
    return [
        v.decode("utf8") if isinstance(v, bytes) else str(v) for v in values
    ]


def read_keras_model_weights(path):
    """`{layer name: [arrays]}` of a `.keras` model (nested models too)."""

    try:
        source = keras.saving.load_model(path, compile=False)
    except Exception as e:  # zip, config and deserialization errors
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise WeightsError(f"Cannot load Keras model {path}: {first}") from None
    return _named_layer_weights(source)


def _named_layer_weights(model):

    named = {}
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            named.update(_named_layer_weights(layer))
        elif layer.weights:
            named[layer.name] = layer.get_weights()
    return named


def read_keras3_weights(path, model):
    """`{layer name: [arrays]}` of a Keras 3 `.weights.h5` written by a
    model of `model`'s architecture.

    Keras 3 stores weights under per-class positional names
    (`layers/conv2d_3/vars/0`), not layer names, so they are matched to
    `model`'s layers by that same walk.
    """
    import h5py
    from keras.src.utils import naming

    used, by_path = {}, {}
    for layer in model.layers:
        key = naming.to_snake_case(layer.__class__.__name__)
        if key in used:
            used[key] += 1
            key = f"{key}_{used[key]}"
        else:
            used[key] = 0
        by_path[key] = layer.name
    try:
        with h5py.File(path, "r") as f:
            layers = f["layers"]
            named = {}
            for key in layers:
                vars_ = layers[key].get("vars")
                if vars_ is None or not len(vars_):
                    continue
                arrays = [vars_[str(i)][()] for i in range(len(vars_))]
                named[by_path.get(key, key)] = arrays
            return named
    except Exception as e:  # OSError, KeyError: not a Keras 3 weights file
        raise WeightsError(f"Cannot read weights file {path}: {e}") from None


# ========================= Assigning by name ==========================


def head_layer_names(model):
    """Layers from the backbone's pooling on (`avg_pool`/`flatten`), which
    may be new when fine-tuning; `predictions` for any other model."""
    names = [layer.name for layer in model.layers]
    for start in _HEAD_STARTS:
        if start in names:
            return names[names.index(start) :]
    return names[-1:]


def assign_named_weights(model, named, source):
    """Sets `model`'s layers from `{layer name: [arrays]}`.

    A head layer the source lacks, or has with other shapes, stays new; a
    backbone layer that is missing or of another shape, or source layers
    the model lacks, are errors naming them.
    """
    head = set(head_layer_names(model))
    loaded, new, missing = [], [], []
    for layer in model.layers:
        if not layer.weights:
            continue
        arrays = named.get(layer.name)
        shapes = [tuple(w.shape) for w in layer.weights]
        if arrays is not None and [tuple(a.shape) for a in arrays] == shapes:
            layer.set_weights(arrays)
            loaded.append(layer.name)
        elif layer.name in head:
            new.append(layer.name)
        elif arrays is None:
            missing.append(layer.name)
        else:
            got = [tuple(a.shape) for a in arrays]
            raise WeightsError(
                f"Weights {source} do not fit {model.name}: layer "
                f"{layer.name} has weights of shapes {got}, the model's "
                f"are {shapes}."
            )
    extra = sorted(
        set(named) - {layer.name for layer in model.layers} - head
        - {"fc1", "fc2", "predictions"}
    )  # fmt: skip
    if missing or extra or not loaded:
        what = (
            f"the model's layers {_some(missing)} are not in it"
            if missing
            else f"it has layers the model lacks ({_some(extra)})"
            if extra
            else "no layer name matches"
        )
        raise WeightsError(
            f"Weights {source} do not fit {model.name}: {what}; they were "
            "saved from another architecture."
        )
    return LoadReport(source=source, loaded=loaded, new=new)


def _some(names, n=3):
    shown = ", ".join(names[:n])
    return shown + (f" and {len(names) - n} more" if len(names) > n else "")
