"""`python -m tests.tasks.counting fit RUN_DIR | kerascnn ARGS...`: the
library and its CLI in a process where the counting task is registered."""

import json
import os
import sys

import numpy as np

from kerascnn import tasks
from tests.tasks.counting import model  # noqa: F401  (registers the model)
from tests.tasks.counting.data import counting_images
from tests.tasks.counting.task import Counting

tasks.register_task(Counting())  # the one registry line


def fit_and_evaluate(run_dir):
    """Trains with `kerascnn.train.fit`, evaluates the run again with
    `kerascnn.tasks.evaluate`, and prints both as JSON."""
    from kerascnn.config import recipe_for
    from kerascnn.train import fit

    config = recipe_for(
        "square_counter",
        dataset="counting-squares",
        epochs=12,
        batch_size=32,
        optimizer="adam",
        learning_rate=3e-3,
        schedule="constant",
        weight_decay=0.0,
        mixed_precision="none",
        run_dir=run_dir,
        export=False,
        log_format="json",
    )
    result = fit(config, resume=False)
    again = tasks.evaluate(run_dir)
    print(
        json.dumps(
            {
                "metrics": result.metrics,
                "evaluate": again,
                "history": result.history,
                "best_val_loss": _best_checkpoint_val_loss(run_dir),
            }
        )
    )


def _best_checkpoint_val_loss(run_dir):
    """The validation loss of `checkpoints/best.keras` (same data as fit's
    validation set)."""
    import keras

    best = keras.saving.load_model(
        os.path.join(run_dir, "checkpoints", "best.keras")
    )
    x, y = counting_images(256, seed=1)
    predicted = np.asarray(best.predict(x, verbose=0)).ravel()
    return float(np.mean((predicted - y) ** 2))


def run_cli(args):
    """`kerascnn ARGS` in this process, where the task is registered."""
    from cli.main import cli

    cli.main(args, prog_name="kerascnn")


if __name__ == "__main__":
    command, *rest = sys.argv[1:]
    if command == "fit":
        fit_and_evaluate(*rest)
    elif command == "kerascnn":
        run_cli(rest)
    else:
        sys.exit("usage: python -m tests.tasks.counting fit|kerascnn ...")
