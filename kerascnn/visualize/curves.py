"""Loss and accuracy per epoch from a run's history, several runs overlaid.

Reads `history.json` (written at the end of `fit`) or, for a run still
going or killed, `history.csv` (one row per finished epoch). Panels: loss,
accuracy (token and intent accuracy for the tagger) and span F1 when the
history has an `f1` metric.
"""

import json
import os
import warnings

from kerascnn.errors import KerasCNNError
from kerascnn.history import HISTORY_CSV, HISTORY_JSON, read_history_csv
from kerascnn.metadata import ModelMetadata
from kerascnn.visualize import _figure

PANEL_W_PX = 480
PANEL_H_PX = 400
TITLE_PX = 40
PANELS = (
    ("Loss", lambda key: key == "loss"),
    ("Accuracy", lambda key: key.endswith("accuracy")),
    ("Span F1", lambda key: "f1" in key),
)


def _history_dir(source):
    source = os.fspath(source)
    return source if os.path.isdir(source) else os.path.dirname(source)


def read_history(source):
    """`{metric: [per-epoch values], "epoch": [1, 2, ...]}` of a run.

    Raises:
        KerasCNNError: the run has no history file yet.
    """
    run_dir = _history_dir(source)
    json_path = os.path.join(run_dir, HISTORY_JSON)
    if os.path.isfile(json_path):
        with open(json_path) as f:
            history = json.load(f)
    else:
        history = read_history_csv(run_dir)
    if history is None:
        raise KerasCNNError(
            f"No training history in {run_dir!r} ({HISTORY_JSON} or "
            f"{HISTORY_CSV}): curves needs a run directory written by "
            "`kerascnn fit` that finished at least one epoch."
        )
    if not history.get("epoch"):
        lengths = [len(v) for v in history.values()]
        history["epoch"] = list(range(1, max(lengths, default=0) + 1))
    if not history["epoch"]:
        raise KerasCNNError(f"The history in {run_dir!r} has no epochs yet.")
    return history


def trained_epochs(source):
    """Epochs in a run's history, 0 when it has none (e.g. a loose file)."""
    try:
        return len(read_history(source)["epoch"])
    except (KerasCNNError, OSError, ValueError):
        return 0


def _metric_bases(history, matches):
    """Metric names (without `val_`) a panel plots, in a stable order."""
    bases = []
    for key in history:
        base = key.removeprefix("val_")
        if key != "epoch" and matches(base) and base not in bases:
            bases.append(base)
    return bases


def _panels(histories):
    panels = []
    for title, matches in PANELS:
        bases = []
        for _, history in histories:
            for base in _metric_bases(history, matches):
                if base not in bases:
                    bases.append(base)
        if bases:
            panels.append((title, bases))
    return panels


def _pretty(base):
    return base.replace("_", " ")


def curves_figure(histories, title):
    """Loss / accuracy / F1 panels for `[(label, history), ...]`.

    Train is a solid line, validation a dashed line of another colour;
    each run (and each metric within a panel) gets its own pair of
    colours. Epochs are whole numbers on the x axis, also for one epoch.
    """
    from matplotlib.ticker import MaxNLocator

    panels = _panels(histories)
    if not panels:
        raise KerasCNNError("The history has no loss, accuracy or F1 values.")
    fig = _figure.new_figure(PANEL_W_PX * len(panels), PANEL_H_PX + TITLE_PX)
    fig.suptitle(
        title, fontsize=11, y=1 - 10 / (PANEL_H_PX + TITLE_PX), va="top"
    )
    colours = [f"C{i}" for i in range(10)]
    for p, (panel_title, bases) in enumerate(panels):
        ax = _figure.pixel_axes(
            fig,
            p * PANEL_W_PX + 70,
            TITLE_PX + 30,
            PANEL_W_PX - 90,
            PANEL_H_PX - 85,
        )
        line = 0
        for label, history in histories:
            epochs = history["epoch"]
            for base in bases:
                pair = (
                    colours[line % len(colours)],
                    colours[(line + 1) % len(colours)],
                )
                line += 2
                name = " ".join(
                    part
                    for part in (
                        label if len(histories) > 1 else "",
                        _pretty(base) if len(bases) > 1 else "",
                    )
                    if part
                )
                for key, style, split, colour in (
                    (base, "-", "train", pair[0]),
                    (f"val_{base}", "--", "validation", pair[1]),
                ):
                    values = history.get(key)
                    if values:
                        ax.plot(
                            epochs[: len(values)],
                            values,
                            style,
                            color=colour,
                            marker="o",
                            markersize=3,
                            label=f"{name} {split}".strip(),
                        )
        ax.set_title(panel_title, fontsize=10)
        ax.set_xlabel("epoch")
        ax.set_ylabel(panel_title.lower())
        _epoch_axis(ax, histories, MaxNLocator)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    return fig


def _epoch_axis(ax, histories, locator):
    """Whole epochs on x; a short run gets one tick per epoch and half an
    epoch of margin (matplotlib's default for one point is 0.945-1.05)."""
    last = max(max(h["epoch"]) for _, h in histories)
    first = min(min(h["epoch"]) for _, h in histories)
    if last - first < 12:
        ax.set_xticks(range(first, last + 1))
        ax.set_xlim(first - 0.5, last + 0.5)
    else:
        ax.xaxis.set_major_locator(locator(integer=True))


def run_label(source):
    """A short name for a run: its directory name."""
    return os.path.basename(os.path.normpath(_history_dir(source)))


def _title(sources):
    if len(sources) > 1:
        return "Training curves: " + " vs ".join(run_label(s) for s in sources)
    meta_path = os.path.join(_history_dir(sources[0]), "metadata.json")
    what = run_label(sources[0])
    if os.path.isfile(meta_path):
        meta = ModelMetadata.load(meta_path)
        what = f"{meta.model} on {meta.dataset} ({what})"
    return f"Training curves: {what}"


def draw_curves(source, out=None, compare=()):
    """Writes the curves of a run (and of the `compare` runs) as a PNG."""
    sources = [os.fspath(source), *map(os.fspath, compare)]
    histories = [(run_label(s), read_history(s)) for s in sources]
    fig = curves_figure(histories, _title(sources))
    step = len(histories[0][1]["epoch"])
    return _figure.finish(fig, source, "curves", out, step=step)


def save_run_curves(run_dir, out=None):
    """`fit`'s end hook: writes `<run_dir>/curves.png`, never raises.

    A picture must not fail a run that trained: problems become a warning.
    """
    try:
        return draw_curves(run_dir, out)
    except (KerasCNNError, OSError, ValueError, RuntimeError) as e:
        warnings.warn(f"Could not draw {run_dir}/curves.png: {e}")
        return None
