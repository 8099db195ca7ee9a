"""The test-set confusion matrix with class names and per-class accuracy.

A finished run already has it: `fit` evaluates on the test split and
stores `confusion_matrix`, `class_names` and `per_class_accuracy` in
`metrics.json`. Other sources (a `.keras` file, a run without metrics) are
evaluated with `kerascnn.tasks.evaluate_model`, the same code.
"""

import json
import os

import numpy as np

from kerascnn.evaluation import recorded_validation_split
from kerascnn.metadata import ModelMetadata, resolve_model_path
from kerascnn.tasks import evaluate_model, load_model_and_metadata
from kerascnn.visualize import _figure
from kerascnn.visualize.curves import trained_epochs

CELL_PX = 46
MIN_CELL_PX = 12
MAX_MATRIX_PX = 900
MARGIN_LEFT_PX = 120
MARGIN_RIGHT_PX = 90  # the per-class accuracy column
MARGIN_TOP_PX = 70
MARGIN_BOTTOM_PX = 90
ANNOTATE_UP_TO = 20  # classes; above this the counts would not fit


_CONFUSION_ONLY = "confusion draws an image classifier's confusion matrix"


def stored_report(source):
    """The classification report in a run's `metrics.json`, or `None`."""
    path = os.path.join(os.fspath(source), "metrics.json")
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        metrics = json.load(f)
    keys = ("confusion_matrix", "class_names", "per_class_accuracy")
    return metrics if all(k in metrics for k in keys) else None


def confusion_figure(report, title):
    """Rows: true classes, columns: predictions; colour = row fraction."""
    from matplotlib.colors import PowerNorm

    matrix = np.asarray(report["confusion_matrix"], np.int64)
    names = [str(n) for n in report["class_names"]]
    n = len(names)
    cell = max(MIN_CELL_PX, min(CELL_PX, MAX_MATRIX_PX // max(n, 1)))
    size = cell * n
    width = MARGIN_LEFT_PX + size + MARGIN_RIGHT_PX
    height = MARGIN_TOP_PX + size + MARGIN_BOTTOM_PX
    fig = _figure.new_figure(width, height)
    fig.suptitle(
        _wrapped(title, width), fontsize=10, y=1 - 10 / height, va="top"
    )
    ax = _figure.pixel_axes(fig, MARGIN_LEFT_PX, MARGIN_TOP_PX, size, size)
    support = matrix.sum(axis=1, keepdims=True)
    fraction = matrix / np.maximum(support, 1)
    # A power norm makes the few-percent confusions visible, not white.
    ax.imshow(
        fraction,
        cmap="Blues",
        norm=PowerNorm(0.4, vmin=0, vmax=1),
        interpolation="nearest",
    )
    ticks = np.arange(n)
    small = 8 if n <= ANNOTATE_UP_TO else 6
    ax.set_xticks(
        ticks,
        names,
        rotation=45 if n > 10 or _long(names) else 0,
        ha="right" if n > 10 or _long(names) else "center",
        fontsize=small,
    )
    ax.set_yticks(ticks, names, fontsize=small)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    if n <= ANNOTATE_UP_TO:
        for (i, j), count in np.ndenumerate(matrix):
            if count:
                ax.text(
                    j,
                    i,
                    str(count),
                    ha="center",
                    va="center",
                    fontsize=7 if count < 1000 else 6,
                    color="white" if fraction[i, j] > 0.3 else "black",
                )
    per_class = report["per_class_accuracy"]
    ax.text(n - 0.3, -0.8, "per-class\naccuracy", fontsize=8, va="bottom")
    for i, name in enumerate(names):
        acc = per_class.get(name) if isinstance(per_class, dict) else None
        shown = "n/a" if acc is None else f"{acc:.1%}"
        ax.text(n - 0.3, i, shown, fontsize=small, va="center")
    return fig


# Width of one title character (10 pt, at the figures' DPI), generous.
TITLE_CHAR_PX = 7.0


def _wrapped(title, width_px):
    """The title broken into lines that fit a figure `width_px` wide (a
    3-class matrix is narrower than one line of it)."""
    import textwrap

    chars = max(20, int((width_px - 16) / TITLE_CHAR_PX))
    return "\n".join(textwrap.wrap(title, chars))


def _long(names):
    return max((len(n) for n in names), default=0) > 3


def _title(meta, report):
    total = int(np.asarray(report["confusion_matrix"]).sum())
    return (
        f"Confusion matrix: {meta.model} on {meta.dataset or 'test'} "
        f"{report.get('split', 'test')} split ({total:,} examples, "
        f"accuracy {report['accuracy']:.2%})"
    )


def _metadata_only(source):

    _, meta_path = resolve_model_path(source)
    return ModelMetadata.load(meta_path) if meta_path else None


def draw_confusion(
    source,
    out=None,
    *,
    dataset=None,
    data_dir=None,
    limit=None,
    batch_size=256,
):
    """Writes the test-set confusion matrix of a run or model as a PNG.

    Uses the run's `metrics.json` when it has the matrix; otherwise
    evaluates the model on the test split of `dataset` (default: the one
    in its metadata) with `data_dir` and `limit`.
    """

    meta = _metadata_only(source)
    if meta is not None:
        _figure.require_picture(meta, "confusion", _CONFUSION_ONLY)
    report = stored_report(source) if os.path.isdir(source) else None
    if report is None or limit is not None or dataset is not None:
        report, meta = _evaluate(source, dataset, data_dir, limit, batch_size)
    fig = confusion_figure(report, _title(meta, report))
    epochs = trained_epochs(source)
    return _figure.finish(fig, source, "confusion", out, step=epochs)


def _evaluate(source, dataset, data_dir, limit, batch_size):

    model, meta = load_model_and_metadata(source)
    _figure.require_picture(meta, "confusion", _CONFUSION_ONLY)
    report = evaluate_model(
        model,
        meta,
        dataset,
        data_dir=data_dir,
        batch_size=batch_size,
        limit=limit,
        validation_split=recorded_validation_split(meta),
    )
    if dataset:
        meta.dataset = dataset
    return report, meta
