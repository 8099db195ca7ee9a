"""Inference does not import training: loading, evaluating, predicting,
exporting, serving and drawing a model need none of the training code."""

import subprocess
import sys
import textwrap

TRAINING = (
    "kerascnn.train",
    "kerascnn.inputs",
    "kerascnn.losses",
    "kerascnn.callbacks",
    "kerascnn.optimizers",
)
INFERENCE = (
    "kerascnn.metadata",
    "kerascnn.evaluation",
    "kerascnn.predict",
    "kerascnn.export",
    "kerascnn.serving",
    "kerascnn.visualize",
    "kerascnn.tasks.sequence_tagging.tagging",
    "kerascnn.tasks",
)


def test_inference_modules_import_no_training_module():
    code = textwrap.dedent(
        f"""
        import importlib, sys
        for name in {INFERENCE!r}:
            importlib.import_module(name)
        print(sorted(m for m in {TRAINING!r} if m in sys.modules))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"
