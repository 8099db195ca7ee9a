"""Training: `fit(config) -> RunResult`, the library entry the CLI calls.

    from kerascnn.config import recipe_for
    from kerascnn.train import fit
    result = fit(recipe_for("lenet", epochs=2, limit=5000))
    result.metrics["accuracy"]

A run directory (`runs/<model>-<timestamp>/` by default) holds:

    config.json        the resolved TrainConfig
    metadata.json      model name, classes, preprocessing (for export)
    model.keras        the final model
    checkpoints/       best.keras (by validation accuracy; the tagger: dev
                       span F1, also restored as model.keras), last.keras
    backup/            Keras BackupAndRestore state while the run is live
    logs/              TensorBoard event files
    history.csv        one row per epoch (appended across resumes)
    history.json       the same at the end of training
    metrics.json       final metrics on the test split
    initial_filters.npz  first conv kernels before training (visualize)
    curves.png         loss and accuracy per epoch

Fault tolerance: the backup is written at every epoch end, so a run killed
at any point (even SIGKILL) loses at most one epoch. Re-running the same
command finds the unfinished run directory (same config, backup present)
and resumes it. Ctrl-C stops cleanly, keeping the backup and writing
`interrupted.keras`.
"""

import dataclasses
import datetime
import glob
import json
import os
import warnings

import numpy as np

from kerascnn import distribute, visualize
from kerascnn.config import TrainConfig
from kerascnn.errors import KerasCNNError, TrainingError
from kerascnn.metadata import MODEL_FILENAME, ModelMetadata

BACKUP_DIR = "backup"
CONFIG_FILENAME = "config.json"
METRICS_FILENAME = "metrics.json"
# Settings that may change between a run and its resumption.
_RESUME_IGNORED = ("run_dir", "log_format", "export", "export_dir")


@dataclasses.dataclass
class RunResult:
    """What `fit` produced.

    Attributes:
        run_dir: the run directory.
        config: the resolved `TrainConfig`.
        history: dict metric -> list of per-epoch values.
        metrics: final test metrics (see `evaluate`).
        model_path: path of the final `.keras` model.
        export_path: SavedModel version folder, or `None`.
        resumed_from_epoch: epochs already done when this call started.
        epoch_seconds: wall time of each epoch run by this call.
    """

    run_dir: str
    config: TrainConfig
    history: dict
    metrics: dict
    model_path: str
    export_path: str = None
    resumed_from_epoch: int = 0
    epoch_seconds: list = dataclasses.field(default_factory=list)


# ============================ Run directory ============================


def _comparable(config):
    d = config.to_dict()
    for key in _RESUME_IGNORED:
        d.pop(key, None)
    return d


def _unfinished_run_config(run_dir):
    """The saved config of an unfinished run (backup present), else None."""
    backup = os.path.join(run_dir, BACKUP_DIR)
    cfg_path = os.path.join(run_dir, CONFIG_FILENAME)
    if not (os.path.isdir(backup) and os.path.isfile(cfg_path)):
        return None
    with open(cfg_path) as f:
        return TrainConfig.from_dict(json.load(f))


def find_resumable_run(config):
    """The newest unfinished run of the same config under `runs_root`."""
    pattern = os.path.join(config.runs_root, f"{config.model}-*")
    for run_dir in sorted(glob.glob(pattern), reverse=True):
        try:
            saved = _unfinished_run_config(run_dir)
        except (ValueError, KerasCNNError):
            continue
        if saved is not None and _comparable(saved) == _comparable(config):
            return run_dir
    return None


def resolve_run_dir(config, resume=True):
    """Picks the run directory: explicit, resumable, or a new timestamp."""
    if config.run_dir:
        return config.run_dir
    if resume:
        found = find_resumable_run(config)
        if found:
            return found
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return os.path.join(config.runs_root, f"{config.model}-{stamp}")


def _write_json(path, data):
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=2)
    os.replace(tmp, path)


