"""Tiny real runs shared by the picture tests: the slot tagger here, LeNet
from tests/conftest.py (`lenet_run`).

Each is trained once per session for 1 epoch on a small subset of the real
data through `kerascnn.train.fit`, so the run directories are exactly what
`kerascnn fit` writes (initial filters, history, metrics, curves.png).
"""

import pytest
from PIL import Image


def _fit(model, run_dir, data_dir, **settings):
    from kerascnn.config import recipe_for
    from kerascnn.train import fit

    config = recipe_for(
        model,
        epochs=1,
        data_dir=data_dir,
        run_dir=str(run_dir),
        export=False,
        log_format="quiet",
        **settings,
    )
    return fit(config, resume=False).run_dir


@pytest.fixture(scope="session")
def tagger_run(tmp_path_factory, data_dir):
    run_dir = tmp_path_factory.mktemp("pictures") / "tagger-run"
    return _fit(
        "slot_tagger",
        run_dir,
        data_dir,
        limit=600,
        eval_limit=100,
        model_options={"units": 16, "embedding_dim": 16},
    )


@pytest.fixture(scope="session")
def digit_png(tmp_path_factory, data_dir):
    """The first MNIST test image (a 7) as a PNG file."""
    from kerascnn.data.sources import read_idx

    images = read_idx(f"{data_dir}/mnist/t10k-images-idx3-ubyte.gz")
    path = tmp_path_factory.mktemp("inputs") / "digit7.png"
    Image.fromarray(images[0]).save(path)
    return str(path)


@pytest.fixture(scope="session")
def text_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("inputs") / "notes.png"
    path.write_text("not an image, just text with a .png name\n")
    return str(path)
