"""`load()`: source -> decode -> cache -> shard -> shuffle -> batch ->
augment + normalize (vectorized, per batch) -> prefetch.

Two ways to hold images, chosen per split (`streaming.choose_storage`,
said in `DatasetInfo.storage`):

* In memory: one uint8 array after a single decode pass (IDX, and
  `.npz`, TFDS, image folders or shards whose decoded size fits the
  memory budget), which is the cache: the pipeline then shuffles *indices*,
  gathers whole batches and normalizes them in one vectorized op, which
  is far faster than per-example Python or per-example maps.
* Streamed (`kerascnn.data.streaming`): image folders and TFRecord shards
  too big for the budget, ImageNet-style 224 px inputs (random-resized
  crops need the full files) and tf.data service runs are read and
  decoded file by file inside tf.data, with bounded memory; `.npz` and
  TFDS splits too big for the budget (a `sources.LazySplit`) are read
  by index from a memory-mapped `.npz`, like the arrays, else in order.

Augmentation draws a fresh stateless seed per batch from a seeded
`Dataset.random`, so runs are reproducible and epochs differ; a streamed
folder gives the same batches as the in-memory path.

Performance: tf.data autotuning is switched off and the pipeline uses
fixed settings (`PARALLEL_CALLS` map workers, `PREFETCH_BATCHES` batches
ahead). The work per batch is a gather and a few vectorized ops, so there
is little to tune, and on a 2-core machine autotuning's own machinery made
whole training epochs run at half speed at random (the measurement is in
benchmarks/README.md).

Distribution: `batch_size` is the global batch size. With an
`input_context` the index dataset (or the list of shards) is sharded by
`input_pipeline_id` and batched with `get_per_replica_batch_size`;
without one the dataset carries `AutoShardPolicy.DATA` (`FILE` for
shards) for `strategy.experimental_distribute_dataset`.
"""

import dataclasses
import json
import os

import numpy as np

from kerascnn.data import augment as aug
from kerascnn.data import decode, sources, streaming, text
from kerascnn.errors import DataError
from kerascnn.validation import check_image_size

# Fixed tf.data settings (autotuning is off; see the module docstring).
PARALLEL_CALLS = max(1, min(len(os.sched_getaffinity(0)), 8))
PREFETCH_BATCHES = 2

TASK_IMAGE = "image_classification"
TASK_TAGGING = "sequence_tagging"


@dataclasses.dataclass
class DatasetInfo:
    """What a loaded data set is and how its examples were prepared.

    Attributes:
        name: the name passed to `load`.
        task: `"image_classification"` or `"sequence_tagging"`.
        source: where it was found, e.g. `"/data/mnist (IDX files)"`.
        split: the split loaded (`"train"`, `"validation"`, `"test"`).
        num_examples: examples in this split after `limit` / `skip_bad`.
        split_sizes: dict split -> number of examples (before `limit`).
        input_shape: model input shape, e.g. `(28, 28, 1)`; `(None,)` for
            text.
        num_classes: number of classes (of tags, padding included, for
            ATIS).
        class_names: class names; tag names (id order) for ATIS.
        preprocessing: JSON-able normalization spec, see
            `augment.make_preprocessing`; `{}` for text.
        augmentation: training recipe (`"none"`, `"flip"`,
            `"pad_crop_flip"`) or `None` when augmentation is off.
        vocab: words (index = id) for text, else `None`.
        intent_names: intents (index = id) for text, else `None`.
        max_length: longest utterance in this split (text), else `None`.
        storage: how the split is read and why, one line (images), e.g.
            `"2,500 images in memory (~0.35 GiB decoded, fits ...)"`.
        kind: what the examples are, `"images"` or `"tagged_text"` (what
            a model's task consumes, `Task.consumes`); `None`: said by
            `task`.
    """

    name: str
    task: str
    source: str
    split: str
    num_examples: int
    split_sizes: dict
    input_shape: tuple
    num_classes: int
    class_names: list
    preprocessing: dict = dataclasses.field(default_factory=dict)
    augmentation: str = None
    vocab: list = None
    intent_names: list = None
    max_length: int = None
    storage: str = None
    kind: str = None

    def to_dict(self):
        """A JSON-able dict (tuples become lists)."""
        d = dataclasses.asdict(self)
        d["input_shape"] = list(self.input_shape)
        return d

    def to_json(self, **kwargs):
        return json.dumps(self.to_dict(), **kwargs)

    @classmethod
    def from_dict(cls, d):
        d = dict(d)
        d["input_shape"] = tuple(d["input_shape"])
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    @classmethod
    def from_json(cls, s):
        return cls.from_dict(json.loads(s))

    @property
    def vocabularies(self):
        """`text.AtisVocabularies` for text data sets (else `None`)."""
        if not self.vocab:
            return None
        return text.AtisVocabularies.from_lists(
            self.vocab, self.class_names, self.intent_names
        )


