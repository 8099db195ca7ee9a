"""Streams: image files and TFRecord shards read and decoded inside
tf.data, so that no step holds a whole split in memory.

    files:   index (shuffled) -> path -> read -> check -> decode -> ...
    records: shard files (this worker's) -> interleave -> shuffle -> ...
    ... -> [cache] -> decode + resize (or crop) -> batch -> augment +
    normalize -> prefetch

`kerascnn.data.storage` decides whether a split is streamed, and what a
stream caches. The batch stages (per-replica batching, a seed per batch,
augment + normalize, options) are those of the in-memory path
(`kerascnn.data.stages`).

An unshuffled or index-shuffled file stream gives exactly the batches of
the in-memory path (same order, same decode, same per-batch augmentation
seeds). Bad files: `decode.assert_complete` names the file; with
`skip_bad` they are dropped and counted in `SKIPPED`.
"""

import dataclasses
import sys
import threading

from kerascnn.data import augment as aug
from kerascnn.data import decode, progress, records, stages
from kerascnn.data.options import PARALLEL_CALLS, PREFETCH_BATCHES, with_options
from kerascnn.errors import DataError
from kerascnn.lazy import LazyModule

np = LazyModule("numpy")
tf = LazyModule("tensorflow")

# Shuffle buffers after a cache or over records (elements, not indices).
SHUFFLE_BUFFER_BYTES = 64 * 2**20
RECORD_SHUFFLE_BUFFER = 1024


# ======================== Skipped files ========================


