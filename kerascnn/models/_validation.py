"""Argument checks shared by the builders; all run before any layer exists."""

from kerascnn.errors import InvalidArgumentError


def check_image_shape(model, input_shape, min_size):
    """Checks `(H, W, C)` with H, W >= `min_size` and C >= 1."""
    shape = tuple(input_shape)
    if len(shape) != 3 or any(not isinstance(d, int) or d < 1 for d in shape):
        raise InvalidArgumentError(
            f"{model} expects input_shape=(height, width, channels) of "
            f"positive integers. Received: input_shape={shape}"
        )
    height, width, _ = shape
    if height < min_size or width < min_size:
        raise InvalidArgumentError(
            f"{model} needs inputs of at least {min_size}x{min_size} pixels. "
            f"Received: input_shape={shape}"
        )
    return shape


def check_positive_int(name, value, minimum=1):
    """Checks an integer argument is at least `minimum`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidArgumentError(
            f"`{name}` must be an integer >= {minimum}. "
            f"Received: {name}={value!r}"
        )
    return value


def check_choice(name, value, choices):
    """Checks `value` is one of `choices`."""
    if value not in choices:
        raise InvalidArgumentError(
            f"`{name}` must be one of {', '.join(map(repr, choices))}. "
            f"Received: {name}={value!r}"
        )
    return value


def check_rate(name, value):
    """Checks a dropout-like rate in [0, 1)."""
    if not 0.0 <= float(value) < 1.0:
        raise InvalidArgumentError(
            f"`{name}` must be in [0, 1). Received: {name}={value!r}"
        )
    return float(value)
