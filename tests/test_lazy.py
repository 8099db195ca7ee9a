"""`LazyModule`: a module imported at its first use, and the CLI that
relies on it to start without TensorFlow."""

import copy
import os
import subprocess
import sys
import textwrap

import pytest

from kerascnn.lazy import LazyModule

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def probe(tmp_path, monkeypatch):
    """The name of a fresh module that counts its imports in `IMPORTS`."""
    name = f"lazy_probe_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(
        textwrap.dedent(
            """
            import builtins

            builtins.lazy_probe_imports = (
                getattr(builtins, "lazy_probe_imports", 0) + 1
            )
            ANSWER = 42


            def double(x):
                return 2 * x
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import builtins

    monkeypatch.setattr(builtins, "lazy_probe_imports", 0, raising=False)
    yield name
    sys.modules.pop(name, None)


def _imports():
    import builtins

    return builtins.lazy_probe_imports


def test_imports_at_the_first_attribute_read_and_only_once(probe):
    lazy = LazyModule(probe)
    assert probe not in sys.modules and _imports() == 0
    assert repr(lazy) == f"<LazyModule {probe!r} (not loaded)>"
    assert not lazy.loaded

    assert lazy.ANSWER == 42
    assert lazy.double(4) == 8
    assert probe in sys.modules and _imports() == 1
    assert lazy.loaded and "(loaded)" in repr(lazy)
    assert "double" in dir(lazy)
    # The module object itself, not a copy: monkeypatching it is seen.
    assert lazy.double is sys.modules[probe].double


def test_dunder_probes_and_copies_do_not_import(probe):
    lazy = LazyModule(probe)
    assert not hasattr(lazy, "__wrapped__")  # inspect / doctest probe
    copied = copy.copy(lazy)
    assert probe not in sys.modules and _imports() == 0
    assert copied.ANSWER == 42 and _imports() == 1


def test_a_modules_version_and_file_are_read_through_it(probe):
    """`tf.__version__` (the model card's package list) loads the module;
    other dunders stay probes that do not."""
    import numpy

    lazy_numpy = LazyModule("numpy")
    assert lazy_numpy.__version__ == numpy.__version__
    lazy = LazyModule(probe)
    assert lazy.__file__.endswith(f"{probe}.py") and _imports() == 1
    with pytest.raises(AttributeError):
        lazy.__wrapped__


def test_a_missing_module_fails_at_first_use_not_before():
    lazy = LazyModule("kerascnn.no_such_module")
    with pytest.raises(ModuleNotFoundError, match="no_such_module"):
        lazy.anything


def test_a_missing_attribute_names_it(probe):
    with pytest.raises(AttributeError, match="nothing_here"):
        LazyModule(probe).nothing_here


def test_importing_every_cli_module_imports_no_tensorflow():
    code = textwrap.dedent(
        """
        import pkgutil, sys
        import cli
        for module in pkgutil.iter_modules(cli.__path__):
            __import__(f"cli.{module.name}")
        heavy = ("tensorflow", "keras", "numpy", "matplotlib")
        print(sorted(m for m in heavy if m in sys.modules))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=ROOT),
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"