class SkippedFiles:
    """Bad files a stream skipped (`skip_bad=True`), until `take()`.

    Filled from inside tf.data by a `py_function` that runs only for bad
    files; the epoch-end report (`kerascnn.training_data`) takes and clears it.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._names = []
        # Streams built that count their skips: without one (a split
        # decoded into memory skipped its bad files once, before
        # training, and said so), epochs have no skip count to report.
        self.counting_streams = 0

    def add(self, name):
        with self._lock:
            self._names.append(name)

    def take(self):
        with self._lock:
            names, self._names = self._names, []
        return names


SKIPPED = SkippedFiles()


def _record_skip(name):
    SKIPPED.add(name.numpy().decode("utf-8", "replace"))
    return False


def _keep_if_complete(count):
    """Filter predicate: complete files pass; others are dropped (and
    counted, unless the dataset must serialize, e.g. tf.data service)."""

    if count:
        SKIPPED.counting_streams += 1

    def keep(data, label, name):
        del label
        ok = decode.looks_complete(data)
        if not count:
            return ok
        kept = tf.cond(
            ok,
            lambda: ok,
            lambda: tf.py_function(_record_skip, [name], tf.bool),
        )
        return tf.reshape(kept, [])

    return keep


# ======================== Elements ========================


@dataclasses.dataclass
class StreamSpec:
    """What a stream reads and how it decodes.

    Attributes:
        paths: image file paths (files) or `None`.
        labels: int32 labels aligned with `paths`.
        record_files: TFRecord shard paths (records) or `None`.
        num_examples: examples in the split.
        shape: `(H, W, C)` each image is decoded to.
        style: `"plain"` or `"imagenet"`.
        train_crop: ImageNet style: random-resized-crop (else centre crop).
        limit: records: read only the first `limit` (files are cut
            before).
        encoding: records: `"raw"` when they hold decoded pixels (then
            elements carry uint8 images, not encoded bytes).
        raw_channels: channels of raw records (the manifest's).
    """

    paths: list
    labels: "np.ndarray"
    record_files: list
    num_examples: int
    shape: tuple
    style: str = "plain"
    train_crop: bool = False
    limit: int = None
    encoding: str = None
    raw_channels: int = None

    @property
    def raw(self):
        return self.encoding == records.RAW


def _file_elements(spec, indices, normalize=True):
    """`(bytes, label, path)` of the files at `indices` (a dataset).

    With `normalize`, the bytes pass through `images.normalized_bytes`
    (a `numpy_function`: EXIF, colour modes, WebP, as every command reads
    files); a dataset that must serialize (tf.data service) leaves it out
    and decodes what TensorFlow's decoders read.
    """

    paths = tf.constant(spec.paths)
    labels = tf.constant(np.asarray(spec.labels, np.int32))
    channels = spec.shape[2]

    def read(i):
        path = paths[i]
        data = tf.io.read_file(path)
        if normalize:
            data = decode.normalize_file_bytes(data, channels)
        return data, labels[i], path

    return indices.map(
        read, num_parallel_calls=PARALLEL_CALLS, deterministic=True
    )


def worker_files(files, input_context):
    """This input pipeline's shard files, and whether records must be
    sharded instead (fewer shards than pipelines: DATA sharding).

    The FILE policy, done here per input pipeline: pipeline `i` of `n`
    opens only shards `i, i + n, ...`, so each example is read by exactly
    one worker per epoch.
    """
    if input_context is None or input_context.num_input_pipelines <= 1:
        return list(files), False
    n, i = input_context.num_input_pipelines, input_context.input_pipeline_id
    if len(files) < n:
        print(
            f"Note: {len(files)} shard(s) for {n} input pipelines: every "
            f"worker reads all shards and keeps 1/{n} of the records (DATA "
            "sharding); convert with --shards >= the number of workers.",
            file=sys.stderr, flush=True,
        )  # fmt: skip
        return list(files), True
    return list(files[i::n]), False


def _record_elements(spec, shuffle, seed, input_context):
    """`(bytes, label, name)` read from this pipeline's shards."""

    files, shard_records = worker_files(spec.record_files, input_context)
    ds = tf.data.Dataset.from_tensor_slices(files)
    # Unshuffled: shard after shard, in the converted (source) order.
    cycle = max(1, min(len(files), PARALLEL_CALLS)) if shuffle else 1
    if shuffle:
        ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    ds = ds.interleave(
        tf.data.TFRecordDataset, cycle_length=cycle,
        num_parallel_calls=cycle, deterministic=True,
    )  # fmt: skip
    if spec.limit is not None:
        ds = ds.take(spec.limit)
    if shard_records:
        ds = ds.shard(
            input_context.num_input_pipelines, input_context.input_pipeline_id
        )
    return ds.map(
        lambda serialized: records.parse_example(
            serialized, spec.encoding, spec.raw_channels
        ),
        num_parallel_calls=PARALLEL_CALLS,
    )


# ======================== Decoding ========================


def _plain_decoder(shape, raw):
    to_shape = decode.pixels_to_shape if raw else decode.decode_to_shape

    def decode_one(data, label, name):
        del name
        return to_shape(data, shape), label

    return decode_one


def _imagenet_decoder(shape, train_crop, raw):
    """Encoded bytes or (raw) pixels -> the ImageNet crop; raw pixels are
    cropped from the array with the same windows."""
    size, channels = list(shape[:2]), shape[2]

    def center(data, label, name):
        del name
        if raw:
            image = decode.convert_channels(data, channels)
            return aug.pixels_center_crop(image, size), label
        return aug.decode_center_crop(data, size, channels), label

    def random_crop(element, seed):
        data, label, _ = element
        if raw:
            image = decode.convert_channels(data, channels)
            return aug.pixels_random_resized_crop(image, size, seed), label
        return aug.decode_random_resized_crop(data, size, channels, seed), label

    return random_crop if train_crop else center


def _cache(ds, cache, cache_file):
    if cache == "memory":
        return ds.cache()
    if cache == "disk":
        return ds.cache(cache_file)
    return ds


def _decode_stage(ds, spec, cache, cache_file, seed):
    """Elements -> uint8 `(image, label)`, with the cache where it pays."""

    parallel = PARALLEL_CALLS
    if spec.style == "imagenet":
        ds = _cache(ds, cache, cache_file)  # encoded bytes
        decoder = _imagenet_decoder(spec.shape, spec.train_crop, spec.raw)
        if spec.train_crop:
            seeds = tf.data.Dataset.random(
                seed=seed + 1, rerandomize_each_iteration=True
            ).batch(2)
            ds = tf.data.Dataset.zip(ds, seeds)
        return ds.map(decoder, num_parallel_calls=parallel, deterministic=True)
    ds = ds.map(
        _plain_decoder(spec.shape, spec.raw), num_parallel_calls=parallel,
        deterministic=True,
    )  # fmt: skip
    return _cache(ds, cache if cache == "disk" else "none", cache_file)


def decoded_elements(spec, *, shuffle=False, seed=0, repeat=False,
                     input_context=None, skip_bad=False, cache="none",
                     cache_file=None, count_skipped=True):  # fmt: skip
    """Unbatched uint8 `(image, label)` pairs of a stream.

    Shuffling: files are shuffled by index before reading (the in-memory
    path's order) unless a cache sits in between; records (and cached
    streams) shuffle shard order plus a bounded buffer of elements.
    """
    cached = cache in ("memory", "disk")
    if spec.paths is not None:
        indices = stages.index_dataset(
            len(spec.paths), shuffle and not cached, seed, False,
            input_context,
        )  # fmt: skip
        ds = _file_elements(spec, indices, normalize=count_skipped)
    else:
        ds = _record_elements(spec, shuffle, seed, input_context)
        if shuffle and not cached:
            ds = ds.shuffle(RECORD_SHUFFLE_BUFFER, seed=seed)
    if skip_bad and not spec.raw:  # raw pixels: no file format to check
        ds = ds.filter(_keep_if_complete(count_skipped))
    elif spec.paths is not None:
        # Files only: `convert` checked every record's image, and
        # TFRecordDataset verifies each record's CRC.
        ds = ds.map(
            lambda data, label, name: (
                decode.assert_complete(data, name), label, name
            ),
            num_parallel_calls=PARALLEL_CALLS, deterministic=True,
        )  # fmt: skip
    ds = _decode_stage(ds, spec, cache, cache_file, seed)
    if skip_bad:
        ds = ds.ignore_errors()  # corrupt inside a well-framed file
    if shuffle and cached:
        ds = ds.shuffle(_element_buffer(spec.shape), seed=seed)
    if repeat:
        ds = ds.repeat()
    return ds


def _element_buffer(shape):
    return max(64, SHUFFLE_BUFFER_BYTES // int(np.prod(shape)))


def image_stream(spec, preprocessing, recipe=None, *, batch_size=None,
                 seed=0, input_context=None, data_service=None,
                 **options):  # fmt: skip
    """A stream -> normalized (and augmented) batches, like
    `pipeline.image_dataset` does for in-memory arrays.

    Args:
        spec: a `StreamSpec`.
        preprocessing: the `DatasetInfo.preprocessing` dict.
        recipe: batch augmentation recipe or `None`.
        batch_size: global batch size or `None` for single examples.
        seed, input_context: see `kerascnn.data.load`.
        data_service: `grpc://host:port` of a tf.data service dispatcher:
            workers there read, decode and augment.
        **options: `shuffle`, `repeat`, `skip_bad`, `cache`, `cache_file`
            for `decoded_elements`.
    """
    ds = decoded_elements(
        spec, seed=seed, input_context=input_context,
        count_skipped=not data_service, **options,
    )  # fmt: skip
    ds = stages.batch_and_finish(
        ds, preprocessing, recipe, batch_size, seed, input_context
    )
    if data_service:
        ds = distribute_on_service(ds, data_service)
    ds = ds.prefetch(PREFETCH_BATCHES)
    policy = _shard_policy(spec, input_context)
    return with_options(ds, input_context, policy)


def array_stream(split, preprocessing, recipe=None, *, batch_size=None,
                 shuffle=False, seed=0, repeat=False, input_context=None,
                 **unused):  # fmt: skip
    """A `LazySplit` read in order (TFDS) -> batches like in memory.

    Shuffling reads the source's files in a seeded order (TFDS) through
    a bounded buffer of elements (64 MiB of images), not the in-memory
    path's whole-split permutation; unshuffled, the batches equal those
    of the in-memory path.
    """
    del unused
    ds = split.elements(shuffle_files=shuffle, seed=seed)
    ds = stages.shard_for_pipeline(ds, input_context)
    if shuffle:
        ds = ds.shuffle(_element_buffer(split.image_shape), seed=seed,
                        reshuffle_each_iteration=True)  # fmt: skip
    if repeat:
        ds = ds.repeat()
    ds = stages.batch_and_finish(
        ds, preprocessing, recipe, batch_size, seed, input_context
    )
    return with_options(ds.prefetch(PREFETCH_BATCHES), input_context)


def _shard_policy(spec, input_context):
    """FILE for shards when `experimental_distribute_dataset` shards it
    (no `input_context`); the index stream of files shards by DATA."""

    policy = tf.data.experimental.AutoShardPolicy
    if input_context is not None:
        return policy.OFF
    if spec.record_files is not None and len(spec.record_files) > 1:
        return policy.FILE
    return policy.DATA


def distribute_on_service(ds, address):
    """Hands `ds` to a tf.data service: its workers run the pipeline and
    this process reads their batches (`parallel_epochs`: every worker
    produces a full epoch in its own order, which suits one trainer)."""

    return ds.apply(
        tf.data.experimental.service.distribute(
            processing_mode=tf.data.experimental.service.ShardingPolicy.OFF,
            service=address,
        )
    )


def check_service_address(address):
    """Raises `DataError` unless `address` is `grpc://HOST:PORT`."""
    if address is not None and not str(address).startswith("grpc://"):
        raise DataError(
            "`data_service` must look like grpc://HOST:PORT (the "
            f"dispatcher). Received: data_service={address!r}"
        )


def arrays_from_stream(spec, what="records"):
    """Decodes a whole stream into `(uint8 images, int32 labels)`; `what`
    names them in the progress line."""
    images = np.empty((spec.num_examples,) + tuple(spec.shape), np.uint8)
    labels = np.empty(spec.num_examples, np.int32)
    n = 0
    ds = decoded_elements(spec).batch(decode.DECODE_BATCH)
    with progress.counter(
        f"Decoding {what} into memory", spec.num_examples, "images"
    ) as count:
        for x, y in ds.as_numpy_iterator():
            images[n : n + len(x)], labels[n : n + len(x)] = x, y
            n += len(x)
            count.add(len(x))
    return images[:n], labels[:n]
