"""`kerascnn` command line: models, summary, data, fit, evaluate, export.

Each command parses options, calls one library function and prints. Any
`KerasCNNError` becomes one line on stderr and a non-zero exit; TensorFlow
is imported only inside the commands that need it, so `--help` is instant.
"""

import fnmatch
import os

import click

from cli.common import (
    INT_TUPLE,
    POSITIVE_INT,
    VERBOSE_ENV,
    OneLineErrorGroup,
    builder_options,
    check_builder_options,
    parse_options,
    print_notices,
    quiet_tensorflow,
    user_errors,
)
from cli.data_cli import data_group
from cli.export_cli import export_command, inspect_command
from cli.model_table import MODEL_TABLE, RECIPE_RESULTS
from cli.serve_cli import serve_command
from cli.train_cli import evaluate_command, fit_command, predict_command
from cli.visualize_cli import visualize_group
from kerascnn.lazy import LazyModule

# TensorFlow comes with these: loaded on first use, after the command
# called `quiet_tensorflow()`, so that `--help` stays instant.
models = LazyModule("kerascnn.models")
summary = LazyModule("kerascnn.summary")


@click.group(
    cls=OneLineErrorGroup,
    context_settings={
        "help_option_names": ["-h", "--help"],
        "max_content_width": 100,
    },
)
@click.version_option(package_name="kerascnn", prog_name="kerascnn")
@click.option(
    "--verbose",
    is_flag=True,
    help="Show TensorFlow's, LiteRT's and gRPC's own log lines.",
)
def cli(verbose):
    """Train classic CNNs and an LSTM slot tagger with Keras, then ship them.

    \b
    Start with:
      kerascnn models                    the model zoo
      kerascnn summary resnet20          layers, parameters and FLOPs
      kerascnn fit lenet                 train LeNet-5 on MNIST
      kerascnn fit lenet -d ./photos     train on <folder>/<class>/*.jpg
      kerascnn predict runs/<run> a.png  classify your own images
      kerascnn export runs/<run> --tflite --quantize int8
      kerascnn serve                     TF Serving REST + gRPC, try-it page
    """
    if verbose:
        os.environ[VERBOSE_ENV] = "1"
    print_notices()


@cli.command("models", short_help="List the model zoo.")
@click.argument("pattern", default="*")
def models_command(pattern):
    """List registered models matching PATTERN (a wildcard, default all).

    Shows each model's family, default input, parameter count at that
    input and the reference paper, then what the default training
    recipes reached.
    """
    rows = [
        (name, family, shape, f"{count:,}", reference)
        for name, family, shape, count, reference in MODEL_TABLE
        if fnmatch.fnmatch(name, pattern)
    ]
    if not rows:
        raise click.ClickException(f"No model matches {pattern!r}.")
    header = ("name", "family", "default input", "parameters", "reference")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(4)]
    for row in [header, *rows]:
        cells = [f"{str(c):<{w}}" for c, w in zip(row[:4], widths)]
        click.echo("  ".join(cells) + "  " + _short_ref(row[4]))
    names = {row[0] for row in rows}
    results = [r for r in RECIPE_RESULTS if r[0] in names]
    if results:
        click.echo(
            "\nDefault recipes (`kerascnn fit MODEL`; --recipe paper: the "
            "paper's):"
        )
        for model, data, result, command in results:
            click.echo(f"  {model} on {data}: {result}  [{command}]")


def _short_ref(reference):
    return reference.split(",")[0] if reference.count("(") else reference


@cli.command("summary", short_help="Per-layer table, parameters and FLOPs.")
@click.argument("name")
@click.option(
    "--input-shape",
    "-i",
    type=INT_TUPLE,
    default=None,
    help="Input shape without batch, e.g. 32,32,3. Default: the model's.",
)
@click.option(
    "--num-classes",
    "-n",
    type=POSITIVE_INT,
    default=None,
    help="Output classes. Default: the model's.",
)
@builder_options("variant=classic")
def summary_command(name, input_shape, num_classes, options):
    """Print NAME's layers, output shapes, parameters and forward FLOPs."""
    options = parse_options(options)
    quiet_tensorflow()
    with user_errors():
        check_builder_options(name, options)
        model = models.build(
            name, input_shape=input_shape, num_classes=num_classes, **options
        )
        click.echo(f"Model: {model.name}")
        click.echo(summary.format_summary(summary.summarize(model)))


for _command in (
    data_group,
    fit_command,
    evaluate_command,
    predict_command,
    export_command,
    inspect_command,
    serve_command,
    visualize_group,
):
    cli.add_command(_command)


def main():
    """Console-script entry point."""
    cli(prog_name="kerascnn")


if __name__ == "__main__":
    main()
