"""The import contracts in `.importlinter` hold (which package may import
which, inference never imports training, no cycles), and the linter that
checks them sees every import, function-level ones included."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / ".importlinter"
PACKAGES = ("kerascnn", "cli")


def lint_imports(project):
    """Runs the venv's `lint-imports` on `project`'s own `.importlinter`;
    returns `(exit code, report)`."""
    executable = Path(sys.executable).with_name("lint-imports")
    if not executable.exists():
        pytest.fail(
            f"{executable} is missing: install the test extra "
            "(pip install -e '.[test]'), which brings import-linter."
        )
    result = subprocess.run(
        [str(executable), "--no-cache", "--no-logo", ".importlinter"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=project,
        # The project folder first, so its packages are the ones read; a
        # wide terminal, so no contract name or import line is wrapped.
        env=dict(os.environ, PYTHONPATH=str(project), COLUMNS="250"),
    )
    return result.returncode, result.stdout + result.stderr


@pytest.fixture
def project_copy(tmp_path):
    """A copy of the packages and the contracts, free to break."""
    copy = tmp_path / "project"
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package,
            copy / package,
            ignore=shutil.ignore_patterns("__pycache__", "static"),
        )
    shutil.copy(CONFIG, copy / ".importlinter")
    return copy


def _add_function_level_import(path, statement):
    """Appends a function holding `statement`; returns its line number."""
    lines = path.read_text(encoding="utf-8").splitlines()
    lines += ["", "", "def _canary():", f"    {statement}", "    return None"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return lines.index(f"    {statement}") + 1


def test_the_import_contracts_hold():
    code, report = lint_imports(ROOT)
    assert code == 0, f"lint-imports found broken contracts:\n{report}"


def test_every_module_of_kerascnn_has_a_layer():
    """A new top-level module must be placed in the layers contract: one
    left out would be free to import anything."""
    import re

    from importlinter import api

    (layers,) = [
        contract["layers"]
        for contract in api.read_configuration(str(CONFIG))["contracts_options"]
        if contract["type"] == "layers"
    ]
    placed = {
        name.strip("() ")
        for layer in layers
        for name in re.split(r"[|:]", layer)
    }
    modules = {
        f"kerascnn.{path.stem if path.suffix else path.name}"
        for path in (ROOT / "kerascnn").iterdir()
        if path.name != "__init__.py"
        and (
            path.suffix == ".py"
            or (path.is_dir() and (path / "__init__.py").exists())
        )
    }
    assert sorted(modules - placed) == []


def test_a_function_level_import_of_training_breaks_two_contracts(
    project_copy,
):
    # predict is inference; an import inside a function still counts.
    line = _add_function_level_import(
        project_copy / "kerascnn" / "predict.py",
        "from kerascnn import losses  # noqa: F401",
    )
    code, report = lint_imports(project_copy)
    assert code == 1
    breach = "kerascnn.predict is not allowed to import kerascnn.losses"
    # Once under the layers contract, once under "inference never
    # imports training".
    assert report.count(breach) == 2, report
    assert f"kerascnn.predict -> kerascnn.losses (l.{line})" in report


def test_an_import_up_the_layers_is_reported(project_copy):
    line = _add_function_level_import(
        project_copy / "kerascnn" / "models" / "lenet.py",
        "from kerascnn.data import pipeline  # noqa: F401",
    )
    code, report = lint_imports(project_copy)
    assert code == 1
    # data and models are independent siblings.
    assert "kerascnn.models is not allowed to import kerascnn.data" in report
    assert (
        f"kerascnn.models.lenet -> kerascnn.data.pipeline (l.{line})" in report
    )


def test_a_cycle_between_siblings_is_reported(project_copy):
    package = project_copy / "kerascnn" / "canary"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "first.py").write_text("from kerascnn.canary import second\n")
    (package / "second.py").write_text('"""Imports first, lazily."""\n')
    _add_function_level_import(
        package / "second.py", "from kerascnn.canary import first  # noqa"
    )
    code, report = lint_imports(project_copy)
    assert code == 1
    assert "No cycles are allowed in kerascnn.canary." in report
    assert (
        "- .first -> .second (1 import)" in report
        or "- .second -> .first (1 import)" in report
    ), report
