"""`load()`: source -> decode -> cache -> shard -> shuffle -> batch ->
augment + normalize (vectorized, per batch) -> prefetch.

Each source returns a typed split (`sources.ArraySplit`, `FileSplit`,
`RecordSplit`, `TextSplit`); `load` checks its keywords into one
`LoadOptions` and hands both to the loader of that type.

Two ways to hold images, chosen per split (`storage.choose_storage`,
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
folder gives the same batches as the in-memory path (both use the stage
functions of `kerascnn.data.stages`).

Performance: tf.data autotuning is switched off and the pipeline uses
fixed settings (`kerascnn.data.options`).

Distribution: `batch_size` is the global batch size. With an
`input_context` the index dataset (or the list of shards) is sharded by
`input_pipeline_id` and batched with `get_per_replica_batch_size`;
without one the dataset carries `AutoShardPolicy.DATA` (`FILE` for
shards) for `strategy.experimental_distribute_dataset`.
"""

import dataclasses

from kerascnn.data import augment as aug
from kerascnn.data import (
    decode,
    preprocessing,
    records,
    sources,
    stages,
    storage,
    streaming,
    text,
)
from kerascnn.data import images as image_files
from kerascnn.data.info import IMAGES, TAGGED_TEXT, DatasetInfo
from kerascnn.data.options import PARALLEL_CALLS, PREFETCH_BATCHES, with_options
from kerascnn.errors import DataError
from kerascnn.lazy import LazyModule
from kerascnn.validation import check_image_size

np = LazyModule("numpy")
tf = LazyModule("tensorflow")


@dataclasses.dataclass(frozen=True)
class LoadOptions:
    """How `load` reads a split: its keyword arguments, checked and with
    the split's defaults filled in (see `load` for each)."""

    batch_size: int = None
    shuffle: bool = False
    augment: object = False
    limit: int = None
    seed: int = 0
    image_size: tuple = None
    channels: int = None
    cache: str = "auto"
    repeat: bool = False
    input_context: object = None
    skip_bad: bool = False
    validation_size: object = None
    cache_dir: str = None
    style: str = "auto"
    data_service: str = None
    normalization: dict = None

    @classmethod
    def checked(cls, split, *, shuffle=None, augment=None, cache="auto",
                **kwargs):  # fmt: skip
        """Checks the keywords of `load` for the canonical `split`.

        Raises:
            DataError: a keyword with a value `load` does not accept.
        """
        _check_args(**kwargs)
        is_train = split == "train"
        return cls(
            shuffle=is_train if shuffle is None else bool(shuffle),
            augment=is_train if augment is None else augment,
            cache=storage.check_cache(cache),
            **kwargs,
        )

    @property
    def order(self):
        """The keywords of `image_dataset` and the streams: batching,
        order, repetition and distribution."""
        return dict(
            batch_size=self.batch_size, shuffle=self.shuffle, seed=self.seed,
            repeat=self.repeat, input_context=self.input_context,
        )  # fmt: skip


def _check_args(*, batch_size=None, limit=None, image_size=None,
                channels=None, data_service=None, **unchecked):  # fmt: skip
    """Raises `DataError` for a keyword of `load` it cannot take (the
    others are checked where they are used)."""
    del unchecked
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
    streaming.check_service_address(data_service)


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
            `kerascnn.data.storage`). `.npz` and TFDS splits are loaded
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
            folders and shards at 128 px or more (`preprocessing`).
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
    split = sources.canonical_split(split)
    options = LoadOptions.checked(
        split, batch_size=batch_size, shuffle=shuffle, augment=augment,
        limit=limit, seed=seed, image_size=image_size, channels=channels,
        cache=cache, repeat=repeat, input_context=input_context,
        skip_bad=skip_bad, validation_size=validation_size,
        cache_dir=cache_dir, style=style, data_service=data_service,
        normalization=normalization,
    )  # fmt: skip
    raw = sources.read(name, split, data_dir, validation_size)
    if isinstance(raw, sources.TextSplit):
        return _load_text(raw, options)
    if isinstance(raw, sources.ArraySplit):
        return _load_arrays(raw, options)
    return _load_image_files(raw, options)


# ======================== Images ========================


