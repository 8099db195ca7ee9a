"""Training: `fit(config) -> RunResult`, the library entry the CLI calls.

    from kerascnn.config import recipe_for
    from kerascnn.train import fit
    result = fit(recipe_for("lenet", epochs=2, limit=5000))
    result.metrics["accuracy"]

`fit` asks the model's task (`kerascnn.tasks`) for what differs between
kinds of model (loss and metrics, checkpoint monitor, callbacks,
evaluation), loads the data (`kerascnn.training_data`; the task checks the data
set's kind, `DatasetInfo.kind`, against the kind it consumes), builds
and compiles the registry model with the recipe's optimizer
(`kerascnn.optimizers`), trains with epoch-end callbacks, then saves a
float32 `model.keras`, evaluates it on the test split (the task's
`evaluate`, through `kerascnn.tasks.evaluate_model`) and exports it
(`kerascnn.export`, given the task). What a run directory holds, and
how an unfinished one is found: `kerascnn.runs`.

Fault tolerance: the backup is written at every epoch end, so a run killed
at any point (even SIGKILL) loses at most one epoch. Re-running the same
command finds the unfinished run directory (same config, backup present)
and resumes it. Ctrl-C stops cleanly, keeping the backup and writing
`interrupted.keras`.
"""

import contextlib
import dataclasses
import os
import shutil
import warnings

import keras
import tensorflow as tf

import kerascnn
from kerascnn import (
    distribute,
    export,
    fine_tune,
    hardware,
    models,
    small_data,
    tasks,
    visualize,
)
from kerascnn.callbacks import (
    EpochBackupAndRestore,
    EpochCheckpoints,
    EpochProgress,
    EpochTensorBoard,
    EpochTimer,
    JsonLinesLogger,
    StopOnNaN,
)
from kerascnn.config import TrainConfig
from kerascnn.data import progress as data_progress
from kerascnn.data.decode import bad_files_named
from kerascnn.errors import TrainingError
from kerascnn.export import layout
from kerascnn.files import write_json
from kerascnn.fine_tune import FreezeBackbone
from kerascnn.history import HISTORY_CSV, HISTORY_JSON, read_history_csv
from kerascnn.losses import SparseSmoothedCrossentropy
from kerascnn.metadata import MODEL_FILENAME, ModelMetadata
from kerascnn.models import weights as pretrained
from kerascnn.models.weights import head_layer_names
from kerascnn.optimizers import make_optimizer
from kerascnn.precise_bn import PreciseBatchNorm
from kerascnn.runs import (
    BACKUP_DIR,
    CONFIG_FILENAME,
    METRICS_FILENAME,
    check_same_config,
    completed_epochs,
    find_resumable_run,
    resolve_run_dir,
    run_dir_lock,
)
from kerascnn.tasks import evaluate, evaluate_model
from kerascnn.training_data import load_data, skipped_files_callback

# Public names, with those that moved to the modules above and are still
# importable from here.
__all__ = [
    "RunResult",
    "build_model",
    "compile_model",
    "evaluate",
    "evaluate_model",
    "find_resumable_run",
    "fit",
    "float32_copy",
    "load_data",
    "make_callbacks",
    "make_optimizer",
    "resolve_precision",
    "resolve_run_dir",
]


class RunInterrupted(TrainingError):
    """Ctrl-C (SIGINT) stopped a run; its message says what was kept."""


