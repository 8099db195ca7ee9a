"""Helpers shared by the command modules: quiet TF, errors, shape parsing.

Every error a user can cause ends as one line, `Error: ...`, in the words
of the command line (`--epochs must be a positive integer (got 0)`):
`OneLineErrorGroup` prints click's usage errors that way, and
`user_errors` rewords the library's `KerasCNNError`s.
"""

import ast
import contextlib
import inspect
import os
import re
import sys
import time
import warnings

import click

import kerascnn  # noqa: F401  (sets TensorFlow flags before its import)
from kerascnn.errors import DataNotice, KerasCNNError
from kerascnn.lazy import LazyModule

# TensorFlow comes with these: loaded on first use, so that `--help` and
# usage errors stay instant.
tf = LazyModule("tensorflow")
models = LazyModule("kerascnn.models")
progress = LazyModule("kerascnn.data.progress")

VERBOSE_ENV = "KERASCNN_VERBOSE"


def quiet_tensorflow():
    """Imports TensorFlow with its native log lines muted: work starts.

    TensorFlow, LiteRT and gRPC print from C++ straight to file
    descriptor 2 (`INFO: Created TensorFlow Lite XNNPACK delegate`,
    converter statistics, `Failed to add port`), whatever
    `TF_CPP_MIN_LOG_LEVEL` says. Unless `kerascnn --verbose` (or
    `KERASCNN_VERBOSE=1`), descriptor 2 goes to /dev/null for the rest of
    the process while Python's `sys.stderr` (errors, warnings, notes)
    keeps writing to the real stderr through a duplicate descriptor.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if os.environ.get(VERBOSE_ENV) != "1":
        _mute_native_stderr()
    if "tensorflow" in sys.modules:
        return
    tf.config.list_physical_devices()


_muted = []


def _mute_native_stderr():
    """Points descriptor 2 at /dev/null and `sys.stderr` at a copy of it."""
    try:
        is_fd2 = sys.stderr.fileno() == 2
    except (AttributeError, OSError, ValueError):
        is_fd2 = False  # a test runner's captured stream: nothing to do
    if _muted or not is_fd2:
        return
    sys.stderr.flush()
    python_stderr = os.fdopen(os.dup(2), "w", buffering=1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    sys.stderr = python_stderr
    _muted.append(python_stderr)


# "`epochs` must be a positive integer. Received: epochs=0"
_LIBRARY_CHECK = re.compile(
    r"`(?P<name>\w+)` must be (?P<what>.*?)\.? Received: (?P=name)=(?P<got>.*)$"
)
# "... Received: input_shape=(10, 10, 1)" -> "... (got --input-shape 10,10,1)"
_RECEIVED = re.compile(r"\.? Received: (?P<name>\w+)=(?P<got>[^,]*|\(.*\))$")


def _got_flag(match):
    got = match["got"]
    if got.startswith("(") and got.endswith(")"):
        got = ",".join(p.strip() for p in got[1:-1].split(",") if p.strip())
    return f" (got {_typed_as(match['name'])} {got})"


# Library keywords that an option of another name sets.
_LIBRARY_NAMES = {"validation_size": "validation_split"}


def _typed_as(name):
    """How the user typed keyword `name` in the running command: its
    option (`--input-shape`), a builder option (`-o variant`), or, when
    it is neither, the name itself."""
    ctx = click.get_current_context(silent=True)
    params = {p.name: p for p in ctx.command.params} if ctx else {}
    name = _LIBRARY_NAMES.get(name, name) if ctx else name
    if isinstance(params.get(name), click.Option):
        return _flag_name(params[name])
    if "options" in params:
        return f"-o {name}"
    return name


# "pass overwrite=True (--overwrite)" -> "pass --overwrite"
_KEYWORD_WITH_FLAG = re.compile(
    r"`?\w+=(?:True|False|\(x, y\))`? \((--[\w-]+)\)"
)
_KEYWORD_BEFORE_FLAG = re.compile(r"\b\w+ \((--[\w-]+)\)")


def command_line_words(message):
    """A library message reworded for the command line, on one line.

    Keras-style checks name keyword arguments (`` `epochs` must be ...
    Received: epochs=0``); the user typed `--epochs`, so that is what the
    line says. Hints like `overwrite=True (--overwrite)` keep the flag.
    """
    message = " ".join(str(message).split())
    match = _LIBRARY_CHECK.search(message)
    if match:
        flag = _typed_as(match["name"])
        message = (
            message[: match.start()]
            + f"{flag} must be {match['what']} (got {match['got']})"
        )
    else:
        message = _RECEIVED.sub(_got_flag, message)
    message = _KEYWORD_WITH_FLAG.sub(r"\1", message)
    message = message.replace(", examples=(x, y)", "")
    return _KEYWORD_BEFORE_FLAG.sub(r"\1", message)


_notices_shown = set()


def print_notices():
    """Shows the library's `DataNotice` warnings as `note: ...` lines on
    stderr: no source path, each line once per command (a folder's
    skipped files are named once, though several splits read it); other
    warnings are unchanged."""
    _notices_shown.clear()
    warnings.simplefilter("always", DataNotice)
    shown = warnings.showwarning
    if getattr(shown, "kerascnn_notes", False):
        return

    def show(message, category, filename, lineno, file=None, line=None):
        if not issubclass(category, DataNotice):
            shown(message, category, filename, lineno, file, line)
        elif str(message) not in _notices_shown:
            _notices_shown.add(str(message))
            click.echo(f"note: {message}", err=True)

    show.kerascnn_notes = True
    warnings.showwarning = show


@contextlib.contextmanager
def user_errors():
    """Turns library errors a user caused into one line and exit code 1."""
    try:
        yield
    except KerasCNNError as e:
        raise click.ClickException(command_line_words(e)) from None


def _usage_line(error):
    """One line for a click usage error: the problem, then where to look."""
    message = " ".join(error.format_message().split())
    param = getattr(error, "param", None)
    bad_value = isinstance(error, click.BadParameter) and not isinstance(
        error, click.MissingParameter
    )
    hint = error.param_hint if bad_value else None
    name = _flag_name(param) if param is not None else hint
    if bad_value and isinstance(name, str) and error.message:
        reason = " ".join(error.message.split())
        joint = " " if reason.startswith(("must ", "expected ")) else ": "
        message = f"{name}{joint}{reason}"
    ctx = getattr(error, "ctx", None)
    if ctx is not None and ctx.command.get_help_option(ctx) is not None:
        message += f" (see {ctx.command_path} --help)"
    return message


def _flag_name(param):
    """`--epochs` for an option, `MODEL` for an argument."""
    if isinstance(param, click.Option):
        longs = [o for o in param.opts if o.startswith("--")]
        return (longs or param.opts)[0]
    return param.human_readable_name


class OneLineErrorGroup(click.Group):
    """A click group whose every error is one `Error: ...` line.

    click prints a usage error as the usage, a "Try --help" line, a blank
    line and the error; a user reading a log wants the error, so the
    usage line becomes a hint at the end of the one line.
    """

    def main(self, args=None, prog_name=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, standalone_mode=False, **extra)
        try:
            code = super().main(args, prog_name, standalone_mode=False, **extra)
        except click.UsageError as e:
            click.echo(f"Error: {_usage_line(e)}", err=True)
            sys.exit(e.exit_code)
        except click.ClickException as e:
            message = " ".join(e.format_message().split())
            click.echo(f"Error: {message}", err=True)
            sys.exit(e.exit_code)
        except click.Abort:
            click.echo("Aborted.", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


class PositiveIntType(click.ParamType):
    """An integer >= `minimum`, refused in the option's words."""

    name = "integer"

    def __init__(self, minimum=1):
        self.minimum = minimum

    def convert(self, value, param, ctx):
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        else:
            try:
                number = int(str(value).strip())
            except ValueError:
                number = None
        if number is None or number < self.minimum:
            what = (
                "a positive integer"
                if self.minimum == 1
                else f"an integer >= {self.minimum}"
            )
            self.fail(f"must be {what} (got {value})", param, ctx)
        return number


