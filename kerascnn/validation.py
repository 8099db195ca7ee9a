"""Argument checks shared by the model builders, the config and export.

One message style everywhere: what is accepted, then
`Received: name=value`. Each check returns the (normalized) value so a
caller can write `rate = check_rate("dropout", dropout)`. `error` picks the
`KerasCNNError` subclass a caller raises (export raises `ExportError`).
"""

from kerascnn.errors import InvalidArgumentError


def check_positive_int(name, value, minimum=1, error=InvalidArgumentError):
    """Checks an integer argument (not a bool) is at least `minimum`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        what = (
            "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        )
        raise error(f"`{name}` must be {what}. Received: {name}={value!r}")
    return value


def check_choice(name, value, choices, error=InvalidArgumentError):
    """Checks `value` is one of `choices`."""
    if value not in choices:
        raise error(
            f"`{name}` must be one of {', '.join(map(repr, choices))}. "
            f"Received: {name}={value!r}"
        )
    return value


def _as_float(name, value, accepted, error):
    if isinstance(value, bool):
        value = None  # True/False are not numbers here.
    try:
        return float(value)
    except (TypeError, ValueError):
        raise error(
            f"`{name}` must be {accepted}. Received: {name}={value!r}"
        ) from None


def check_rate(name, value, error=InvalidArgumentError):
    """Checks a dropout-like rate in [0, 1); returns it as a float."""
    rate = _as_float(name, value, "a number in [0, 1)", error)
    if not 0.0 <= rate < 1.0:
        raise error(f"`{name}` must be in [0, 1). Received: {name}={value!r}")
    return rate


def check_positive_number(name, value, error=InvalidArgumentError):
    """Checks a number is > 0 (a learning rate); returns it as a float."""
    number = _as_float(name, value, "a number > 0", error)
    if not number > 0:
        raise error(f"`{name}` must be > 0. Received: {name}={value!r}")
    return number


def check_non_negative_number(name, value, error=InvalidArgumentError):
    """Checks a number is >= 0 (an allowed loss); returns it as a float."""
    number = _as_float(name, value, "a number >= 0", error)
    if not number >= 0:
        raise error(f"`{name}` must be >= 0. Received: {name}={value!r}")
    return number


def check_image_size(image_size, error=InvalidArgumentError):
    """Checks an optional `(height, width)` of positive ints."""
    if image_size is not None and (len(image_size) != 2 or min(image_size) < 1):
        raise error(
            "`image_size` must be (height, width) with positive ints. "
            f"Received: image_size={image_size!r}"
        )
    return image_size


def check_image_shape(model, input_shape, min_size, error=InvalidArgumentError):
    """Checks `(H, W, C)` with H, W >= `min_size` and C >= 1."""
    shape = tuple(input_shape)
    if len(shape) != 3 or any(not isinstance(d, int) or d < 1 for d in shape):
        raise error(
            f"{model} expects input_shape=(height, width, channels) of "
            f"positive integers. Received: input_shape={shape}"
        )
    height, width, _ = shape
    if height < min_size or width < min_size:
        raise error(
            f"{model} needs inputs of at least {min_size}x{min_size} pixels. "
            f"Received: input_shape={shape}"
        )
    return shape
