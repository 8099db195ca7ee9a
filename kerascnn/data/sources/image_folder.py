"""Image folders: `<root>/<split>/<class>/*` or `<root>/<class>/*`.

Listing is cheap (paths only); `decode` reads the pixels later. Files are
ordered round-robin over classes, so any prefix (`limit=`) is balanced. A
flat folder has no splits: it is shuffled once with a fixed seed and 20%
(or `validation_size`) is held out for validation.

Only files with an image extension (`images.IMAGE_EXTENSIONS`, any case)
are read; hidden files (`.DS_Store`) and other files (`README.txt`) are
skipped and named once, in one `DataNotice` line per listing. A folder
needs at least two classes, each with at least one image file.
"""

import os

from kerascnn.data import images, progress
from kerascnn.data.sources.base import (
    SPLIT_ALIASES,
    FileSplit,
    name_list,
    notice,
)
from kerascnn.data.sources.holdout import plan_split
from kerascnn.errors import DataError
from kerascnn.lazy import LazyModule

np = LazyModule("numpy")

FOLDER_VALIDATION_FRACTION = 0.2
FLAT_SHUFFLE_SEED = 1337


def _list_images(class_dir, count=None, ignored=None):
    files = []
    for e in os.scandir(class_dir):
        if not e.is_file():
            continue
        if images.is_hidden(e.name) or not images.is_image_name(e.name):
            if ignored is not None:
                ignored.append(e.path)
            continue
        files.append(e.path)
        if count is not None:
            count.add()
    return sorted(files)


def scan_class_folders(root, count=None, ignored=None):
    """Returns `{class_name: [file paths]}` for `<root>/<class>/*`.

    `count` (a `progress.Counter`) is told of every image file found;
    `ignored` (a list) gets the other files (hidden, not images).

    Raises:
        DataError: fewer than two class folders, or a class folder with
            no image file.
    """
    classes = sorted(
        e.name
        for e in os.scandir(root)
        if e.is_dir() and not e.name.startswith(".")
    )
    if not classes:
        raise DataError(
            f"Image folder {root} has no class sub-folders; expected "
            "<root>/<class>/*.jpg or <root>/<split>/<class>/*.jpg."
        )
    if len(classes) < 2:
        raise DataError(
            f"Image folder {root} has one class folder ({classes[0]}); a "
            "classifier needs at least 2 classes: add a folder of images "
            "per class, <root>/<class>/*.jpg."
        )
    found = {}
    for c in classes:
        files = _list_images(os.path.join(root, c), count, ignored)
        if not files:
            raise DataError(
                f"Class folder {os.path.join(root, c)} has no image files "
                f"({', '.join(images.IMAGE_EXTENSIONS)}); every class needs "
                "at least one image."
            )
        found[c] = files
    return found


def _say_ignored(ignored):
    if ignored:
        notice(
            f"Skipped {len(ignored)} file(s) that are hidden or not images "
            f"by extension: {name_list(ignored)}."
        )


def interleave_classes(by_class, class_names):
    """Orders files round-robin over classes, so any prefix is balanced."""
    paths, labels = [], []
    lists = [by_class[c] for c in class_names]
    for i in range(max(len(x) for x in lists)):
        for label, files in enumerate(lists):
            if i < len(files):
                paths.append(files[i])
                labels.append(label)
    return paths, np.asarray(labels, np.int32)


def folder_layout(root):
    """Returns the split directories of an image folder, or `None`.

    `{"train": dir, "test": dir, "validation": dir}` (those that exist) when
    `root` has split sub-folders; `None` for the flat `<root>/<class>/*`.
    """
    names = {"train", "test", "validation", *SPLIT_ALIASES}
    subdirs = {
        e.name for e in os.scandir(root) if e.is_dir() and e.name in names
    }
    if "train" not in subdirs:
        return None
    return {
        SPLIT_ALIASES.get(d, d): os.path.join(root, d) for d in sorted(subdirs)
    }


def _check_same_classes(root, per_split):
    ref = list(per_split["train"])
    for split, by_class in per_split.items():
        if list(by_class) != ref:
            missing = sorted(set(ref) - set(by_class))
            extra = sorted(set(by_class) - set(ref))
            raise DataError(
                f"Image folder {root}: the class folders of '{split}' do not "
                f"match those of 'train' (missing: {missing}, extra: "
                f"{extra}). Every split needs the same class folders."
            )


def _flat_split(root, count, ignored):
    """`{"train": (paths, labels)}` of a flat folder, shuffled once."""
    by_class = scan_class_folders(root, count, ignored)
    classes = list(by_class)
    paths, labels = interleave_classes(by_class, classes)
    perm = np.random.default_rng(FLAT_SHUFFLE_SEED).permutation(len(paths))
    return {"train": ([paths[i] for i in perm], labels[perm])}, classes


def _split_folders(root, layout, count, ignored):
    """`{split: (paths, labels)}` of a folder with split sub-folders."""
    per_split = {
        s: scan_class_folders(d, count, ignored) for s, d in layout.items()
    }
    _check_same_classes(root, per_split)
    classes = list(per_split["train"])
    return {
        s: interleave_classes(by_class, classes)
        for s, by_class in per_split.items()
    }, classes


def _folder_signature(root, layout):
    """Modification times of the root, split and class folders: adding,
    removing or renaming a file changes its folder's."""
    folders = [root, *(layout.values() if layout else ())]
    signature = []
    for folder in folders:
        signature.append((folder, os.stat(folder).st_mtime_ns))
        signature += [
            (e.path, e.stat().st_mtime_ns)
            for e in os.scandir(folder)
            if e.is_dir()
        ]
    return tuple(sorted(signature))


# The last listings of this process, keyed by folder signature: `fit`
# reads a folder's train, validation and test splits one after another,
# and a listing of a million files takes seconds.
_LISTINGS = {}
LISTINGS_KEPT = 4


def _list_folder(root, layout):
    """`({split: (paths, labels)}, class names)` of a folder, listed once
    per content (see `_folder_signature`); reported as a `progress` step."""
    key = (root, _folder_signature(root, layout))
    if key not in _LISTINGS:
        ignored = []
        with progress.counter(f"Listing {root}", unit="files") as count:
            if layout is None:
                listing = _flat_split(root, count, ignored)
            else:
                listing = _split_folders(root, layout, count, ignored)
        while len(_LISTINGS) >= LISTINGS_KEPT:
            _LISTINGS.pop(next(iter(_LISTINGS)))
        _LISTINGS[key] = listing, ignored
    listing, ignored = _LISTINGS[key]
    _say_ignored(ignored)  # the CLI shows each line once per command
    return listing


def read_image_folder(root, split, validation_size=None, name=None):
    """Lists an image folder; returns a `FileSplit`."""
    layout = folder_layout(root)
    splits, classes = _list_folder(root, layout)
    default = FOLDER_VALIDATION_FRACTION if layout is None else None
    sizes = {s: len(paths) for s, (paths, _) in splits.items()}
    plan = plan_split(
        f"Image folder {root}", sizes, split, validation_size, default
    )
    paths, labels = splits[plan.read]
    return FileSplit(
        name=name or root,
        source=f"{root} (image folder)",
        split=split,
        split_sizes=plan.sizes,
        class_names=classes,
        paths=plan.take(paths),
        labels=plan.take(labels),
    )
