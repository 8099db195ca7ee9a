"""Model registry: maps a name to a Functional-API builder.

Family modules register one short function per variant with
`@register_model(...)`; `kerascnn.models` imports every family so nothing
is left unregistered. `build(name, ...)` validates the name and passes the
remaining arguments to the builder, in the spirit of timm's `create_model`
and `keras.applications`.
"""

import dataclasses
import fnmatch
import re

from kerascnn.errors import UnknownModelError
from kerascnn.models import weights as pretrained

_REGISTRY = {}
_ALIASES = {}


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """What the registry knows about one model variant.

    Attributes:
        name: registry name, e.g. `"resnet20"`.
        family: the module that defines it, e.g. `"resnet"`.
        builder: the function that returns a `keras.Model`.
        default_input_shape: input shape used when none is given.
        default_num_classes: output width used when none is given.
        reference: the paper, as "Authors (year), title, URL".
        task: `"image_classification"` or `"sequence_tagging"`.
        aliases: other names that resolve to this model.
        num_params: total parameters at the default input and classes, so
            listings need not build 100M-parameter models (tests check it
            against a real build).
        min_input_shape: the smallest input the builder accepts (tests
            build every model at it, and check one pixel less is refused);
            `None`: the default input shape.
    """

    name: str
    family: str
    builder: object
    default_input_shape: tuple
    default_num_classes: int
    reference: str
    task: str = "image_classification"
    aliases: tuple = ()
    num_params: int = None
    min_input_shape: tuple = None


def register_model(
    *,
    default_input_shape,
    default_num_classes,
    reference,
    task="image_classification",
    aliases=(),
    num_params=None,
    min_input_shape=None,
):
    """Decorator that records a builder under its function name."""

    def decorator(fn):
        name = fn.__name__
        family = fn.__module__.rsplit(".", 1)[-1]
        if name in _REGISTRY or name in _ALIASES:
            raise RuntimeError(f"Model {name!r} is registered twice.")
        _REGISTRY[name] = ModelInfo(
            name=name,
            family=family,
            builder=fn,
            default_input_shape=tuple(default_input_shape),
            default_num_classes=default_num_classes,
            reference=reference,
            task=task,
            aliases=tuple(aliases),
            num_params=num_params,
            min_input_shape=tuple(min_input_shape or default_input_shape),
        )
        for alias in aliases:
            _ALIASES[alias] = name
        return fn

    return decorator


def _natural_key(name):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def list_models(pattern="*", family=None):
    """Returns registered model names matching a wildcard, in natural order.

    Args:
        pattern: shell-style wildcard, e.g. `"resnet*"`. Defaults to `"*"`.
        family: only models of this family module. Defaults to all.
    """
    names = [
        n
        for n, info in _REGISTRY.items()
        if fnmatch.fnmatch(n, pattern)
        and (family is None or info.family == family)
    ]
    return sorted(names, key=_natural_key)


def get_model_info(name):
    """Returns the `ModelInfo` of a name or alias; raises if unknown."""
    if not isinstance(name, str):
        raise UnknownModelError(
            f"A model name must be a string. Received: name={name!r}"
        )
    key = name.strip().lower().replace("-", "_")
    key = _ALIASES.get(key, key)
    if key not in _REGISTRY:
        close = [n for n in list_models() if n.startswith(key[:3])]
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise UnknownModelError(
            f"Unknown model {name!r}.{hint} Known models: "
            f"{', '.join(list_models())}."
        )
    return _REGISTRY[key]


def build(name, input_shape=None, num_classes=None, weights=None, **options):
    """Builds a model by registry name.

    Args:
        name: a name from `list_models()` or an alias such as `"lenet5"`.
        input_shape: input shape without the batch axis, e.g. `(32, 32, 3)`.
            Defaults to the model's default input.
        num_classes: output width. Defaults to the model's default.
        weights: `None` (random initialization), `"imagenet"`
            (keras.applications' weights, for `resnet50`/`101`/`152` and
            `vgg16`/`19`), a `.h5`, `.weights.h5` or `.keras` file, or a
            kerascnn run directory; see `kerascnn.models.weights`. A head
            of another width or input size stays new. Defaults to `None`.
        **options: architecture options of that builder (see its docstring).

    Returns:
        An uncompiled Functional `keras.Model`.
    """
    info = get_model_info(name)
    if input_shape is None:
        input_shape = info.default_input_shape
    if num_classes is None:
        num_classes = info.default_num_classes
    if weights is not None and weights == pretrained.IMAGENET:
        pretrained.imagenet_file(info.name, True)  # refuses before building
    model = info.builder(
        input_shape=tuple(input_shape), num_classes=num_classes, **options
    )
    if weights is not None:
        pretrained.load_weights(model, weights, name=info.name)
    return model