def _check_args(batch_size, limit, image_size, channels):
    if batch_size is not None and (
        not isinstance(batch_size, (int, np.integer)) or batch_size < 1
    ):
        raise DataError(
            "`batch_size` must be a positive int or None. "
            f"Received: batch_size={batch_size!r}"
        )
    if limit is not None and (
        not isinstance(limit, (int, np.integer)) or limit < 1
    ):
        raise DataError(
            f"`limit` must be a positive int or None. Received: limit={limit!r}"
        )
    check_image_size(image_size, DataError)
    if channels not in (None, 1, 3):
        raise DataError(
            f"`channels` must be 1, 3 or None. Received: channels={channels!r}"
        )


def load(
    name,
    split="train",
    *,
    data_dir=None,
    batch_size=None,
    shuffle=None,
    augment=None,
    limit=None,
    seed=0,
    image_size=None,
    channels=None,
    cache="auto",
    repeat=False,
    input_context=None,
    skip_bad=False,
    validation_size=None,
    cache_dir=None,
    style="auto",
    data_service=None,
    normalization=None,
):
    """Loads a data set as a ready-to-train `tf.data.Dataset`.

    Args:
        name: `"mnist"`, `"fashion_mnist"`, `"kmnist"`, `"emnist/letters"`,
            `"cifar10"`, `"atis"`, `"tfds:<name>[:<config>]"`, a path to an
            image folder or a path to an `.npz` file.
        split: `"train"`, `"validation"` (alias `"dev"`) or `"test"`.
            Defaults to `"train"`.
        data_dir: local data folder; defaults to `$KERASCNN_DATA_DIR`,
            then the TFDS cache, then a download.
        batch_size: the GLOBAL batch size; `None` yields single examples.
        shuffle: seeded shuffle (reshuffled each epoch); defaults to `True`
            for the train split.
        augment: `True` (the data set's recipe), `False`, or a recipe name;
            defaults to `True` for the train split.
        limit: keep only the first `limit` examples of the split.
        seed: seed for shuffling and augmentation. Defaults to `0`.
        image_size: `(H, W)` to resize to; default: native size.
        channels: `1` or `3` to convert to; default: native channels.
        cache: `"auto"` (default; `True` too), `"memory"`, `"disk"` or
            `"none"` (`False` too): whether image folders and shards are
            decoded into memory or streamed, and what a stream caches (see
            `kerascnn.data.streaming`). `.npz` and TFDS splits are loaded
            into memory under `"auto"` when they fit the budget and under
            `"memory"`, else streamed; IDX is always in memory; text
            examples are cached unless `"none"`.
        repeat: repeat indefinitely.
        input_context: a `tf.distribute.InputContext`: shard by
            `input_pipeline_id` and batch per replica.
        skip_bad: skip corrupt examples (counted in a warning; in a stream,
            in `streaming.SKIPPED`) instead of raising `DataError` (in a
            stream, a TF error that `decode.bad_file_error` names).
        validation_size: count (or fraction) held out of train as the
            validation split where the source has none; ATIS dev defaults
            to 500, a flat `<root>/<class>/*` folder to 0.2.
        cache_dir: folder of the `tf.data` cache file for `cache="disk"`.
        style: `"auto"` (default), `"plain"` or `"imagenet"`: ImageNet
            preprocessing (random-resized crop + flip for training, centre
            crop for evaluation, ImageNet mean/std); `"auto"` uses it for
            folders and shards at 128 px or more (`streaming`).
        data_service: `grpc://HOST:PORT` of a tf.data service dispatcher
            whose workers read, decode and augment (streams only).
        normalization: `{"scale", "mean", "std"}` to use instead of the
            data set's own (pretrained weights expect theirs, see
            `kerascnn.models.weights`); images only. Defaults to `None`.

    Returns:
        `(dataset, info)`: a `tf.data.Dataset` of `(features, labels)` and
        a `DatasetInfo`. Images: float32 `(H, W, C)` / `(B, H, W, C)`,
        normalized; labels int32. ATIS: int32 word ids `(T,)` / `(B, T)`
        (0 = padding, 1 = OOV) and `{"tags": int32, "intent": int32}`.

    Raises:
        DataError: unknown name, missing or corrupt data, bad arguments.
    """
    _check_args(batch_size, limit, image_size, channels)
    split = sources.canonical_split(split)
    is_train = split == "train"
    shuffle = is_train if shuffle is None else bool(shuffle)
    augment = is_train if augment is None else augment
    cache = streaming.check_cache(cache)
    streaming.check_service_address(data_service)
    raw = sources.read(name, split, data_dir, validation_size)
    opts = dict(
        batch_size=batch_size, shuffle=shuffle, limit=limit, seed=seed,
        cache=cache, repeat=repeat, input_context=input_context,
        skip_bad=skip_bad,
    )  # fmt: skip
    if raw.kind == "text":
        return _load_text(raw, validation_size, **opts)
    if raw.kind in ("files", "records"):
        return _load_image_files(
            raw, augment=augment, image_size=image_size, channels=channels,
            cache_dir=cache_dir, style=style, data_service=data_service,
            normalization=normalization, **opts,
        )  # fmt: skip
    return _load_images(
        raw, augment=augment, image_size=image_size, channels=channels,
        normalization=normalization, **opts,
    )  # fmt: skip