def _check_same_config(run_dir, config):
    saved = _unfinished_run_config(run_dir)
    if saved is not None and _comparable(saved) != _comparable(config):
        raise TrainingError(
            f"{run_dir} holds an unfinished run with a different "
            "configuration; pass another --run-dir or the same settings."
        )


# ================================ Data ================================


def load_data(config, strategy=None):
    """Train and validation datasets plus the train `DatasetInfo`.

    Validation uses the data set's validation split when it has one (ATIS
    dev), else its test split. With several replicas each dataset is built
    per input pipeline, so the global batch is split across replicas.
    """
    train_ds, info = _load_split(config, "train", training=True)
    val_split = "validation" if info.split_sizes.get("validation") else "test"
    if strategy is not None and strategy.num_replicas_in_sync > 1:
        return (
            _distribute(strategy, config, "train", training=True),
            _distribute(strategy, config, val_split, training=False),
            info,
        )
    return train_ds, _validation_set(config, val_split, info), info


# Per-epoch validation of image models runs in batches of up to this many
# input values (MNIST: 2,048 images, CIFAR-10: 1,365; ImageNet-sized
# inputs keep the training batch), and is cached in memory after
# normalization when it fits `VALIDATION_CACHE_BYTES`: forward passes are
# cheaper in big batches, and the epoch end then costs a few % of a LeNet
# epoch instead of 10-15% (benchmarks/README.md).
VALIDATION_BATCH_VALUES = 2**22
VALIDATION_BATCH_MAX = 2048
VALIDATION_CACHE_BYTES = 256 * 2**20


