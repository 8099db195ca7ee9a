"""`kerascnn` command line: models, summary, data, fit, evaluate, export.

Each command parses options, calls one library function and prints. Any
`KerasCNNError` becomes one line on stderr and a non-zero exit; TensorFlow
is imported only inside the commands that need it, so `--help` is instant.
"""

import click

from cli.common import (
    INT_TUPLE,
    builder_options,
    format_shape,
    parse_options,
    quiet_tensorflow,
    user_errors,
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="kerascnn", prog_name="kerascnn")
def cli():
    """Train classic CNNs and an LSTM slot tagger with Keras, then ship them.

    \b
    Start with:
      kerascnn models              the model zoo
      kerascnn summary resnet20    layers, parameters and FLOPs
      kerascnn fit lenet           train LeNet-5 on MNIST
      kerascnn export runs/<run> --tflite --quantize int8
    """
    quiet_tensorflow()


@cli.command("models", short_help="List the model zoo.")
@click.argument("pattern", default="*")
def models_command(pattern):
    """List registered models matching PATTERN (a wildcard, default all).

    Shows each model's family, default input, parameter count at that
    input and the reference paper.
    """
    from kerascnn import models

    names = models.list_models(pattern)
    if not names:
        raise click.ClickException(f"No model matches {pattern!r}.")
    rows = [_model_row(models.get_model_info(n)) for n in names]
    header = ("name", "family", "default input", "parameters", "reference")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(4)]
    for row in [header, *rows]:
        cells = [f"{str(c):<{w}}" for c, w in zip(row[:4], widths)]
        click.echo("  ".join(cells) + "  " + _short_ref(row[4]))


def _model_row(info):
    from kerascnn.models import registry

    count = _parameter_count(info, registry)
    shape = format_shape(info.default_input_shape)
    return (info.name, info.family, shape, f"{count:,}", info.reference)


def _parameter_count(info, registry):
    # Building VGG allocates ~0.5 GB, so the registry records the count.
    if info.num_params is not None:
        return info.num_params
    import keras

    model = registry.build(info.name)
    count = model.count_params()
    del model
    keras.backend.clear_session()
    return count


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
    type=click.IntRange(min=1),
    default=None,
    help="Output classes. Default: the model's.",
)
@builder_options("variant=classic")
def summary_command(name, input_shape, num_classes, options):
    """Print NAME's layers, output shapes, parameters and forward FLOPs."""
    from kerascnn import models, summary

    with user_errors():
        model = models.build(
            name,
            input_shape=input_shape,
            num_classes=num_classes,
            **parse_options(options),
        )
        click.echo(f"Model: {model.name}")
        click.echo(summary.format_summary(summary.summarize(model)))


def _add_commands():
    from cli.data_cli import data_group
    from cli.export_cli import export_command, inspect_command
    from cli.serve_cli import serve_command
    from cli.train_cli import evaluate_command, fit_command, predict_command
    from cli.visualize_cli import visualize_group

    for command in (
        data_group,
        fit_command,
        evaluate_command,
        predict_command,
        export_command,
        inspect_command,
        serve_command,
        visualize_group,
    ):
        cli.add_command(command)


_add_commands()


def main():
    """Console-script entry point."""
    cli(prog_name="kerascnn")


if __name__ == "__main__":
    main()