# ======================== Images ========================


def _raw_arrays(raw, limit):
    """The uint8 images and labels of in-memory `raw`, cut to `limit`."""
    images, labels = raw.images, raw.labels
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    return images, labels


def _resolve_recipe(augment, name, native_channels):
    if augment is False or augment is None:
        return None
    if augment is True:
        return aug.default_recipe(name, native_channels)
    return aug.check_recipe(augment)


def _image_info(raw, num_examples, native, image_size, channels, augment,
                style="plain", normalization=None):  # fmt: skip
    """`DatasetInfo` of an image split: model size, normalization, recipe."""
    size = tuple(image_size) if image_size else tuple(native[:2])
    mean, std = aug.default_standardization(raw.name, style)
    imagenet = style == "imagenet"
    spec = aug.make_preprocessing(
        3 if imagenet else channels or min(native[2], 3), size, mean, std,
        center_crop=aug.IMAGENET_CROP_FRACTION if imagenet else None,
    )  # fmt: skip
    if normalization:
        spec.update(aug.check_normalization(normalization, spec["channels"]))
    recipe = _resolve_recipe(augment, raw.name, native[2])
    if imagenet and recipe is not None:
        recipe = aug.RANDOM_RESIZED_CROP
    return DatasetInfo(
        name=raw.name, task=TASK_IMAGE, source=raw.source, split=raw.split,
        num_examples=num_examples, split_sizes=raw.split_sizes,
        input_shape=(size[0], size[1], spec["channels"]),
        num_classes=len(raw.class_names), class_names=list(raw.class_names),
        preprocessing=spec, augmentation=recipe,
    )  # fmt: skip


def _load_images(raw, *, augment, image_size, channels, normalization=None,
                 **opts):  # fmt: skip
    if raw.lazy is not None:
        return _load_lazy(raw, augment=augment, image_size=image_size,
                          channels=channels, normalization=normalization,
                          **opts)  # fmt: skip
    images, labels = _raw_arrays(raw, opts["limit"])
    if len(images) == 0:
        raise DataError(f"Data set {raw.name!r} split '{raw.split}' is empty.")
    info = _image_info(
        raw,
        len(images),
        images.shape[1:],
        image_size,
        channels,
        augment,
        normalization=normalization,
    )
    ds = image_dataset(images, labels, info.preprocessing,
                       info.augmentation, **opts)  # fmt: skip
    return ds, info


