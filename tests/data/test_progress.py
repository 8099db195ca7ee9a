"""Progress of the data steps: the library's counters, the CLI's lines,
and what `fit` shows before its first step (listing, decoding, caching)."""

import io
import re

import pytest

from cli.common import ProgressLines
from kerascnn.data import progress
from tests.data.test_streaming import cifar_folder


def test_counter_reports_start_updates_and_the_finished_step(monkeypatch):
    monkeypatch.setattr(progress, "INTERVAL", 0.0)
    steps = []
    with progress.reporting(steps.append):
        with progress.counter("Listing /data", unit="files") as count:
            count.add(2)
            count.add()
    assert [(s.done, s.finished) for s in steps] == [
        (0, False), (2, False), (3, False), (3, True),
    ]  # fmt: skip
    assert re.fullmatch(r"Listing /data: 3 files \(\d+\.\d s\)", str(steps[3]))
    assert str(steps[1]) == "Listing /data: 2 files"
    with progress.reporting(steps.append):
        with progress.reporting(None), progress.counter("Quiet", 9) as count:
            count.add(9)
        with pytest.raises(OSError):
            with progress.counter("Decoding", 5, "images") as count:
                count.add(1)
                raise OSError("disk gone")
    # Nothing from the silenced step; no finished line for the failed one.
    assert [str(s) for s in steps[4:]] == [
        "Decoding: 0/5 images",
        "Decoding: 1/5 images",
    ]


def test_counter_without_listener_reports_nothing(monkeypatch):
    monkeypatch.setattr(progress, "INTERVAL", 0.0)
    count = progress.counter("Listing", unit="files")
    count.add(5)
    assert count.done == 5


def _steps():
    yield "Loading data..."
    yield progress.Step("Listing /d", 10, None, "files")
    yield progress.Step("Listing /d", 20, None, "files", True, 1.25)
    yield progress.Step("Decoding", 1, 4, "images")


def test_progress_lines_redraw_on_a_terminal_and_log_finished_lines():
    terminal, log = io.StringIO(), io.StringIO()
    for stream, interactive in ((terminal, True), (log, False)):
        with ProgressLines(stream, interactive) as lines:
            for message in _steps():
                lines(message)
    assert terminal.getvalue() == (
        "Loading data...\n"
        "\rListing /d: 10 files\033[K"
        "\rListing /d: 20 files (1.2 s)\033[K\n"
        "\rDecoding: 1/4 images\033[K"
        "\n"  # the unfinished step's line is ended on the way out
    )
    assert log.getvalue() == "Loading data...\nListing /d: 20 files (1.2 s)\n"
    quiet = io.StringIO()
    with ProgressLines(quiet, interactive=True, steps=False) as lines:
        for message in _steps():
            lines(message)
    assert quiet.getvalue() == "Loading data...\n"


@pytest.fixture(scope="module")
def small_folder(data_dir, tmp_path_factory):
    """10 train + 10 test images per class, 32x32 JPEGs."""
    return cifar_folder(data_dir, tmp_path_factory.mktemp("progress"), 10, 32)


def test_fit_shows_listing_decoding_and_the_disk_cache(
    small_folder, runner, tmp_path
):
    from cli.main import cli

    args = [
        "fit", "simple_convnet", "--dataset", str(small_folder), "--epochs",
        "1", "--batch-size", "25", "--no-export", "--run-dir",
    ]  # fmt: skip
    result = runner.invoke(cli, args + [str(tmp_path / "run1")])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    loading = f"Loading {small_folder} and building simple_convnet..."
    start = lines.index(loading)
    shown = [re.sub(r" \(\d+\.\d s\)$", "", line) for line in lines[start:]]
    # The folder was listed (once per process, shown) before this line,
    # when the small-data recipe counted its training images.
    assert re.fullmatch(
        rf"Listing {small_folder}: 200 files \(\d+\.\d s\)", lines[0]
    ), lines[:2]
    assert lines[1].startswith(f"note: {small_folder} has 100 training")
    assert shown[1:4] == [
        "Checking the train split: 100/100 files",
        "Decoding the train split into memory: 100/100 images",
        "Data: 100 images decoded into memory (~0 MiB decoded, fits the "
        "2.0 GiB memory budget)",
    ]
    cache = tmp_path / "cache"
    disk = args + [str(tmp_path / "run2"), "--cache", f"disk:{cache}"]
    result = runner.invoke(cli, disk)
    assert result.exit_code == 0, result.output
    (data_line,) = [x for x in result.output.splitlines() if "Data:" in x]
    assert re.fullmatch(
        rf"Data: 100 images streamed, cached on disk in {cache}/train-\w+ by "
        r"the first epoch \(~0 MiB decoded, cache='disk'\)",
        data_line,
    )
    # The first epoch filled the cache; the next run reads it.
    disk[-3] = str(tmp_path / "run3")
    result = runner.invoke(cli, disk)
    assert result.exit_code == 0, result.output
    assert re.search(
        rf"Data: 100 images streamed, cached on disk, read from {cache}/"
        r"train-\w+ \(already filled\)",
        result.output,
    )


def test_a_folder_is_listed_again_only_when_it_changes(small_folder, tmp_path):
    import shutil

    from kerascnn.data import sources

    root = tmp_path / "copy"
    shutil.copytree(small_folder, root)
    steps = []
    with progress.reporting(steps.append):
        train = sources.read(str(root), "train")
        test = sources.read(str(root), "test")  # the same listing
        cat = root / "train" / "cat"
        shutil.copy(sorted(cat.iterdir())[0], cat / "extra.jpg")
        again = sources.read(str(root), "train")
    listed = [s.done for s in steps if s.finished]
    assert listed == [200, 201]
    assert (len(train.paths), len(test.paths), len(again.paths)) == (
        100, 100, 101,
    )  # fmt: skip
    assert str(cat / "extra.jpg") in again.paths
