"""Helpers shared by the command modules: quiet TF, errors, shape parsing."""

import contextlib
import os

import click


def quiet_tensorflow():
    """Imports TensorFlow without its C++ start-up chatter on stderr.

    `TF_CPP_MIN_LOG_LEVEL` hides INFO/WARNING logs, but the lines printed
    before absl logging is initialised (CUDA probing on a CPU machine)
    ignore it, so stderr is muted at the file-descriptor level for the
    import and device discovery only. Python errors still surface.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import sys

    import kerascnn  # noqa: F401  (sets TensorFlow flags before its import)

    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow as tf

        tf.config.list_physical_devices()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


@contextlib.contextmanager
def user_errors():
    """Turns library errors a user caused into one line and exit code 1."""
    from kerascnn.errors import KerasCNNError

    try:
        yield
    except KerasCNNError as e:
        # One line, even when a message embeds a path list or newline.
        raise click.ClickException(" ".join(str(e).split())) from None


class IntTupleType(click.ParamType):
    """A comma-separated tuple of ints, e.g. `32,32,3`."""

    name = "H,W,C"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        try:
            dims = tuple(int(p) for p in str(value).split(",") if p.strip())
        except ValueError:
            self.fail(
                f"expected comma-separated integers such as 32,32,3; "
                f"received {value!r}",
                param,
                ctx,
            )
        if not dims or any(d < 1 for d in dims):
            self.fail(f"dimensions must be positive; received {value!r}")
        return dims


INT_TUPLE = IntTupleType()


def parse_options(options):
    """Parses KEY=VALUE pairs, reading values as Python literals if we can."""
    import ast

    parsed = {}
    for item in options:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(
                f"expected KEY=VALUE, received {item!r}", param_hint="--option"
            )
        try:
            parsed[key.strip()] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            parsed[key.strip()] = value
    return parsed


def builder_options(example):
    """The repeatable `-o KEY=VALUE` option passing model-builder arguments."""
    return click.option(
        "--option",
        "-o",
        "options",
        multiple=True,
        metavar="KEY=VALUE",
        help=f"Builder option, e.g. -o {example} (repeatable).",
    )


def format_shape(shape):
    """`(28, 28, 1)` -> `28x28x1`; unknown dimensions print as `?`."""
    return "x".join("?" if d is None else str(d) for d in shape)