def _load_lazy(raw, *, augment, image_size, channels, cache,
               normalization=None, **opts):  # fmt: skip
    """A `.npz` or TFDS split: into memory when it fits the memory budget
    (or `cache="memory"`), else streamed: by index from a memory-mapped
    `.npz` (the batches of the in-memory path), in order from TFDS."""
    split = raw.lazy if opts["limit"] is None else raw.lazy[: opts["limit"]]
    n = len(split)
    if n == 0:
        raise DataError(f"Data set {raw.name!r} split '{raw.split}' is empty.")
    info = _image_info(raw, n, split.image_shape, image_size, channels, augment,
                       normalization=normalization)  # fmt: skip
    where, reason = streaming.choose_storage(
        cache, split.decoded_bytes, "plain"
    )
    if where == "memory":
        info.storage = f"{n:,} images read into memory ({reason})"
        images, labels = split.load()
        ds = image_dataset(images, labels, info.preprocessing,
                           info.augmentation, **opts)  # fmt: skip
        return ds, info
    if split.random_access:
        how = "memory-mapped, each batch read by index"
        ds = image_dataset(split, None, info.preprocessing,
                           info.augmentation, **opts)  # fmt: skip
    else:
        how = "read in order"
        ds = streaming.array_stream(
            split, info.preprocessing, info.augmentation, **opts
        )
    info.storage = (
        f"{n:,} images streamed from {split.description}, {how} ({reason})"
    )
    return ds, info


# ================= Image files and shards (memory or stream) =================


def _first_shape(raw, skip_bad):
    """Native `(H, W, C)` of a folder's first decodable image, or of the
    shard set (its manifest, else its first record)."""
    if raw.kind == "records":
        if raw.image_shape:
            return tuple(raw.image_shape)
        return _first_record_shape(raw)
    for path in raw.paths:
        shape = decode._native_shape(path)
        if shape is not None:
            return shape
        if not skip_bad:
            decode._raise_corrupt(path)
    raise DataError("None of the image files could be decoded.")


def _first_record_shape(raw):
    import tensorflow as tf

    files = raw.record_files
    for serialized in tf.data.TFRecordDataset(files).take(1):
        data, _, _ = streaming.parse_record(
            serialized, raw.record_encoding, raw.record_channels
        )
        if raw.record_encoding != streaming.RAW:
            data = decode.decode_image_bytes(data)
        return tuple(int(d) for d in data.shape)
    raise DataError(f"The shards {files[:1]} hold no records.")


def _stream_spec(raw, limit, shape, style, train_crop):
    if raw.kind == "records":
        n = raw.split_sizes[raw.split]
        n = min(n, limit) if limit else n
        return streaming.StreamSpec(
            None, None, raw.record_files, n, shape, style, train_crop, limit,
            raw.record_encoding, raw.record_channels,
        )  # fmt: skip
    paths, labels = raw.paths, raw.labels
    if limit is not None:
        paths, labels = paths[:limit], labels[:limit]
    return streaming.StreamSpec(list(paths), labels, None, len(paths), shape,
                                style, train_crop)  # fmt: skip


def _load_image_files(raw, *, augment, image_size, channels, cache,
                      cache_dir, style, data_service, normalization=None,
                      **opts):  # fmt: skip
    """An image folder or shard set, decoded into memory or streamed."""
    count = len(raw.paths) if raw.kind == "files" else raw.split_sizes.get(
        raw.split, 0
    )  # fmt: skip
    if count == 0:
        raise DataError(f"Data set {raw.name!r} split '{raw.split}' is empty.")
    native = _first_shape(raw, opts["skip_bad"])
    size = tuple(image_size) if image_size else tuple(native[:2])
    style = streaming.resolve_style(style, raw.kind, size)
    info = _image_info(raw, count, native, size, channels, augment, style,
                       normalization)  # fmt: skip
    # Files decode straight to the model's channels (`images` policy);
    # shards keep theirs (converted per batch, as arrays are).
    shape = info.input_shape if style == "imagenet" or (
        raw.kind == "files"
    ) else (size[0], size[1], native[2])  # fmt: skip
    spec = _stream_spec(
        raw, opts["limit"], shape, style, info.augmentation is not None
    )
    info.num_examples = spec.num_examples
    where, reason = streaming.choose_storage(
        cache, spec.num_examples * int(np.prod(shape)), style, data_service
    )
    cache_file = None
    if where == "stream" and cache == "disk":
        cache_file = streaming.cache_file(
            cache_dir, raw.source, raw.split, shape, style, opts["limit"],
            opts["input_context"],
        )  # fmt: skip
    info.storage = streaming.storage_line(
        where, reason, spec.num_examples, cache, cache_file
    )
    if where == "memory":
        images, labels = _decode_to_memory(raw, spec, opts["skip_bad"])
        skipped = spec.num_examples - len(images)
        if skipped:
            _check_every_class_read(raw, spec.labels, labels)
            info.storage = (
                streaming.storage_line(
                    where, reason, len(images), cache, cache_file
                )
                + f"; {skipped} bad file(s) skipped"
            )
        info.num_examples = len(images)
        ds = image_dataset(images, labels, info.preprocessing,
                           info.augmentation, **opts)  # fmt: skip
        return ds, info
    del opts["limit"]
    ds = streaming.image_stream(
        spec, info.preprocessing, info.augmentation, cache=cache,
        cache_file=cache_file, data_service=data_service, **opts,
    )  # fmt: skip
    return ds, info