class NumberType(click.ParamType):
    """A float in a range, refused in the option's words."""

    name = "number"

    def __init__(self, low=None, high=None, low_open=False, high_open=False):
        self.bounds = (low, high, low_open, high_open)

    def convert(self, value, param, ctx):
        low, high, low_open, high_open = self.bounds
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = None
        bad = number is None or number != number
        if not bad and low is not None:
            bad = number <= low if low_open else number < low
        if not bad and high is not None:
            bad = number >= high if high_open else number > high
        if bad:
            self.fail(f"must be {self.describe()} (got {value})", param, ctx)
        return number

    def describe(self):
        low, high, low_open, high_open = self.bounds
        if high is None:
            return f"a number {'>' if low_open else '>='} {low:g}"
        left = "(" if low_open else "["
        right = ")" if high_open else "]"
        return f"a number in {left}{low:g}, {high:g}{right}"


POSITIVE_INT = PositiveIntType()
NON_NEGATIVE_INT = PositiveIntType(minimum=0)
POSITIVE_NUMBER = NumberType(low=0, low_open=True)
NON_NEGATIVE_NUMBER = NumberType(low=0)
RATE = NumberType(low=0, high=1, high_open=True)
VALIDATION_SPLIT = NumberType(low=0, high=1, low_open=True, high_open=True)
# The held-out split rule, stated once (kerascnn.data.sources.holdout).
VALIDATION_SPLIT_HELP = (
    "Fraction of the training examples held out for validation when the "
    "data set has no validation split (the same seeded pick in fit, "
    "evaluate, export and data info). Default: 0.2 for a "
    "<folder>/<class>/* image folder; other data sets validate on their "
    "test split."
)


