"""The built-in data set names and where each is looked for locally."""

import dataclasses

MNIST_CLASSES = [str(i) for i in range(10)]
FASHION_CLASSES = [
    "t-shirt_top", "trouser", "pullover", "dress", "coat",
    "sandal", "shirt", "sneaker", "bag", "ankle_boot",
]  # fmt: skip
KMNIST_CLASSES = ["o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"]
LETTERS = [chr(c) for c in range(ord("a"), ord("z") + 1)]
CIFAR10_CLASSES = [
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
]  # fmt: skip


@dataclasses.dataclass(frozen=True)
class KnownDataset:
    """A built-in data set name.

    Attributes:
        name: the public name, e.g. `"emnist/letters"`.
        kind: `"idx"`, `"image_folder"` or `"atis"`: the local format.
        local_dirs: directory names tried under the data directory.
        tfds_name: the TFDS name used when no local copy exists.
        class_names: canonical class names (`None`: read from the source).
    """

    name: str
    kind: str
    local_dirs: tuple
    tfds_name: str = None
    class_names: list = None


KNOWN = {
    k.name: k
    for k in [
        KnownDataset("mnist", "idx", ("mnist",), "mnist", MNIST_CLASSES),
        KnownDataset(
            "fashion_mnist", "idx", ("fashion_mnist", "fashion-mnist"),
            "fashion_mnist", FASHION_CLASSES,
        ),
        KnownDataset("kmnist", "idx", ("kmnist",), "kmnist", KMNIST_CLASSES),
        KnownDataset(
            "emnist/letters", "idx",
            ("emnist_letters", "emnist-letters", "emnist/letters"),
            "emnist/letters", LETTERS,
        ),
        KnownDataset(
            "cifar10", "image_folder", ("cifar10", "cifar-10"), "cifar10",
            CIFAR10_CLASSES,
        ),
        KnownDataset("atis", "atis", ("atis",)),
    ]
}  # fmt: skip


def list_datasets():
    """Returns the built-in data set names."""
    return sorted(KNOWN)