def _check_every_class_read(raw, listed, decoded):
    """`DataError` for a class whose listed files all failed to decode."""
    lost = sorted(set(np.unique(listed)) - set(np.unique(decoded)))
    if lost:
        names = ", ".join(raw.class_names[i] for i in lost)
        raise DataError(
            f"No image of class {names} in {raw.source} split "
            f"'{raw.split}' could be decoded; every class needs at least "
            "one readable image."
        )


def _decode_to_memory(raw, spec, skip_bad):
    what = f"the {raw.split} split"
    if raw.kind == "files":
        return decode.decode_files(
            spec.paths, spec.labels, skip_bad, spec.shape[:2], what,
            channels=spec.shape[2],
        )  # fmt: skip
    images, labels = streaming.arrays_from_stream(spec, what)
    return images[: spec.num_examples], labels[: spec.num_examples]


def _per_replica(batch_size, input_context):
    if batch_size is None or input_context is None:
        return batch_size
    return input_context.get_per_replica_batch_size(batch_size)


def _with_options(ds, input_context, shard_policy=None):
    import tensorflow as tf

    options = tf.data.Options()
    policy = tf.data.experimental.AutoShardPolicy
    if shard_policy is None:
        shard_policy = policy.OFF if input_context is not None else policy.DATA
    options.experimental_distribute.auto_shard_policy = shard_policy
    options.deterministic = True
    options.autotune.enabled = False
    return ds.with_options(options)


def _index_dataset(n, shuffle, seed, repeat, input_context):
    import tensorflow as tf

    ds = tf.data.Dataset.range(n)
    if input_context is not None and input_context.num_input_pipelines > 1:
        ds = ds.shard(
            input_context.num_input_pipelines, input_context.input_pipeline_id
        )
    if shuffle:
        ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    return ds


def _row_reader(images, labels, batched):
    """`indices -> (uint8 images, int32 labels)`: a gather from in-memory
    arrays, or rows read from a random-access `LazySplit` (a
    memory-mapped `.npz`) as each batch is made."""
    import tensorflow as tf

    if not isinstance(images, sources.LazySplit):
        images = tf.constant(images)
        labels = tf.constant(np.asarray(labels, np.int32))
        return lambda idx: (tf.gather(images, idx), tf.gather(labels, idx))
    lead = [None] if batched else []
    shape = lead + list(images.image_shape)

    def read(idx):
        x, y = tf.numpy_function(
            images.rows, [idx], (tf.uint8, tf.int32), stateful=False
        )
        return tf.ensure_shape(x, shape), tf.ensure_shape(y, lead)

    return read


def image_dataset(images, labels, preprocessing, recipe=None, *,
                  batch_size=None, shuffle=False, seed=0, repeat=False,
                  input_context=None, **unused):  # fmt: skip
    """In-memory uint8 images -> normalized (and augmented) dataset.

    Args:
        images: uint8 `(N, H, W, C)`, or a random-access `LazySplit`
            (its rows are read per batch; `labels` is then `None`).
        labels: int `(N,)`.
        preprocessing: the `DatasetInfo.preprocessing` dict.
        recipe: augmentation recipe or `None`.
        batch_size: global batch size or `None` for single examples.
        shuffle, seed, repeat, input_context: see `load`.
    """
    import tensorflow as tf

    del unused
    ds = _index_dataset(len(images), shuffle, seed, repeat, input_context)
    per_replica = _per_replica(batch_size, input_context)
    if per_replica is not None:
        ds = ds.batch(per_replica)
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
    ds = tf.data.Dataset.zip(ds, seeds.batch(2))
    take = _row_reader(images, labels, batched=per_replica is not None)

    def gather(idx, batch_seed):
        x, y = take(idx)
        if recipe is not None:
            x = aug.augment_images(x, recipe, batch_seed)
        return aug.preprocess_images(x, preprocessing), y

    ds = ds.map(gather, num_parallel_calls=PARALLEL_CALLS, deterministic=True)
    return _with_options(ds.prefetch(PREFETCH_BATCHES), input_context)