def skip_bad_option(default=False, what="skip and count them"):
    """The one `--skip-bad/--no-skip-bad` of every command that reads an
    image folder (fit, evaluate, export, data info, data convert)."""
    return click.option(
        "--skip-bad/--no-skip-bad",
        default=default,
        help="Image files that are empty or cannot be decoded: "
        f"{what} (named in one note) instead of stopping with an error "
        "that names the file.",
    )


def _builder_options(fn, depth=0):
    """The `-o` keys a builder takes: its keyword parameters, or, for a
    thin variant (`resnet20(..., **options)`), those of the function it
    passes `**options` to. `None` when that cannot be told."""
    parameters = inspect.signature(fn).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        return [
            name
            for name, p in parameters.items()
            if p.default is not p.empty
            and name not in ("input_shape", "num_classes")
        ]
    if depth > 2:
        return None
    for name in fn.__code__.co_names:
        target = fn.__globals__.get(name)
        if inspect.isfunction(target) and target is not fn:
            found = _builder_options(target, depth + 1)
            if found is not None:
                return found
    return None


def check_builder_options(model, options):
    """Refuses `-o KEY=VALUE` keys that MODEL's builder does not take.

    Run before anything is built or written, so a typo is one line, not
    a `TypeError` from deep inside Keras.
    """
    info = models.get_model_info(model)
    taken = _builder_options(info.builder)
    if taken is None:
        return  # not found: the builder checks its keywords itself
    for key in options:
        if key not in taken:
            raise click.UsageError(
                f"unknown option -o {key} for {info.name}; {info.name} "
                f"takes: {', '.join(taken)}"
            )


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


class ProgressBar:
    """A click progress bar on stderr, started once the work knows its
    total: `with ProgressBar("Converting") as progress:` and pass
    `progress` (a callable `total -> update(n)`) to the library. Off a
    terminal click prints the label once, without control characters."""

    def __init__(self, label):
        self.label = label
        self.bar = None

    def __enter__(self):
        return self

    def __call__(self, total):
        self.bar = click.progressbar(
            length=total,
            label=self.label,
            file=click.get_text_stream("stderr"),
        )
        self.bar.__enter__()
        return self._update

    def _update(self, n):
        # The ETA counts from the first finished item: the seconds a
        # pipeline takes to start are not a per-item cost (they made
        # `data convert` show an ETA of days at 0%).
        if self.bar.pos == 0:
            self.bar.start = time.time()
            self.bar.avg = []
        self.bar.update(n)

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.__exit__(*exc)


class ProgressLines:
    """Draws what a library call says about its progress, on stderr.

    Text arrives as its own line. A counting data step
    (`kerascnn.data.progress.Step`: listing a folder, decoding it into
    memory) is one line redrawn in place on a terminal; off a terminal
    only its finished line is printed, so a log reads like the
    terminal's last frame. Use as a context manager, so that a step cut
    short by an error does not leave the error on its line. `steps=False`
    (`--quiet`) drops the counting steps and keeps the text.
    """

    def __init__(self, stream=None, interactive=None, steps=True):
        self.stream = stream or click.get_text_stream("stderr")
        self.steps = steps
        if interactive is None:
            isatty = getattr(self.stream, "isatty", None)
            interactive = bool(isatty and isatty())
        self.interactive = interactive
        self._open = False

    def __enter__(self):
        return self

    def data_steps(self):
        """A context in which the data steps of any library call (e.g. a
        recipe counting a folder's images) are drawn here too."""
        return progress.reporting(self)

    def __call__(self, message):
        if not isinstance(message, progress.Step):
            self._close_line()
            click.echo(message, file=self.stream)
        elif not self.steps:
            return
        elif self.interactive:
            end = "\n" if message.finished else ""
            self._write(f"\r{message}\033[K{end}")
            self._open = not message.finished
        elif message.finished:
            click.echo(str(message), file=self.stream)

    def _write(self, text):
        self.stream.write(text)
        self.stream.flush()

    def _close_line(self):
        if self._open:
            self._write("\n")
            self._open = False

    def __exit__(self, *exc):
        self._close_line()