def _validation_set(config, split, info):
    """The per-epoch validation dataset: big batches, cached if small."""
    if info.task == "sequence_tagging":
        return _load_split(config, split, training=False)[0]
    values = int(np.prod(config.input_shape or info.input_shape))
    batch = min(VALIDATION_BATCH_MAX, VALIDATION_BATCH_VALUES // values)
    batch = max(config.batch_size, batch)
    val_config = dataclasses.replace(config, batch_size=batch)
    val_ds, val_info = _load_split(val_config, split, training=False)
    if val_info.num_examples * values * 4 <= VALIDATION_CACHE_BYTES:
        val_ds = val_ds.cache()
    return val_ds


def _load_split(config, split, training, input_context=None):
    """`kerascnn.data.load` of one split with the run's settings."""
    from kerascnn import data

    image_size, channels = _image_args(config.input_shape)
    return data.load(
        config.dataset,
        split,
        data_dir=config.data_dir,
        batch_size=config.batch_size,
        shuffle=training,
        augment=config.augment and training,
        limit=config.limit if training else config.eval_limit,
        seed=config.seed,
        image_size=image_size,
        channels=channels,
        input_context=input_context,
    )


def _distribute(strategy, config, split, training):
    def dataset_fn(input_context):
        return _load_split(config, split, training, input_context)[0]

    return strategy.distribute_datasets_from_function(dataset_fn)


def _image_args(shape):
    """`(image_size, channels)` for `data.load` from an `(H, W, C)` shape."""
    if shape and len(shape) == 3:
        return tuple(shape[:2]), shape[2]
    return None, None


# =============================== Model ================================


def build_model(config, info):
    """Builds the registry model sized for the data set."""
    from kerascnn import models

    options = dict(config.model_options)
    if info.task == "sequence_tagging":
        options.setdefault("vocab_size", len(info.vocab))
        options.setdefault("num_intents", len(info.intent_names))
    model_info = models.get_model_info(config.model)
    if model_info.task != info.task:
        raise TrainingError(
            f"Model {config.model!r} does a {model_info.task.replace('_', ' ')}"
            f" task but data set {config.dataset!r} is for "
            f"{info.task.replace('_', ' ')}."
        )
    input_shape = tuple(config.input_shape or info.input_shape)
    return models.build(
        config.model,
        input_shape=input_shape,
        num_classes=info.num_classes,
        **options,
    )


def make_optimizer(config, steps_per_epoch):
    """Optimizer with the recipe's schedule and decoupled weight decay."""
    import keras

    lr = _schedule(config, steps_per_epoch)
    wd = config.weight_decay or None
    if config.optimizer == "sgd":
        opt = keras.optimizers.SGD(
            lr,
            momentum=config.momentum,
            nesterov=False,
            weight_decay=_decoupled_sgd_decay(wd, config.momentum),
        )
    elif config.optimizer == "adamw":
        opt = keras.optimizers.AdamW(lr, weight_decay=wd or 1e-4)
    elif config.optimizer == "rmsprop":
        opt = keras.optimizers.RMSprop(lr, weight_decay=wd)
    else:
        opt = keras.optimizers.Adam(lr, weight_decay=wd)
    if wd:
        # Decay kernels only: not BN scales/offsets, biases or embeddings.
        opt.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
    return opt


def _decoupled_sgd_decay(l2, momentum):
    """Keras' decoupled decay that matches the papers' L2 `weight_decay`.

    Papers (ResNet, VGG) add `l2 * w` to the gradient, which momentum then
    accumulates: per step the weights shrink by about `lr * l2 / (1 -
    momentum)`. Keras' `weight_decay` shrinks them by `lr * wd` outside the
    momentum buffer, so the same number is 10x weaker at momentum 0.9
    (ResNet-20 overfit: train loss 0.07, 86.2% test after 119 epochs).
    """
    if not l2:
        return None
    return l2 / (1.0 - momentum) if momentum < 1 else l2


def _schedule(config, steps_per_epoch):
    import keras

    total = max(1, config.epochs * steps_per_epoch)
    warmup = config.warmup_epochs * steps_per_epoch
    lr = config.learning_rate
    if config.schedule == "cosine":
        if warmup:
            return keras.optimizers.schedules.CosineDecay(
                lr / 100,
                total - warmup,
                warmup_target=lr,
                warmup_steps=warmup,
            )
        return keras.optimizers.schedules.CosineDecay(lr, total)
    if config.schedule == "step":
        return keras.optimizers.schedules.PiecewiseConstantDecay(
            [int(total * 0.5), int(total * 0.75)], [lr, lr / 10, lr / 100]
        )
    return lr


def compile_model(model, config, info, steps_per_epoch):
    """Compiles with the loss and metrics of the task."""
    loss = _loss(config)
    if info.task == "sequence_tagging":
        loss = {"tags": loss, "intent": _loss(config)}
        metrics = {"tags": ["accuracy"], "intent": ["accuracy"]}
    else:
        metrics = ["accuracy"]
    model.compile(
        optimizer=make_optimizer(config, steps_per_epoch),
        loss=loss,
        metrics=metrics,
        jit_compile=config.jit_compile,
        steps_per_execution=_steps_per_execution(config),
    )


def _steps_per_execution(config):
    """`config.steps_per_execution`, or 1 under a multi-replica strategy.

    Keras 3.15's multi-step loop fails inside `MirroredStrategy` and
    `MultiWorkerMirroredStrategy` (InvalidArgumentError in
    `multi_step_on_iterator`), so distributed runs take one step per call.
    """
    import tensorflow as tf

    if tf.distribute.get_strategy().num_replicas_in_sync > 1:
        return 1
    return config.steps_per_execution


def _loss(config):
    import keras

    if config.label_smoothing:
        from kerascnn.losses import SparseSmoothedCrossentropy

        return SparseSmoothedCrossentropy(config.label_smoothing)
    return keras.losses.SparseCategoricalCrossentropy()


# ============================== Callbacks =============================


def make_callbacks(config, run_dir, nan_stop, timer):
    import keras

    from kerascnn.callbacks import (
        EpochBackupAndRestore,
        EpochCheckpoints,
        EpochTensorBoard,
        JsonLinesLogger,
    )

    ckpt = os.path.join(run_dir, "checkpoints")
    os.makedirs(ckpt, exist_ok=True)
    monitor = "val_accuracy" if config.dataset != "atis" else "val_slot_f1"
    callbacks = [nan_stop]
    if config.dataset == "atis":
        from kerascnn.tagging import dev_span_f1_callback

        # Dev span F1 into the logs before the checkpoint reads them.
        callbacks.append(dev_span_f1_callback(config))
    # Epoch-granular callbacks only, one model serialization per epoch
    # (see kerascnn.callbacks).
    # The backup reuses the weights of the checkpoint saved just before it.
    checkpoints = EpochCheckpoints(
        ckpt, monitor, "max", best=_best_so_far(run_dir, monitor)
    )
    callbacks += [
        checkpoints,
        EpochBackupAndRestore(os.path.join(run_dir, BACKUP_DIR), checkpoints),
        keras.callbacks.CSVLogger(
            os.path.join(run_dir, "history.csv"), append=True
        ),
        EpochTensorBoard(os.path.join(run_dir, "logs"), write_graph=False),
        timer,
    ]
    if config.log_format == "json":
        callbacks.append(JsonLinesLogger())
    return callbacks


def _best_so_far(run_dir, monitor):
    """Best `monitor` value in history.csv (a resumed run), else None."""
    values = _full_history(run_dir, {}).get(monitor)
    return max(values) if values else None


# ================================ Fit =================================


def resolve_precision(config):
    """The config with `mixed_precision="auto"` resolved for this machine.

    The choice (a policy name, or `"none"` for float32) is what the run's
    config.json records, so a resumed run on the same machine matches.
    """
    from kerascnn import hardware

    policy = hardware.resolve_precision(config.mixed_precision)
    return dataclasses.replace(
        config, mixed_precision="none" if policy == "float32" else policy
    )


def _policy_name(config):
    from kerascnn import hardware

    return hardware.resolve_precision(config.mixed_precision)


def _setup(config):
    import keras

    keras.utils.set_random_seed(config.seed)
    keras.mixed_precision.set_global_policy(_policy_name(config))


def float32_copy(model, config, info):
    """The trained model rebuilt in float32 with the same weights.

    Mixed-precision layers record their policy in the `.keras` file, so the
    final model, the SavedModel and the TFLite files exported from it would
    compute in bf16/float16. Variables are float32 under every mixed
    policy, so the copy is exact.
    """
    import keras

    if _policy_name(config) == "float32":
        return model
    keras.mixed_precision.set_global_policy("float32")
    copy = build_model(config, info)
    copy.set_weights(model.get_weights())
    return copy


def fit(config, resume=True, on_start=None):
    """Trains `config.model` on `config.dataset` and writes a run directory.

    Args:
        config: a `TrainConfig` (see `kerascnn.config.recipe_for`).
        resume: continue the newest unfinished run with the same config
            when `config.run_dir` is not set. Defaults to `True`.
        on_start: optional callable `(run_dir, resumed_epoch)` invoked once
            training is about to start (the CLI prints where it writes).

    Returns:
        A `RunResult`.

    Raises:
        TrainingError: NaN loss, interruption, or a config that cannot run.
    """
    config = resolve_precision(dataclasses.replace(config).validate())
    _setup(config)
    # Strategy and data are checked before anything is written.
    strategy = distribute.get_strategy(config.strategy)
    if not config.run_dir and distribute.is_multi_worker(strategy):
        config = dataclasses.replace(
            config, run_dir=distribute.shared_run_dir(config)
        )
    run_dir = resolve_run_dir(config, resume=resume)
    config = dataclasses.replace(config, run_dir=run_dir)
    _check_same_config(run_dir, config)
    train_ds, val_ds, info = load_data(config, strategy)
    steps_per_epoch = -(-info.num_examples // config.batch_size)
    chief = distribute.is_chief(strategy)
    if chief:
        os.makedirs(run_dir, exist_ok=True)
        _write_json(os.path.join(run_dir, CONFIG_FILENAME), config.to_dict())
    with strategy.scope():
        model = build_model(config, info)
        compile_model(model, config, info, steps_per_epoch)
    distribute.prepare_model(model, strategy)
    metadata = _metadata(config, info, model)
    if chief:
        metadata.save(os.path.join(run_dir, "metadata.json"))
        visualize.save_initial_filters(model, run_dir)
    resumed = _completed_epochs(run_dir)
    if on_start:
        on_start(run_dir, resumed)
    # Non-chief workers write to a temporary folder they delete.
    write_dir = distribute.worker_dir(run_dir, strategy)
    try:
        distribute.copy_backup(run_dir, write_dir, BACKUP_DIR)
        history, seconds = _run_fit(model, config, write_dir, train_ds, val_ds)
    except distribute.peer_errors() as e:
        if not distribute.is_multi_worker(strategy):
            raise
        raise distribute.peer_lost(e, run_dir) from None
    finally:
        distribute.remove_worker_dir(write_dir, run_dir)
    if not chief:
        return RunResult(
            run_dir=run_dir,
            config=config,
            history=history,
            metrics={},
            model_path=os.path.join(run_dir, MODEL_FILENAME),
            resumed_from_epoch=resumed,
            epoch_seconds=seconds,
        )

    model = float32_copy(model, config, info)
    model_path = os.path.join(run_dir, MODEL_FILENAME)
    model.save(model_path)
    _write_json(os.path.join(run_dir, "history.json"), history)
    visualize.save_run_curves(run_dir)
    metrics = evaluate_model(
        model,
        metadata,
        config.dataset,
        data_dir=config.data_dir,
        batch_size=config.batch_size,
        limit=config.eval_limit,
    )
    metrics["epoch_seconds"] = seconds
    _write_json(os.path.join(run_dir, METRICS_FILENAME), metrics)
    export_path = _export(config, run_dir) if config.export else None
    return RunResult(
        run_dir=run_dir,
        config=config,
        history=history,
        metrics=metrics,
        model_path=model_path,
        export_path=export_path,
        resumed_from_epoch=resumed,
        epoch_seconds=seconds,
    )


def _run_fit(model, config, run_dir, train_ds, val_ds):
    from kerascnn.callbacks import EpochTimer, StopOnNaN

    nan_stop, timer = StopOnNaN(), EpochTimer()
    callbacks = make_callbacks(config, run_dir, nan_stop, timer)
    verbose = 1 if config.log_format == "progress" else 0
    try:
        with warnings.catch_warnings():
            # Length-bucketed text batches have no known count, so Keras
            # learns the epoch length by running out of data: expected.
            warnings.filterwarnings("ignore", "Your input ran out of data")
            fit_history = model.fit(
                train_ds,
                validation_data=val_ds,
                epochs=config.epochs,
                callbacks=callbacks,
                verbose=verbose,
                shuffle=False,
            )
    except KeyboardInterrupt:
        model.save(os.path.join(run_dir, "interrupted.keras"))
        done = _completed_epochs(run_dir)
        raise TrainingError(
            f"Interrupted after {done} complete epoch(s). The backup in "
            f"{os.path.join(run_dir, BACKUP_DIR)} is kept: run the same "
            "command again to resume."
        ) from None
    if nan_stop.where:
        epoch, batch = nan_stop.where
        raise TrainingError(
            f"Training stopped: the loss became NaN/inf at epoch {epoch}, "
            f"batch {batch} (learning rate {config.learning_rate:g}). Lower "
            "--lr or check the data; nothing was exported."
        )
    return _full_history(run_dir, fit_history.history), timer.seconds


def _completed_epochs(run_dir):
    path = os.path.join(run_dir, "history.csv")
    if not os.path.isfile(path):
        return 0
    with open(path) as f:
        rows = [line for line in f.read().splitlines()[1:] if line.strip()]
    epochs = {int(r.split(",")[0]) for r in rows}
    return len(epochs)


def _full_history(run_dir, fallback):
    """Per-epoch history across resumes, read back from history.csv."""
    import csv

    path = os.path.join(run_dir, "history.csv")
    if not os.path.isfile(path):
        return {k: [float(x) for x in v] for k, v in fallback.items()}
    by_epoch = {}
    with open(path) as f:
        for row in csv.DictReader(f):
            by_epoch[int(row["epoch"])] = row
    history = {}
    for epoch in sorted(by_epoch):
        for key, value in by_epoch[epoch].items():
            if key != "epoch":
                history.setdefault(key, []).append(float(value))
    history["epoch"] = [e + 1 for e in sorted(by_epoch)]
    return history


def _metadata(config, info, model):
    import kerascnn

    return ModelMetadata(
        model=config.model,
        task=info.task,
        dataset=config.dataset,
        input_shape=tuple(model.input_shape[1:]),
        class_names=list(info.class_names),
        preprocessing=dict(info.preprocessing or {}),
        vocab=list(info.vocab or []),
        intent_names=list(info.intent_names or []),
        max_length=info.max_length,
        kerascnn_version=kerascnn.__version__,
        extra={"source": info.source, "recipe": config.to_dict()},
    )


def _export(config, run_dir):
    from kerascnn import export

    result = export.export(
        run_dir, base_dir=config.export_dir, data_dir=config.data_dir
    )
    return result.path


# ============================== Evaluate ==============================


def evaluate_model(
    model,
    metadata,
    dataset=None,
    *,
    data_dir=None,
    batch_size=256,
    limit=None,
    split="test",
):
    """Test-set metrics of a model: loss, accuracy, per-class, confusion.

    For the slot tagger: `kerascnn.tagging.evaluate_atis` (conlleval spans
    on the gold tag strings, per-slot F1, token/intent accuracy, exact
    match).
    """
    from kerascnn import data

    dataset = dataset or metadata.dataset
    if not dataset:
        raise KerasCNNError(
            "The model's metadata names no data set; pass --dataset."
        )
    if metadata.task == "sequence_tagging":
        from kerascnn.tagging import evaluate_atis

        return evaluate_atis(
            model, metadata, data_dir=data_dir, split=split, limit=limit
        )
    image_size, channels = _image_args(metadata.input_shape)
    ds, _ = data.load(
        dataset,
        split,
        data_dir=data_dir,
        batch_size=batch_size,
        shuffle=False,
        augment=False,
        limit=limit,
        image_size=image_size,
        channels=channels,
    )
    return _evaluate_images(model, metadata, ds)


def _evaluate_images(model, metadata, ds):
    from kerascnn.metrics import classification_report

    labels, probs = [], []
    for x, y in ds:
        probs.append(np.asarray(model(x, training=False), dtype=np.float32))
        labels.append(np.asarray(y))
    probs = np.concatenate(probs)
    labels = np.concatenate(labels).astype(np.int64)
    eps = 1e-7
    loss = float(
        -np.mean(
            np.log(np.clip(probs[np.arange(len(labels)), labels], eps, 1.0))
        )
    )
    report = classification_report(
        labels, probs.argmax(-1), metadata.class_names
    )
    return {"loss": loss, **report}


def evaluate(
    source,
    dataset=None,
    *,
    data_dir=None,
    batch_size=256,
    limit=None,
    split="test",
):
    """Loads a run directory or `.keras` file and evaluates it."""
    from kerascnn.metadata import load_model_and_metadata

    model, metadata = load_model_and_metadata(source)
    return evaluate_model(
        model,
        metadata,
        dataset,
        data_dir=data_dir,
        batch_size=batch_size,
        limit=limit,
        split=split,
    )