# ======================== Text ========================


def _load_text(raw, validation_size, *, batch_size, shuffle, limit, seed,
               cache, repeat, input_context, skip_bad):  # fmt: skip
    utterances, train, sizes = text.split_atis(
        raw.text_path, raw.split, validation_size, skip_bad
    )
    vocabs = text.AtisVocabularies.build(train)
    if limit is not None:
        utterances = utterances[:limit]
    if not utterances:
        raise DataError(f"ATIS split '{raw.split}' is empty.")
    info = DatasetInfo(
        name=raw.name, task=TASK_TAGGING, source=raw.source, split=raw.split,
        num_examples=len(utterances), split_sizes=sizes, input_shape=(None,),
        num_classes=len(vocabs.tags), class_names=vocabs.tags.to_list(),
        vocab=vocabs.words.to_list(), intent_names=vocabs.intents.to_list(),
        max_length=max(len(u.words) for u in utterances),
    )  # fmt: skip
    ds = text.make_dataset(utterances, vocabs)
    if input_context is not None and input_context.num_input_pipelines > 1:
        ds = ds.shard(
            input_context.num_input_pipelines, input_context.input_pipeline_id
        )
    if cache != "none":
        ds = ds.cache()
    if shuffle:
        ds = ds.shuffle(
            len(utterances), seed=seed, reshuffle_each_iteration=True
        )
    if repeat:
        ds = ds.repeat()
    per_replica = _per_replica(batch_size, input_context)
    if per_replica is not None:
        ds = text.batch_dataset(ds, per_replica, bucket=shuffle)
    ds = ds.prefetch(PREFETCH_BATCHES)
    return _with_options(ds, input_context), info


# Files whose headers `get_info` reads to say what sizes a folder holds.
INFO_SAMPLE_FILES = 64


def _folder_shape(paths):
    """`(shape, sizes line)`: the one `(H, W, C)` of the first
    `INFO_SAMPLE_FILES` files, else `(None, None, C)` and a line saying
    how they differ (`fit` resizes each to the model's input)."""
    from kerascnn.data import images

    shapes = [images.header_shape(p) for p in paths[:INFO_SAMPLE_FILES]]
    shapes = [s for s in shapes if s]
    if not shapes:
        return (None, None, None), None
    if len(set(shapes)) == 1:
        return shapes[0], None
    smallest = min(shapes, key=lambda s: s[0] * s[1])
    largest = max(shapes, key=lambda s: s[0] * s[1])
    channels = sorted({s[2] for s in shapes})
    modes = " and ".join({1: "grey", 3: "colour"}[c] for c in channels)
    line = (
        f"sizes vary ({smallest[0]}x{smallest[1]} to {largest[0]}x"
        f"{largest[1]}, {modes}, in the first {len(shapes)} files): each "
        "is resized to the model's input"
    )
    return (None, None, max(channels)), line


def get_info(name, split="train", *, data_dir=None, validation_size=None):
    """`DatasetInfo` of a split without building the pipeline.

    Cheap for IDX, image folders and ATIS (no image decoding): only
    `num_examples`, sizes, classes and the native input shape are filled.
    """
    raw = sources.read(name, split, data_dir, validation_size)
    if raw.kind == "text":
        return _load_text(
            raw, validation_size, batch_size=None, shuffle=False, limit=None,
            seed=0, cache="none", repeat=False, input_context=None,
            skip_bad=False,
        )[1]  # fmt: skip
    if raw.kind == "arrays" and raw.lazy is not None:
        shape, n = raw.lazy.image_shape, len(raw.lazy)
    elif raw.kind == "arrays":
        shape = raw.images.shape[1:]
        n = len(raw.images)
    elif raw.kind == "records":
        shape = raw.image_shape or _first_record_shape(raw)
        n = raw.split_sizes[raw.split]
    else:
        shape, info_sizes = _folder_shape(raw.paths)
        n = len(raw.paths)
    if not shape[0]:
        return DatasetInfo(
            name=raw.name, task=TASK_IMAGE, source=raw.source,
            split=raw.split, num_examples=n, split_sizes=raw.split_sizes,
            input_shape=tuple(shape), num_classes=len(raw.class_names),
            class_names=list(raw.class_names),
            storage=info_sizes if raw.kind == "files" else None,
        )  # fmt: skip
    style = streaming.resolve_style("auto", raw.kind, shape[:2])
    return _image_info(raw, n, shape, None, None, True, style)
