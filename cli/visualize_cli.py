"""`kerascnn visualize SOURCE WHAT`: pictures of a run or a model.

SOURCE (a run directory or `.keras` file) comes first, then the picture:
`filters`, `feature-maps IMAGE`, `curves`, `confusion`, `tags SENTENCE`.
matplotlib and TensorFlow are imported only when a command draws (the
library modules are `LazyModule`s).
"""

import click

from cli.common import POSITIVE_INT, quiet_tensorflow, user_errors
from kerascnn.lazy import LazyModule

# matplotlib and TensorFlow come with these: loaded on first use, after
# the command called `quiet_tensorflow()`.
predict = LazyModule("kerascnn.predict")
visualize = LazyModule("kerascnn.visualize")


@click.group(
    "visualize",
    short_help="Draw filters, feature maps, curves, confusion, tags.",
)
@click.argument("source", type=click.Path(exists=True))
@click.pass_context
def visualize_group(ctx, source):
    """Draw a picture of SOURCE (run directory or .keras file) as a PNG.

    \b
    kerascnn visualize runs/<run> filters --compare-init
    kerascnn visualize runs/<run> feature-maps digit.png
    kerascnn visualize runs/<run> curves --compare runs/<other>
    kerascnn visualize runs/<run> confusion
    kerascnn visualize runs/<tagger> tags "flights from boston to denver"

    For a run the PNG goes into the run directory (and its TensorBoard
    logs, under logs/pictures) unless --out says otherwise.
    """
    ctx.obj = source


def _out_option():
    return click.option(
        "--out",
        "-o",
        type=click.Path(dir_okay=False),
        help="Output file (default: <run>/<picture>.png, or ./ for a "
        ".keras file).",
    )


def _done(path):
    click.echo(f"Wrote {path}")


@visualize_group.command("filters", short_help="First conv layer's kernels.")
@_out_option()
@click.option(
    "--compare-init",
    is_flag=True,
    help="Show the initial kernels (saved by fit) beside the trained ones.",
)
@click.pass_obj
def filters_command(source, out, compare_init):
    """Draw the first convolution layer's kernels as a grid."""
    quiet_tensorflow()
    with user_errors():
        _done(visualize.draw_filters(source, out, compare_init=compare_init))


@visualize_group.command("feature-maps", short_help="Activations for IMAGE.")
@click.argument("image", type=click.Path())
@_out_option()
@click.option(
    "--layers",
    "-l",
    metavar="NAME,...",
    help="Layers to show (default: each conv and pool block).",
)
@click.pass_obj
def feature_maps_command(source, image, out, layers):
    """Draw the feature maps of chosen layers for one IMAGE file."""
    quiet_tensorflow()
    names = (
        [n.strip() for n in layers.split(",") if n.strip()] if layers else None
    )
    with user_errors():
        _done(visualize.draw_feature_maps(source, image, out, layers=names))


@visualize_group.command("curves", short_help="Loss and accuracy per epoch.")
@click.argument("more_runs", nargs=-1, type=click.Path(exists=True))
@_out_option()
@click.option(
    "--compare",
    "-c",
    multiple=True,
    type=click.Path(exists=True),
    metavar="RUN",
    help="Overlay another run (repeatable; more runs may follow as arguments).",
)
@click.pass_obj
def curves_command(source, more_runs, out, compare):
    """Draw training and validation curves of the run (and others).

    \b
    kerascnn visualize runs/a curves --compare runs/b runs/c
    """
    quiet_tensorflow()
    with user_errors():
        runs = [*compare, *more_runs]
        _done(visualize.draw_curves(source, out, compare=runs))


@visualize_group.command("confusion", short_help="Test confusion matrix.")
@_out_option()
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False),
    help="Data folder when the test split must be evaluated.",
)
@click.option(
    "--limit",
    type=POSITIVE_INT,
    help="Evaluate only N test examples (re-evaluates).",
)
@click.option("--dataset", "-d", help="Data set (default: the training one).")
@click.pass_obj
def confusion_command(source, out, dataset, data_dir, limit):
    """Draw the test-set confusion matrix with per-class accuracy.

    A finished run's metrics.json already holds it; a .keras file is
    evaluated on its data set's test split.
    """
    quiet_tensorflow()
    with user_errors():
        _done(
            visualize.draw_confusion(
                source, out, dataset=dataset, data_dir=data_dir, limit=limit
            )
        )


@visualize_group.command("tags", short_help="Slot tagger: tagged sentence.")
@click.argument("sentence")
@_out_option()
@click.option(
    "--html",
    "as_html",
    is_flag=True,
    help="Write an HTML page instead of a PNG.",
)
@click.pass_obj
def tags_command(source, sentence, out, as_html):
    """Draw SENTENCE with each slot the tagger finds coloured and labelled,
    and the predicted intent."""
    quiet_tensorflow()
    with user_errors():
        _done(visualize.draw_tags(source, sentence, out, as_html=as_html))


@visualize_group.command(
    "explain", short_help="Why this class: heat maps (tagger: tokens)."
)
@click.argument("inputs", nargs=-1, required=True, metavar="IMAGE...")
@click.option(
    "--method",
    "-m",
    type=click.Choice(
        ["gradcam", "gradcam++", "integrated-gradients", "smoothgrad"]
    ),
    default=None,
    help="Attribution method (default: gradcam for images; the tagger "
    "always uses integrated-gradients over its embeddings).",
)
@click.option(
    "--class",
    "class_name",
    metavar="NAME",
    help="Class to explain (default: each image's prediction; the tagger: "
    "an intent name).",
)
@click.option(
    "--layer",
    "-l",
    metavar="NAME",
    help="Grad-CAM layer, a name or outer/inner path for a nested base "
    "(default: the last spatial feature map).",
)
@click.option(
    "--slot",
    metavar="NAME",
    help="Tagger only: also attribute the tokens tagged with this slot.",
)
@_out_option()
@click.pass_obj
def explain_command(source, inputs, method, class_name, layer, slot, out):
    """Draw why the model chose each class for IMAGE files: the image, the
    heat map over it and the top classes, one PNG per image (and a grid
    with all of them). For the slot tagger the argument is a sentence,
    drawn with per-token attributions for the intent (and --slot).

    \b
    kerascnn visualize runs/<run> explain digit.png --method gradcam++
    kerascnn visualize saved_models/lenet explain a.png b.png -m smoothgrad
    kerascnn visualize runs/<tagger> explain "flights to denver" \\
        --slot toloc.city_name

    A SavedModel is explained through its serving signature's gradients:
    integrated-gradients and smoothgrad only.
    """
    quiet_tensorflow()
    with user_errors():
        if _is_tagger(source):
            if method not in (None, "integrated-gradients") or layer:
                raise click.UsageError(
                    "The tagger is explained by integrated gradients over "
                    "its embeddings; --method and --layer do not apply."
                )
            paths = [
                visualize.draw_token_attributions(
                    source, " ".join(inputs), intent=class_name, slot=slot,
                    out=out,
                )
            ]  # fmt: skip
        else:
            if slot:
                raise click.UsageError("--slot applies to the slot tagger.")
            paths = visualize.draw_explain(
                source, inputs, method or "gradcam", class_name, layer, out
            )
        for path in paths:
            _done(path)


def _is_tagger(source):
    return predict.is_text_source(source)
