"""Holding out a validation split: the one rule every source follows.

A source reports the splits it has (`{"train": 60000, "test": 10000}`).
When it has no `"validation"` split and a `validation_size` is given (or
the source has a default, like flat image folders), the last
`validation_size` training examples become the validation split and train
shrinks by as many; `split_sizes` says so for every split requested.
"""

import dataclasses

from kerascnn.errors import DataError
from kerascnn.lazy import LazyModule

np = LazyModule("numpy")


def validation_count(n, validation_size, default):
    """Turns `validation_size` (count, fraction or `None`) into a count."""
    size = default if validation_size is None else validation_size
    if isinstance(size, float) and 0 < size < 1:
        size = int(round(n * size))
    is_count = isinstance(size, (int, np.integer)) and not isinstance(
        size, bool
    )
    if not is_count or not 0 < size < n:
        raise DataError(
            "`validation_size` must be a count in [1, number of training "
            f"examples - 1] = [1, {n - 1}] or a fraction in (0, 1). "
            f"Received: validation_size={validation_size!r}"
        )
    return int(size)


@dataclasses.dataclass(frozen=True)
class SplitPlan:
    """Which source split to read for `split`, and what to keep of it.

    Attributes:
        split: the requested (canonical) split.
        read: the split of the source to read.
        n_val: training examples held out for validation (0: none).
        sizes: split sizes as reported to the user.
    """

    split: str
    read: str
    n_val: int
    sizes: dict

    def take(self, items):
        """Keeps the part of `items` (read from `self.read`) for `split`."""
        if not self.n_val or self.read != "train":
            return items
        if self.split == "validation":
            return items[-self.n_val :]
        return items[: -self.n_val]


def plan_split(where, sizes, split, validation_size=None, default_size=None):
    """Decides where `split` comes from.

    Args:
        where: the source, for error messages (e.g. `"/data/mnist"`).
        sizes: `{split: count}` of the splits the source has.
        split: canonical split name.
        validation_size: count or fraction held out of train, or `None`.
        default_size: the source's own default for `validation_size`.

    Returns:
        A `SplitPlan`.

    Raises:
        DataError: the split does not exist and cannot be held out, or a
            bad `validation_size`.
    """
    wanted = default_size if validation_size is None else validation_size
    if "validation" in sizes or wanted is None:
        _check_has(where, sizes, split)
        return SplitPlan(split, split, 0, dict(sizes))
    n_val = validation_count(sizes["train"], validation_size, default_size)
    sizes = dict(sizes, train=sizes["train"] - n_val, validation=n_val)
    _check_has(where, sizes, split)
    read = "test" if split == "test" else "train"
    return SplitPlan(split, read, n_val, sizes)


def _check_has(where, sizes, split):
    if split in sizes:
        return
    if split == "validation":
        raise DataError(
            f"{where} has no validation split; pass `validation_size=N` to "
            "hold out the last N training examples. Received: "
            "validation_size=None"
        )
    raise DataError(
        f"{where} has no '{split}' split; it has: {', '.join(sizes)}."
    )