def _image_info(raw, num_examples, native, *, image_size=None, channels=None,
                augment=True, style="plain", normalization=None):  # fmt: skip
    """`DatasetInfo` of an image split: model size, normalization, recipe."""
    spec = preprocessing.image_preprocessing(
        raw.name, native, image_size, channels, style, normalization
    )
    height, width = spec["image_size"]
    return DatasetInfo(
        name=raw.name, kind=IMAGES, source=raw.source, split=raw.split,
        num_examples=num_examples, split_sizes=raw.split_sizes,
        input_shape=(height, width, spec["channels"]),
        num_classes=len(raw.class_names), class_names=list(raw.class_names),
        preprocessing=spec,
        augmentation=aug.training_recipe(augment, raw.name, native[2], style),
    )  # fmt: skip


def _options_info(raw, num_examples, native, options, style="plain"):
    """`_image_info` with the image keywords of `options`."""
    return _image_info(
        raw, num_examples, native, image_size=options.image_size,
        channels=options.channels, augment=options.augment, style=style,
        normalization=options.normalization,
    )  # fmt: skip


def _load_arrays(raw, options):
    """An `ArraySplit`: held in memory, or read on demand (`lazy`)."""
    if raw.lazy is not None:
        return _load_lazy(raw, options)
    images, labels = raw.images, raw.labels
    if options.limit is not None:
        images, labels = images[: options.limit], labels[: options.limit]
    if len(images) == 0:
        raise DataError(f"Data set {raw.name!r} split '{raw.split}' is empty.")
    info = _options_info(raw, len(images), images.shape[1:], options)
    ds = image_dataset(images, labels, info.preprocessing,
                       info.augmentation, **options.order)  # fmt: skip
    return ds, info


def _load_lazy(raw, options):
    """A `.npz` or TFDS split: into memory when it fits the memory budget
    (or `cache="memory"`), else streamed: by index from a memory-mapped
    `.npz` (the batches of the in-memory path), in order from TFDS."""
    limit = options.limit
    split = raw.lazy if limit is None else raw.lazy[:limit]
    n = len(split)
    if n == 0:
        raise DataError(f"Data set {raw.name!r} split '{raw.split}' is empty.")
    info = _options_info(raw, n, split.image_shape, options)
    where, reason = storage.choose_storage(
        options.cache, split.decoded_bytes, "plain"
    )
    if where == "memory":
        info.storage = f"{n:,} images read into memory ({reason})"
        images, labels = split.load()
        ds = image_dataset(images, labels, info.preprocessing,
                           info.augmentation, **options.order)  # fmt: skip
        return ds, info
    if split.random_access:
        how = "memory-mapped, each batch read by index"
        ds = image_dataset(split, None, info.preprocessing,
                           info.augmentation, **options.order)  # fmt: skip
    else:
        how = "read in order"
        ds = streaming.array_stream(
            split, info.preprocessing, info.augmentation, **options.order
        )
    info.storage = (
        f"{n:,} images streamed from {split.description}, {how} ({reason})"
    )
    return ds, info


# ================= Image files and shards (memory or stream) =================


def _first_shape(raw, skip_bad):
    """Native `(H, W, C)` of a folder's first decodable image, or of the
    shard set (its manifest, else its first record)."""
    if isinstance(raw, sources.RecordSplit):
        if raw.image_shape:
            return tuple(raw.image_shape)
        return _first_record_shape(raw)
    for path in raw.paths:
        problem = decode.header_problem(path)
        if problem and not skip_bad:
            raise decode.header_error(path, problem)
        shape = None if problem else decode.native_shape(path)
        if shape is not None:
            return shape
        if not skip_bad:
            decode.raise_corrupt(path)
    raise DataError("None of the image files could be decoded.")


def _first_record_shape(raw):

    files = raw.files
    for serialized in tf.data.TFRecordDataset(files).take(1):
        data, _, _ = records.parse_example(
            serialized, raw.encoding, raw.channels
        )
        if raw.encoding != records.RAW:
            data = decode.decode_image_bytes(data)
        return tuple(int(d) for d in data.shape)
    raise DataError(f"The shards {files[:1]} hold no records.")


def _stream_spec(raw, limit, shape, style, train_crop):
    if isinstance(raw, sources.RecordSplit):
        n = raw.split_sizes[raw.split]
        n = min(n, limit) if limit else n
        return streaming.StreamSpec(
            None, None, raw.files, n, shape, style, train_crop, limit,
            raw.encoding, raw.channels,
        )  # fmt: skip
    paths, labels = raw.paths, raw.labels
    if limit is not None:
        paths, labels = paths[:limit], labels[:limit]
    return streaming.StreamSpec(list(paths), labels, None, len(paths), shape,
                                style, train_crop)  # fmt: skip


