"""Kept for imports written before the checks moved to `kerascnn.validation`
(the one argument validator of the models, the config and export)."""

from kerascnn.validation import (  # noqa: F401
    check_choice,
    check_image_shape,
    check_positive_int,
    check_positive_number,
    check_rate,
)
