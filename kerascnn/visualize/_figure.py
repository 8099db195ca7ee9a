"""Shared plumbing: fixed-size Agg figures, PNG files, TensorBoard images.

Figures are built on matplotlib's object API with an explicit Agg canvas
(no pyplot, no global backend switch), so drawing works headless and in
threads, and a figure of W x H pixels saves as exactly W x H pixels.
"""

import os

import numpy as np
import tensorflow as tf

from kerascnn import tasks
from kerascnn.files import atomic_path

DPI = 100
PICTURES_LOG_DIR = os.path.join("logs", "pictures")


def new_figure(width_px, height_px):
    """An empty figure that saves as `width_px` x `height_px` pixels."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(
        figsize=(width_px / DPI, height_px / DPI), dpi=DPI, facecolor="white"
    )
    FigureCanvasAgg(fig)
    return fig


def pixel_axes(fig, left, top, width, height):
    """Adds axes placed in pixels from the figure's top-left corner."""
    fig_w, fig_h = fig.get_size_inches() * DPI
    return fig.add_axes(
        [
            left / fig_w,
            1 - (top + height) / fig_h,
            width / fig_w,
            height / fig_h,
        ]
    )


def figure_texts(fig):
    """Every non-empty text in a figure: titles, labels, ticks, legends."""
    from matplotlib.text import Text

    return [t.get_text() for t in fig.findobj(Text) if t.get_text()]


def save_png(fig, path):
    """Writes `fig` as a PNG (atomically) and returns `path`."""
    path = os.fspath(path)
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, facecolor="white")
    return path


def run_dir_of(source):
    """The run directory of a source, or `None` for a loose `.keras` file."""
    source = os.fspath(source)
    return source if os.path.isdir(source) else None


def default_out(source, name, extension="png"):
    """`<run_dir>/<name>.png` for a run, else `<name>.png` here."""
    run_dir = run_dir_of(source)
    filename = f"{name}.{extension}"
    return os.path.join(run_dir, filename) if run_dir else filename


def log_image(run_dir, tag, png_path, step=0):
    """Adds a PNG to the run's TensorBoard logs (`logs/pictures`)."""
    from PIL import Image

    with Image.open(png_path) as image:
        pixels = np.asarray(image.convert("RGB"))
    writer = tf.summary.create_file_writer(
        os.path.join(run_dir, PICTURES_LOG_DIR)
    )
    with writer.as_default():
        tf.summary.image(tag, pixels[None], step=int(step))
    writer.close()


def finish(fig, source, name, out=None, step=0):
    """Saves the picture of a source and, for a run, logs it to TensorBoard.

    Returns the PNG path.
    """
    path = save_png(fig, out or default_out(source, name))
    run_dir = run_dir_of(source)
    if run_dir:
        log_image(run_dir, name, path, step)
    return path


def require_picture(meta, picture, what):
    """Raises one line unless `picture` applies to the model's task.

    `what` says what the picture draws ("tags draws the slot tagger's
    output"); the message adds what the model is instead.
    """

    tasks.require(meta, picture=picture, what=what)