def _split_count(raw):
    """Examples of a `FileSplit` or `RecordSplit`, before `limit`."""
    if isinstance(raw, sources.FileSplit):
        return len(raw.paths)
    return raw.split_sizes.get(raw.split, 0)


def _load_image_files(raw, options):
    """A `FileSplit` (image folder) or `RecordSplit` (shards), decoded
    into memory or streamed."""
    if _split_count(raw) == 0:
        raise DataError(f"Data set {raw.name!r} split '{raw.split}' is empty.")
    files = isinstance(raw, sources.FileSplit)
    native = _first_shape(raw, options.skip_bad)
    size = tuple(options.image_size or native[:2])
    style = preprocessing.resolve_style(options.style, True, size)
    info = _options_info(raw, _split_count(raw), native, options, style)
    # Files decode straight to the model's channels (`images` policy);
    # shards keep theirs (converted per batch, as arrays are).
    shape = info.input_shape if style == "imagenet" or files else (
        size[0], size[1], native[2]
    )  # fmt: skip
    spec = _stream_spec(
        raw, options.limit, shape, style, info.augmentation is not None
    )
    info.num_examples = spec.num_examples
    cache = options.cache
    where, reason = storage.choose_storage(
        cache, spec.num_examples * int(np.prod(shape)), style,
        options.data_service,
    )  # fmt: skip
    cache_file = None
    if where == "stream" and cache == "disk":
        cache_file = storage.cache_file(
            options.cache_dir, raw.source, raw.split, shape, style,
            options.limit, options.input_context,
        )  # fmt: skip
    info.storage = storage.storage_line(
        where, reason, spec.num_examples, cache, cache_file
    )
    if where == "memory":
        images, labels = _decode_to_memory(raw, spec, options.skip_bad)
        skipped = spec.num_examples - len(images)
        if skipped:
            _check_every_class_read(raw, spec.labels, labels)
            info.storage = (
                storage.storage_line(
                    where, reason, len(images), cache, cache_file
                )
                + f"; {skipped} bad file(s) skipped"
            )
        info.num_examples = len(images)
        ds = image_dataset(images, labels, info.preprocessing,
                           info.augmentation, **options.order)  # fmt: skip
        return ds, info
    ds = streaming.image_stream(
        spec, info.preprocessing, info.augmentation, cache=cache,
        cache_file=cache_file, data_service=options.data_service,
        skip_bad=options.skip_bad, **options.order,
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
    if isinstance(raw, sources.FileSplit):
        return decode.decode_files(
            spec.paths, spec.labels, skip_bad, spec.shape[:2], what,
            channels=spec.shape[2],
        )  # fmt: skip
    images, labels = streaming.arrays_from_stream(spec, what)
    return images[: spec.num_examples], labels[: spec.num_examples]


def _row_reader(images, labels, batched):
    """`indices -> (uint8 images, int32 labels)`: a gather from in-memory
    arrays, or rows read from a random-access `LazySplit` (a
    memory-mapped `.npz`) as each batch is made."""

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
    del unused
    ds = stages.index_dataset(len(images), shuffle, seed, repeat,
                              input_context)  # fmt: skip
    per_replica = stages.per_replica_batch_size(batch_size, input_context)
    if per_replica is not None:
        ds = ds.batch(per_replica)
    ds = stages.with_batch_seeds(ds, seed)
    take = _row_reader(images, labels, batched=per_replica is not None)

    def gather(idx, batch_seed):
        x, y = take(idx)
        return stages.finish_batch(x, preprocessing, recipe, batch_seed), y

    ds = ds.map(gather, num_parallel_calls=PARALLEL_CALLS, deterministic=True)
    return with_options(ds.prefetch(PREFETCH_BATCHES), input_context)


# ======================== Text ========================


def _load_text(raw, options):
    """A `TextSplit` (ATIS): utterances -> padded batches of word ids."""
    utterances, train, sizes = text.split_atis(
        raw.text_path, raw.split, options.validation_size, options.skip_bad
    )
    vocabs = text.AtisVocabularies.build(train)
    if options.limit is not None:
        utterances = utterances[: options.limit]
    if not utterances:
        raise DataError(f"ATIS split '{raw.split}' is empty.")
    info = DatasetInfo(
        name=raw.name, kind=TAGGED_TEXT, source=raw.source, split=raw.split,
        num_examples=len(utterances), split_sizes=sizes, input_shape=(None,),
        num_classes=len(vocabs.tags), class_names=vocabs.tags.to_list(),
        vocab=vocabs.words.to_list(), intent_names=vocabs.intents.to_list(),
        max_length=max(len(u.words) for u in utterances),
    )  # fmt: skip
    input_context = options.input_context
    ds = stages.shard_for_pipeline(
        text.make_dataset(utterances, vocabs), input_context
    )
    if options.cache != "none":
        ds = ds.cache()
    if options.shuffle:
        ds = ds.shuffle(
            len(utterances), seed=options.seed, reshuffle_each_iteration=True
        )
    if options.repeat:
        ds = ds.repeat()
    per_replica = stages.per_replica_batch_size(
        options.batch_size, input_context
    )
    if per_replica is not None:
        ds = text.batch_dataset(ds, per_replica, bucket=options.shuffle)
    ds = ds.prefetch(PREFETCH_BATCHES)
    return with_options(ds, input_context), info


# Files whose headers `get_info` reads to say what sizes a folder holds.
INFO_SAMPLE_FILES = 64


def _folder_shape(paths):
    """`(shape, sizes line)`: the one `(H, W, C)` of the first
    `INFO_SAMPLE_FILES` files, else `(None, None, C)` and a line saying
    how they differ (`fit` resizes each to the model's input)."""
    shapes = [image_files.header_shape(p) for p in paths[:INFO_SAMPLE_FILES]]
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


def _checked_folder(raw, name, data_dir, validation_size, skip_bad):
    """`raw` with its unreadable files dropped and every split's size
    counting readable files only (`get_info(check_files=True)`)."""
    sizes = dict(raw.split_sizes)
    for split in sizes:
        other = raw if split == raw.split else sources.read(
            name, split, data_dir, validation_size
        )  # fmt: skip
        paths, labels = decode.check_headers(
            other.paths, other.labels, skip_bad, f"the {split} split"
        )
        sizes[split] = len(paths)
        if split == raw.split:
            raw = dataclasses.replace(raw, paths=paths, labels=labels)
    return dataclasses.replace(raw, split_sizes=sizes)


def get_info(name, split="train", *, data_dir=None, validation_size=None,
             check_files=False, skip_bad=False):  # fmt: skip
    """`DatasetInfo` of a split without building the pipeline.

    Cheap for IDX, image folders and ATIS (no image decoding): only
    `num_examples`, sizes, classes and the native input shape are filled.

    Args:
        check_files: for an image folder, also read the first bytes of
            every file of every split (as `fit` does before decoding), so
            a file that is empty or not image data is found now; the split
            sizes then count readable files only.
        skip_bad: with `check_files`, skip and count such files (one note
            names them) instead of raising `DataError` for the first.
    """
    raw = sources.read(name, split, data_dir, validation_size)
    if check_files and isinstance(raw, sources.FileSplit):
        raw = _checked_folder(raw, name, data_dir, validation_size, skip_bad)
    if isinstance(raw, sources.TextSplit):
        options = LoadOptions(cache="none", validation_size=validation_size)
        return _load_text(raw, options)[1]
    info_sizes = None
    if isinstance(raw, sources.ArraySplit) and raw.lazy is not None:
        shape, n = raw.lazy.image_shape, len(raw.lazy)
    elif isinstance(raw, sources.ArraySplit):
        shape = raw.images.shape[1:]
        n = len(raw.images)
    elif isinstance(raw, sources.RecordSplit):
        shape = raw.image_shape or _first_record_shape(raw)
        n = raw.split_sizes[raw.split]
    else:
        shape, info_sizes = _folder_shape(raw.paths)
        n = len(raw.paths)
    if not shape[0]:
        return DatasetInfo(
            name=raw.name, kind=IMAGES, source=raw.source, split=raw.split,
            num_examples=n, split_sizes=raw.split_sizes,
            input_shape=tuple(shape), num_classes=len(raw.class_names),
            class_names=list(raw.class_names), storage=info_sizes,
        )  # fmt: skip
    from_files = isinstance(raw, (sources.FileSplit, sources.RecordSplit))
    style = preprocessing.resolve_style("auto", from_files, shape[:2])
    return _image_info(raw, n, shape, style=style)
