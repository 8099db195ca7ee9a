"""A module imported on first use, so that start-up stays fast.

`kerascnn --help` must not wait seconds for TensorFlow. Instead of an
import statement inside every command body, a module that needs a heavy
package at run time names it once, at the top:

    train = LazyModule("kerascnn.train")

    def fit_command(...):
        quiet_tensorflow()
        train.fit(config)  # kerascnn.train (and TensorFlow) load here

As Keras does in `keras/src/utils/module_utils.py` (`LazyModule`). Import
statements stay the rule; a `LazyModule` is for what start-up time
cannot afford. import-linter does not see it (no import statement), so
the import contracts in `.importlinter` say nothing about it.
"""

import importlib

# Dunder attributes read from a module as data, not probed by copy/pickle.
_MODULE_DUNDERS = ("__version__", "__file__", "__path__")


class LazyModule:
    """Stands for module `name` and imports it at the first attribute read.

    Args:
        name: the module's full name, e.g. `"kerascnn.train"`.
    """

    def __init__(self, name):
        self._name = name
        self._module = None

    @property
    def loaded(self):
        """Whether the module has been imported through this object."""
        return self._module is not None

    def _load(self):
        if self._module is None:
            self._module = importlib.import_module(self._name)
        return self._module

    def __getattr__(self, attr):
        # Only called for names the instance lacks; dunder lookups (copy,
        # pickle, doctest probes) must not import the module.
        # Its own two names are missing only before `__init__` ran.
        # A module's own data dunders (`tf.__version__`) do load it.
        if attr in ("_name", "_module") or (
            attr.startswith("__")
            and attr.endswith("__")
            and attr not in _MODULE_DUNDERS
        ):
            raise AttributeError(attr)
        return getattr(self._load(), attr)

    def __dir__(self):
        return dir(self._load())

    def __repr__(self):
        state = "loaded" if self.loaded else "not loaded"
        return f"<LazyModule {self._name!r} ({state})>"