@dataclasses.dataclass
class RunResult:
    """What `fit` produced.

    Attributes:
        run_dir: the run directory.
        config: the resolved `TrainConfig`.
        history: dict metric -> list of per-epoch values.
        metrics: final test metrics (see `kerascnn.evaluation`).
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


# =============================== Model ================================


def build_model(config, info):
    """Builds the registry model sized for the data set."""

    model_task = model_task_of(config)
    check_data_kind(model_task, info, config)
    options = {**model_task.builder_options(info), **config.model_options}
    input_shape = tuple(config.input_shape or info.input_shape)
    return models.build(
        config.model,
        input_shape=input_shape,
        num_classes=info.num_classes,
        **options,
    )


def compile_model(model, config, info, steps_per_epoch):
    """Compiles with the loss and metrics of the task; a run from
    pretrained weights gets `kerascnn.fine_tune`'s schedule."""
    loss, metrics = model_task_of(config).loss_and_metrics(
        lambda: _loss(config)
    )
    schedule = None
    if config.weights is not None:
        schedule = fine_tune.learning_rate(config, steps_per_epoch)
    model.compile(
        optimizer=make_optimizer(config, steps_per_epoch, schedule),
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

    if tf.distribute.get_strategy().num_replicas_in_sync > 1:
        return 1
    return config.steps_per_execution


def _loss(config):

    if config.label_smoothing:
        return SparseSmoothedCrossentropy(config.label_smoothing)
    return keras.losses.SparseCategoricalCrossentropy()


# ============================== Callbacks =============================


def make_callbacks(config, run_dir, nan_stop, timer, metadata=None):
    """The run's epoch-end callbacks, in the order they must run.

    `metadata` (the run's `ModelMetadata`) is what task callbacks score
    with (the tagger's vocabularies); fit always passes it.
    """

    ckpt = os.path.join(run_dir, "checkpoints")
    os.makedirs(ckpt, exist_ok=True)
    task = model_task_of(config)
    monitor = task.checkpoint_monitor
    # Task callbacks (the tagger's dev span F1) write their values into
    # the logs before the checkpoint reads them.
    callbacks = [nan_stop, *task.epoch_callbacks(config, metadata)]
    # Epoch-granular callbacks only, one model serialization per epoch
    # (see kerascnn.callbacks).
    # The backup reuses the weights of the checkpoint saved just before it.
    mode = task.checkpoint_mode
    checkpoints = EpochCheckpoints(
        ckpt, monitor, mode, best=_best_so_far(run_dir, monitor, mode)
    )
    callbacks += [
        checkpoints,
        EpochBackupAndRestore(os.path.join(run_dir, BACKUP_DIR), checkpoints),
        keras.callbacks.CSVLogger(
            os.path.join(run_dir, HISTORY_CSV), append=True
        ),
        EpochTensorBoard(os.path.join(run_dir, "logs"), write_graph=False),
        timer,
    ]
    if config.log_format == "json":
        callbacks.append(JsonLinesLogger())
    elif config.log_format == "progress":
        callbacks.append(EpochProgress(config.epochs))
    if config.skip_bad:
        callbacks.insert(1, skipped_files_callback())  # before the loggers
    return callbacks


def model_task_of(config):
    """The `Task` of the recipe's model (`build_model` checks the data
    set's kind against it)."""

    return tasks.get_task(models.get_model_info(config.model).task)


# Until `DatasetInfo.kind` lands (the data stream of issue 30), the kind
# of a data set that still says its task instead.
def check_data_kind(task, info, config):
    """Raises one line when the data set holds another kind of data than
    the model's task consumes (`Task.consumes` vs `DatasetInfo.kind`),
    naming the tasks that do take it."""
    if task.consumes == info.kind:
        return
    fits = [
        tasks.get_task(name).description
        for name in tasks.task_names()
        if tasks.get_task(name).consumes == info.kind
    ]
    raise TrainingError(
        f"Model {config.model!r} does {task.description} on "
        f"{task.consumes.replace('_', ' ')}, but data set "
        f"{config.dataset!r} holds {info.kind.replace('_', ' ')}"
        + (f" (for {' or '.join(fits)})." if fits else ".")
    )


def _best_so_far(run_dir, monitor, mode):
    """Best `monitor` value in history.csv (a resumed run), else None."""
    values = (read_history_csv(run_dir) or {}).get(monitor)
    if not values:
        return None
    return max(values) if mode == "max" else min(values)


# ================================ Fit =================================


def resolve_precision(config):
    """The config with `mixed_precision="auto"` resolved for this machine.

    The choice (a policy name, or `"none"` for float32) is what the run's
    config.json records, so a resumed run on the same machine matches.
    """

    policy = hardware.resolve_precision(config.mixed_precision)
    return dataclasses.replace(
        config, mixed_precision="none" if policy == "float32" else policy
    )


def _policy_name(config):

    return hardware.resolve_precision(config.mixed_precision)


def _setup(config):

    keras.utils.set_random_seed(config.seed)
    keras.mixed_precision.set_global_policy(_policy_name(config))


def float32_copy(model, config, info):
    """The trained model rebuilt in float32 with the same weights.

    Mixed-precision layers record their policy in the `.keras` file, so the
    final model, the SavedModel and the TFLite files exported from it would
    compute in bf16/float16. Variables are float32 under every mixed
    policy, so the copy is exact.
    """

    if _policy_name(config) == "float32":
        return model
    keras.mixed_precision.set_global_policy("float32")
    copy = build_model(config, info)
    copy.set_weights(model.get_weights())
    return copy


def fit(config, resume=True, on_start=None, on_note=None, on_progress=None):
    """Trains `config.model` on `config.dataset` and writes a run directory.

    Args:
        config: a `TrainConfig` (see `kerascnn.config.recipe_for`).
        resume: continue the newest unfinished run with the same config
            when `config.run_dir` is not set. Defaults to `True`.
        on_start: optional callable `(run_dir, resumed_epoch)` invoked once
            training is about to start (the CLI prints where it writes).
        on_note: optional callable `(text)` told facts the user should
            know before training, e.g. that the held-out validation split
            stands in for a missing test split.
        on_progress: optional callable `(text)` told when a long step
            starts (loading the data and building the model), once the
            settings, the strategy and the run directory have passed
            their checks; then told how far the data steps are
            (listing a folder, decoding it into memory) with
            `kerascnn.data.progress.Step`s, whose `str()` is the line.

    Returns:
        A `RunResult`.

    Raises:
        TrainingError: NaN loss, interruption, or a config that cannot run.
    """
    config, strategy = _prepare(config, resume)
    with run_dir_lock(config.run_dir, distribute.is_chief(strategy)):
        return _fit_prepared(config, strategy, on_start, on_note, on_progress)


def _fit_prepared(config, strategy, on_start, on_note, on_progress):
    """`fit` once the config is checked and the run directory is held."""
    run_dir = config.run_dir
    if on_note and small_data.describe(config):
        on_note(small_data.describe(config))
    if on_progress:
        on_progress(f"Loading {config.dataset} and building {config.model}...")
    task = model_task_of(config)
    with data_progress.reporting(on_progress):
        loaded = task.load_training_data(config, strategy) or load_data(
            config,
            strategy,
            big_batch_validation=task.big_batch_validation,
        )
    train_ds, val_ds, info = loaded
    chief = distribute.is_chief(strategy)
    model, metadata = _build(config, strategy, info, on_note)
    eval_split = _check_finish(config, metadata, on_note)
    new_run = not os.path.exists(run_dir)
    with _removed_if_no_epoch(run_dir, new_run and chief):
        _write_run_start(config, model, metadata, chief)
        resumed = completed_epochs(run_dir)
        if on_start:
            on_start(run_dir, resumed)
        history, seconds = _train(
            model, metadata, config, strategy, train_ds, val_ds
        )
    result = RunResult(
        run_dir=run_dir,
        config=config,
        history=history,
        metrics={},
        model_path=os.path.join(run_dir, MODEL_FILENAME),
        resumed_from_epoch=resumed,
        epoch_seconds=seconds,
    )
    if chief:
        model = float32_copy(model, config, info)
        _finish_run(model, metadata, result, eval_split)
    return result


def _check_finish(config, metadata, on_note):
    """Makes the checks of the steps after training before training.

    Returns the split the final evaluation reads: the test split, or the
    held-out validation split of a data set without one (`on_note` is
    told). Refuses an export that would change what a served model
    means, as `kerascnn export` would after hours of training.
    """
    split, note = model_task_of(config).evaluation_split(config)
    if note and on_note:
        on_note(note)
    if config.export:
        model_dir = os.path.join(
            config.export_dir, config.export_name or config.model
        )
        layout.check_same_meaning(
            model_dir,
            metadata.to_dict(),
            hint="or --no-export, then `kerascnn export RUN --force` to add "
            "it as a new version anyway",
        )
    return split


@contextlib.contextmanager
def _removed_if_no_epoch(run_dir, remove):
    """Removes a new run directory when the run fails before its first
    epoch ends: nothing is left that a resume could use."""
    try:
        yield
    except BaseException as error:
        if not (remove and completed_epochs(run_dir) == 0):
            raise
        shutil.rmtree(run_dir, ignore_errors=True)
        if isinstance(error, RunInterrupted):
            raise RunInterrupted(
                "Interrupted before the first epoch finished: nothing was "
                f"kept ({run_dir} is removed). Run the command again to "
                "start over."
            ) from None
        raise


def _prepare(config, resume):
    """Validated config with its run directory, and the strategy.

    The strategy and the run directory are checked before anything is
    written.
    """
    config = resolve_precision(dataclasses.replace(config).validate())
    _setup(config)
    strategy = distribute.get_strategy(config.strategy)
    if not config.run_dir and distribute.is_multi_worker(strategy):
        config = dataclasses.replace(
            config, run_dir=distribute.shared_run_dir(config)
        )
    run_dir = resolve_run_dir(config, resume=resume)
    config = dataclasses.replace(config, run_dir=run_dir)
    check_same_config(run_dir, config)
    return config, strategy


def _build(config, strategy, info, on_note=None):
    """Builds and compiles the model before anything is written, so a bad
    builder option, input shape or weights file leaves no run directory.
    Pretrained `config.weights` are loaded here (`on_note` is told what
    loaded) and the backbone frozen for the head-only epochs."""
    steps_per_epoch = -(-info.num_examples // config.batch_size)
    with strategy.scope():
        model = build_model(config, info)
        if config.weights is not None:
            _load_pretrained(model, config, on_note)
        compile_model(model, config, info, steps_per_epoch)
        if config.weights is not None:
            fine_tune.prepare(model, head_layer_names(model))
    distribute.prepare_model(model, strategy)
    return model, _metadata(config, info, model)


def _load_pretrained(model, config, on_note):

    name = models.get_model_info(config.model).name
    report = pretrained.load_weights(model, config.weights, name=name)
    if on_note:
        on_note(
            f"{report.describe()}; {config.freeze_epochs} head-only "
            "epoch(s), then all layers but batch norm at "
            f"{config.learning_rate * 0.1:g}"
        )


def _write_run_start(config, model, metadata, chief):
    """The chief writes the run's config, metadata and initial filters."""
    if not chief:
        return
    run_dir = config.run_dir
    os.makedirs(run_dir, exist_ok=True)
    write_json(os.path.join(run_dir, CONFIG_FILENAME), config.to_dict())
    metadata.save(os.path.join(run_dir, "metadata.json"))
    visualize.save_initial_filters(model, run_dir)


def _train(model, metadata, config, strategy, train_ds, val_ds):
    """`_run_fit` in this worker's folder (non-chief: a temporary one)."""
    run_dir = config.run_dir
    try:
        with distribute.worker_folder(run_dir, strategy, BACKUP_DIR) as where:
            return _run_fit(
                model, metadata, config, where, train_ds, val_ds,
                replicas=strategy.num_replicas_in_sync,
            )  # fmt: skip
    except distribute.peer_errors() as e:
        if not distribute.is_multi_worker(strategy):
            raise
        raise distribute.peer_lost(e, run_dir) from None


def _finish_run(model, metadata, result, eval_split="test"):
    """Chief only: saves the model, history, curves, test metrics, export.

    Fills `result.metrics` and `result.export_path`.
    """
    config, run_dir = result.config, result.run_dir
    model.save(result.model_path)
    write_json(os.path.join(run_dir, HISTORY_JSON), result.history)
    visualize.save_run_curves(run_dir)

    with bad_files_named():  # a bad file in a streamed test split
        result.metrics = evaluate_model(
            model,
            metadata,
            config.dataset,
            data_dir=config.data_dir,
            batch_size=config.batch_size,
            limit=config.eval_limit,
            split=eval_split,
            validation_split=config.validation_split,
            skip_bad=config.skip_bad,
        )
    result.metrics["epoch_seconds"] = result.epoch_seconds
    write_json(os.path.join(run_dir, METRICS_FILENAME), result.metrics)
    if config.export:
        result.export_path = _export(config, run_dir, model_task_of(config))


def _run_fit(model, metadata, config, run_dir, train_ds, val_ds, replicas=1):

    nan_stop, timer = StopOnNaN(), EpochTimer()
    callbacks = _schedule_callbacks(config, train_ds, replicas)
    callbacks += make_callbacks(config, run_dir, nan_stop, timer, metadata)
    try:
        with warnings.catch_warnings(), bad_files_named():
            # Length-bucketed text batches have no known count, so Keras
            # learns the epoch length by running out of data: expected.
            warnings.filterwarnings("ignore", "Your input ran out of data")
            fit_history = model.fit(
                train_ds,
                validation_data=val_ds,
                epochs=config.epochs,
                callbacks=callbacks,
                verbose=0,  # EpochProgress draws progress
                shuffle=False,
            )
    except KeyboardInterrupt:
        model.save(os.path.join(run_dir, "interrupted.keras"))
        done = completed_epochs(run_dir)
        raise RunInterrupted(
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
    history = read_history_csv(run_dir) or _floats(fit_history.history)
    return history, timer.seconds


def _schedule_callbacks(config, train_ds, replicas):
    """Callbacks that change the model before anything reads it at an
    epoch's end: the fine-tuning phases and precise BN statistics (one
    replica: the recomputation reads local batches)."""
    callbacks = []
    if config.weights is not None:
        callbacks.append(FreezeBackbone(config.freeze_epochs))
    if config.precise_bn_batches and replicas == 1:
        callbacks.append(PreciseBatchNorm(train_ds, config.precise_bn_batches))
    return callbacks


def _floats(history):
    """Keras' `History.history` as plain floats (JSON-able)."""
    return {key: [float(x) for x in values] for key, values in history.items()}


def _metadata(config, info, model):

    return ModelMetadata(
        model=config.model,
        task=model_task_of(config).name,
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


def _export(config, run_dir, task):

    result = export.export(
        run_dir,
        task=task,
        base_dir=config.export_dir,
        name=config.export_name,
        data_dir=config.data_dir,
        skip_bad=bool(config.skip_bad),
    )
    return result.path
