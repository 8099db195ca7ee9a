"""`kerascnn fit`, `evaluate`, `predict`: thin wrappers over
`kerascnn.train`, `kerascnn.tasks.evaluate` and `kerascnn.predict`."""

import json

import click

from cli.common import (
    INT_TUPLE,
    NON_NEGATIVE_INT,
    NON_NEGATIVE_NUMBER,
    POSITIVE_INT,
    POSITIVE_NUMBER,
    RATE,
    VALIDATION_SPLIT,
    VALIDATION_SPLIT_HELP,
    ProgressBar,
    ProgressLines,
    builder_options,
    check_builder_options,
    parse_options,
    quiet_tensorflow,
    skip_bad_option,
    user_errors,
)
from cli.model_table import RECIPE_HELP, unknown_model_message
from kerascnn.config import (
    OPTIMIZERS,
    PRECISIONS,
    RECIPE_NAMES,
    SCHEDULES,
    recipe_for,
)
from kerascnn.lazy import LazyModule

# TensorFlow comes with these: loaded on first use, after the command
# called `quiet_tensorflow()`, so that `--help` stays instant.
tasks = LazyModule("kerascnn.tasks")
predict = LazyModule("kerascnn.predict")
train = LazyModule("kerascnn.train")


@click.command("fit", short_help="Train a model with its default recipe.")
@click.argument("model")
@click.option(
    "--recipe",
    type=click.Choice(RECIPE_NAMES),
    help="fast (default): " + RECIPE_HELP + " paper: the paper's recipe "
    "(lenet: the earlier 10-epoch Adam default; resnet20-110: He et al.'s "
    "164 epochs).",
)
@click.option(
    "--dataset",
    "-d",
    help="Data set name, image folder or .npz. "
    "Default: the recipe's (lenet: mnist, resnet20: cifar10).",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False),
    help="Local data folder (default $KERASCNN_DATA_DIR, then TFDS).",
)
@click.option(
    "--epochs", "-e", type=POSITIVE_INT, help="Epochs (default: recipe)."
)
@click.option(
    "--batch-size",
    "-b",
    type=POSITIVE_INT,
    help="Global batch size, split across replicas.",
)
@click.option(
    "--lr", "learning_rate", type=POSITIVE_NUMBER, help="Peak learning rate."
)
@click.option(
    "--optimizer",
    type=click.Choice(OPTIMIZERS),
    help="Optimizer (default: recipe).",
)
@click.option(
    "--schedule",
    type=click.Choice(SCHEDULES),
    help="Learning-rate schedule (default: recipe); one_cycle: a linear "
    "rise over --warmup-epochs, then a linear fall to ~0.",
)
@click.option(
    "--warmup-epochs",
    type=NON_NEGATIVE_INT,
    help="Learning-rate warm-up epochs (default: recipe).",
)
@click.option(
    "--nesterov/--no-nesterov",
    default=None,
    help="Nesterov momentum (SGD; default: recipe).",
)
@click.option(
    "--ema-momentum",
    type=RATE,
    help="Average the weights (exponential moving average with this "
    "momentum, e.g. 0.999) and save, test and export the average; 0: off.",
)
@click.option(
    "--weight-decay",
    type=NON_NEGATIVE_NUMBER,
    help="The papers' L2 coefficient, e.g. 1e-4 (SGD: added to the gradient "
    "before momentum). 0: off.",
)
@click.option("--label-smoothing", type=RATE, help="Label smoothing.")
@click.option(
    "--augment/--no-augment",
    default=None,
    help="Training augmentation: the recipe's (lenet: affine digits), "
    "else the data set's (cifar10: pad-crop-flip).",
)
@click.option("--seed", type=NON_NEGATIVE_INT, help="Random seed (default 0).")
@click.option(
    "--limit", type=POSITIVE_INT, help="Use only N training examples."
)
@click.option(
    "--eval-limit", type=POSITIVE_INT, help="Use only N test examples."
)
@click.option(
    "--validation-split", type=VALIDATION_SPLIT, help=VALIDATION_SPLIT_HELP
)
@click.option(
    "--input-shape",
    "-i",
    type=INT_TUPLE,
    help="Model input H,W,C (images are resized/converted).",
)
@builder_options("batch_norm=True")
@click.option(
    "--mixed-precision",
    type=click.Choice(PRECISIONS),
    help="auto (default): bf16 on CPUs with native bf16 (AVX512_BF16, "
    "AMX), float16 on GPUs with tensor cores, else float32; none: float32.",
)
@click.option(
    "--jit-compile/--no-jit-compile",
    default=None,
    help="Compile the train step with XLA (default off: slower on CPU).",
)
@click.option(
    "--steps-per-execution",
    type=POSITIVE_INT,
    help="Train steps per tf.function call.",
)
@click.option(
    "--strategy",
    type=click.Choice(
        ["auto", "default", "one_device", "mirrored", "multi_worker"]
    ),
    help="tf.distribute strategy (default auto).",
)
@click.option(
    "--run-dir",
    type=click.Path(file_okay=False),
    help="Output folder (default runs/<model>-<timestamp>).",
)
@click.option(
    "--resume/--no-resume",
    default=True,
    show_default=True,
    help="Continue the newest unfinished run with the same settings.",
)
@click.option(
    "--export/--no-export",
    default=None,
    help="Export a SavedModel to saved_models/ at the end.",
)
@click.option(
    "--export-dir",
    type=click.Path(file_okay=False),
    help="Export root (default saved_models).",
)
@click.option(
    "--export-name",
    help="Export as <export-dir>/NAME/ (default: the model name); a "
    "folder whose versions have other classes or inputs is refused.",
)
@click.option(
    "--cache",
    metavar="auto|memory|disk|none|disk:DIR",
    help="Image folders and shards: memory (decode once), none (stream), "
    "disk (stream, cached under the run dir or DIR). Default auto: memory "
    "if the decoded set fits $KERASCNN_MEMORY_BUDGET (2G).",
)
@skip_bad_option(default=None, what="skip them and count them per epoch")
@click.option(
    "--data-service",
    metavar="grpc://HOST:PORT",
    help="tf.data service dispatcher whose workers decode and augment the "
    "training data (docs/data.md).",
)
@click.option(
    "--weights",
    metavar="imagenet|FILE|RUN_DIR",
    help="Start from pretrained weights: imagenet (resnet50/101/152, "
    "vgg16/19), a .h5, .weights.h5 or .keras file, or a kerascnn run; a "
    "head of other classes is new. Fine-tunes: head only, then all layers.",
)
@click.option(
    "--freeze-epochs",
    type=NON_NEGATIVE_INT,
    help="With --weights: epochs that train the head alone (default: a "
    "third of the epochs).",
)
@click.option(
    "--precise-bn-batches",
    type=NON_NEGATIVE_INT,
    help="Training batches the batch-norm statistics are recomputed over "
    "before the last validation (default 100; 0: off).",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.option(
    "--log-format",
    type=click.Choice(["progress", "json"]),
    default="progress",
    help="json: one JSON line per epoch.",
)
def fit_command(model, options, quiet, resume, **settings):
    """Train MODEL with its recipe; flags override the recipe.

    \b
    kerascnn fit lenet                      # MNIST, 99.3% in 10 epochs
    kerascnn fit resnet20 --epochs 5 --limit 10000
    kerascnn fit slot_tagger                # ATIS slot filling + intent
    kerascnn fit resnet50 --weights imagenet -d photos   # fine-tune

    Writes runs/<model>-<timestamp>/ (config, history, checkpoints,
    TensorBoard logs, metrics) and exports a SavedModel. Kill it and run the
    same command again to resume from the last finished epoch.
    """
    settings["log_format"] = "quiet" if quiet else settings["log_format"]
    options = parse_options(options)
    unknown = unknown_model_message(model)
    if unknown:  # said before TensorFlow loads (seconds)
        raise click.ClickException(unknown)
    quiet_tensorflow()
    with user_errors(), ProgressLines(steps=not quiet) as progress:
        check_builder_options(model, options)
        if options:
            settings["model_options"] = options
        with progress.data_steps():  # the small-data recipe lists a folder
            config = recipe_for(model, **settings)
        result = train.fit(
            config,
            resume=resume,
            on_start=_announce(config),
            on_note=_note,
            on_progress=progress,
        )
    _print_result(result, settings["log_format"])


def _note(text):
    click.echo(f"note: {text}", err=True)


def _announce(config):
    def on_start(run_dir, resumed):
        verb = (
            f"Resuming {run_dir} after epoch {resumed}"
            if resumed
            else (f"Training {config.model} on {config.dataset} -> {run_dir}")
        )
        click.echo(verb, err=True)

    return on_start


def _print_result(result, log_format):
    metrics = _scalars(result.metrics)
    if log_format == "json":
        click.echo(
            json.dumps(
                {
                    "run_dir": result.run_dir,
                    "test": metrics,
                    "export": result.export_path,
                }
            )
        )
        return
    click.echo(f"Run directory: {result.run_dir}")
    split = metrics.pop("split", "test")
    metrics.pop("note", None)
    for key, value in metrics.items():
        shown = f"{value:.4f}" if isinstance(value, float) else value
        click.echo(f"  {split} {key}: {shown}")
    if result.export_path:
        click.echo(f"SavedModel: {result.export_path}")


def _scalars(metrics):
    return {k: v for k, v in metrics.items() if not isinstance(v, (list, dict))}


@click.command(
    "evaluate", short_help="Loss, accuracy and confusion of a run on a split."
)
@click.argument("source", type=click.Path(exists=True))
@click.option("--dataset", "-d", help="Data set (default: the training one).")
@click.option("--data-dir", type=click.Path(file_okay=False))
@click.option(
    "--split",
    type=click.Choice(["test", "validation", "train"]),
    default="test",
    show_default=True,
    help="Split to score; a data set without a test split is scored on "
    "its held-out validation split (with a note).",
)
@click.option(
    "--validation-split",
    type=VALIDATION_SPLIT,
    help="As in fit (default: the run's).",
)
@click.option("--limit", type=POSITIVE_INT, help="Evaluate only N examples.")
@skip_bad_option(what="leave them out of the scores")
@click.option(
    "--batch-size", "-b", type=POSITIVE_INT, default=256, show_default=True
)
@click.option(
    "--tta",
    is_flag=True,
    help="Also score test-time augmentation (the mean of each image's and "
    "its mirror image's predictions), reported separately as tta_accuracy.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="All metrics as one JSON line."
)
def evaluate_command(source, as_json, **settings):
    """Evaluate SOURCE (run directory or .keras) on a split: loss,
    accuracy, per-class accuracy and the confusion matrix."""
    quiet_tensorflow()
    with user_errors(), ProgressBar("Evaluating") as progress:
        metrics = tasks.evaluate(
            source,
            settings.pop("dataset"),
            progress=None if as_json else progress,
            **settings,
        )
    if metrics.get("note"):
        click.echo(f"note: {metrics['note']}", err=True)
    if as_json:
        click.echo(json.dumps(metrics))
        return
    click.echo(format_metrics_table(metrics))


def format_metrics_table(metrics):
    """A short table: headline numbers, then per-class accuracy."""
    lines = []
    for key, value in _scalars(metrics).items():
        if key == "note":
            continue
        shown = f"{value:.4f}" if isinstance(value, float) else value
        lines.append(f"{key:<16}{shown}")
    per_class = metrics.get("per_class_accuracy")
    if per_class:
        width = max(len(str(name)) for name in per_class) + 2
        lines.append("")
        lines.append(f"{'class':<{width}}accuracy")
        for name, accuracy in per_class.items():
            shown = "-" if accuracy is None else f"{accuracy:.4f}"
            lines.append(f"{name:<{width}}{shown}")
    return "\n".join(lines)


@click.command("predict", short_help="Classify images or tag raw text.")
@click.argument("source", type=click.Path(exists=True))
@click.argument("inputs", nargs=-1)
@click.option(
    "--top-k",
    "-k",
    type=POSITIVE_INT,
    default=3,
    show_default=True,
    help="Classes to show per image.",
)
@click.option(
    "--recursive",
    "-r",
    is_flag=True,
    help="Classify images in sub-folders of folder INPUTS too.",
)
@click.option(
    "--max-words",
    type=POSITIVE_INT,
    default=200,
    show_default=True,
    help="Tagger: longer utterances are truncated (with a warning).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object a line.")
def predict_command(source, inputs, top_k, recursive, max_words, as_json):
    """Classify images, or tag utterances with a slot tagger.

    \b
    kerascnn predict runs/lenet-... digit.png photos/ 'shots/*.jpg'
    kerascnn predict saved_models/resnet20/3 cat.jpg
    kerascnn predict saved_models/lenet/lenet.tflite digit.png --json
    kerascnn predict runs/slot_tagger-... "flights from boston to denver"
    cat utterances.txt | kerascnn predict runs/slot_tagger-... --json

    SOURCE is anything kerascnn wrote: a run directory, a .keras file, a
    SavedModel (a version folder, or a model folder: its newest version)
    or a .tflite file. Image INPUTS are files, folders (--recursive for
    sub-folders) and glob patterns; a file that cannot be read is
    reported on its line, the others are still answered, and the exit
    code is 1. Tagger INPUTS are utterances (none or "-": one a line from
    stdin). --json prints one object a line.
    """
    quiet_tensorflow()
    with user_errors():
        text_source = predict.is_text_source(source)
    if text_source:
        _predict_text(source, inputs, max_words, as_json)
        return
    if not inputs:
        raise click.UsageError("Pass one or more image files to classify.")
    with user_errors():
        results = predict.predict_files(
            source, inputs, top_k=top_k, recursive=recursive
        )
    for item in results:
        click.echo(json.dumps(item) if as_json else _format_prediction(item))
    failed = sum(1 for item in results if "error" in item)
    if failed:
        raise click.ClickException(
            f"{failed} of {len(results)} inputs could not be classified."
        )


def _format_prediction(item):
    if "error" in item:
        return f"{item['file']}: error: {item['error']}"
    ranked = ", ".join(
        f"{p['class_name']} {p['probability']:.3f}" for p in item["top_k"]
    )
    note = f" ({item['note']})" if item.get("note") else ""
    return f"{item['file']}: {ranked}{note}"


def _predict_text(source, inputs, max_words, as_json):
    utterances = list(inputs)
    if not utterances or utterances == ["-"]:
        utterances = click.get_text_stream("stdin").read().splitlines()
    if not utterances:
        raise click.UsageError("No utterances: pass text or pipe lines in.")
    with user_errors():
        results = predict.tag_utterances(
            source, utterances, max_words=max_words
        )
    for result in results:
        if result.get("warning"):
            click.echo(f"warning: {result['warning']}", err=True)
        if as_json:
            click.echo(json.dumps(result))
        else:
            shown = {k: v for k, v in result.items() if k != "warning"}
            click.echo(predict.format_tagged(shown))
