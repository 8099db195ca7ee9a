"""A run's per-epoch history (`history.csv`, `history.json`): the file
names and the one reader of the CSV, which training appends to and the
curves read (inference code reads it without the training modules)."""

import csv
import os

from kerascnn.errors import RunFileError

HISTORY_CSV = "history.csv"
HISTORY_JSON = "history.json"
_MISSING = ("", "NA", None)


def read_history_csv(run_dir):
    """`{metric: [per-epoch values], "epoch": [1, 2, ...]}` from history.csv.

    The one reader of the file: a resume appends rows and may rewrite an
    epoch (the last row of an epoch wins); values an epoch did not log
    (`NA`) are left out. Returns `None` when the run has no history.csv.
    """
    path = os.path.join(run_dir, HISTORY_CSV)
    if not os.path.isfile(path):
        return None
    by_epoch = {}
    try:
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
        header = rows[0] if rows else ["epoch"]
        for line, row in enumerate(rows[1:], start=2):
            if row == header or not row:
                continue  # a header written again by a resume
            if len(row) != len(header):
                if line == len(rows):
                    break  # the last line cut short by a kill
                raise ValueError(f"line {line} has {len(row)} fields")
            values = dict(zip(header, row))
            by_epoch[int(values["epoch"])] = values
        history = {}
        for epoch in sorted(by_epoch):
            for key, value in by_epoch[epoch].items():
                if key != "epoch" and value not in _MISSING:
                    history.setdefault(key, []).append(float(value))
    except (ValueError, KeyError, UnicodeDecodeError, csv.Error) as e:
        detail = " ".join(str(e).split())[:120]
        raise RunFileError(
            f"{path} is damaged ({detail}); move it aside and run again: "
            "the checkpoints resume the run, and history.csv starts anew."
        ) from None
    history["epoch"] = [e + 1 for e in sorted(by_epoch)]
    return history
