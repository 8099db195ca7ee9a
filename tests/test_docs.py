"""The README's and docs/ pages' shell examples name real commands and flags.

Every `kerascnn ...` line in a ```sh block is parsed: its subcommands must
exist and each `--flag` / `-f` must be one the command accepts, so a
renamed or removed option cannot leave the docs behind. Nothing is run.
"""

import pathlib
import re
import shlex

import click
import pytest

from cli.main import cli

ROOT = pathlib.Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SH_BLOCK = re.compile(r"```(?:sh|bash|console)\n(.*?)```", re.DOTALL)


def _sh_lines(text):
    for block in SH_BLOCK.findall(text):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.strip()
            if line.startswith("$ "):
                line = line[2:]
            if line and not line.startswith("#"):
                yield line


def _kerascnn_calls(line):
    """Argument lists after each `kerascnn` word of a shell line."""
    line = re.sub(r"\s#\s.*$", "", line)  # trailing comment
    line = re.sub(r"\$\([^)]*\)", "X", line)  # command substitution
    for part in re.split(r"\s*(?:\||&&|;|&)\s*", line):
        try:
            words = shlex.split(part)
        except ValueError:
            words = part.split()
        for i, word in enumerate(words):
            if word == "kerascnn" or word.endswith("/kerascnn"):
                yield words[i + 1 :]
                break


def _examples():
    for page in PAGES:
        for line in _sh_lines(page.read_text()):
            for args in _kerascnn_calls(line):
                yield pytest.param(args, id=f"{page.name}: {' '.join(args)}")


def _option_names(command):
    names = {"--help", "-h"}
    for param in command.params:
        if isinstance(param, click.Option):
            names.update(param.opts)
            names.update(param.secondary_opts)
    return names


def _resolve(args):
    """The click command an argument list reaches, and the rest of it."""
    command, path = cli, ["kerascnn"]
    while isinstance(command, click.Group) and args:
        if args[0].startswith("-"):
            break
        sub = command.get_command(click.Context(command), args[0])
        if sub is None and _arguments(command) and len(args) > 1:
            # A group with arguments before its subcommand: `visualize RUN`.
            sub = command.get_command(click.Context(command), args[1])
            args = args[1:]
        assert sub is not None, f"{' '.join(path)} has no command {args[0]!r}"
        command, path, args = sub, [*path, args[0]], args[1:]
    return command, path, args


def _arguments(command):
    return [p for p in command.params if isinstance(p, click.Argument)]


EXAMPLES = list(_examples())


def test_the_docs_have_examples():
    assert len(EXAMPLES) >= 20


@pytest.mark.parametrize("args", EXAMPLES)
def test_example_uses_existing_commands_and_flags(args):
    command, path, rest = _resolve(args)
    known = _option_names(command)
    for word in rest:
        word = word.strip("[]")  # optional flags written as [--flag]
        if word == "--":
            break
        if re.fullmatch(r"--?[A-Za-z][\w-]*(=.*)?", word):
            flag = word.split("=", 1)[0]
            assert flag in known, (
                f"{' '.join(path)} has no option {flag}; it has {sorted(known)}"
            )
