"""Refusing early what cannot work in a run directory: a second process
in the same --run-dir (a lock naming the holder's PID, released on exit
and on kill), and damaged config.json / history.csv files (named in one
line; the run still resumes)."""

import os
import signal
import subprocess
import sys
import time

import pytest

from cli.main import cli
from kerascnn.errors import DataNotice, RunFileError, TrainingError
from kerascnn.history import read_history_csv
from kerascnn.runs import check_same_config, lock_path, run_dir_lock

HOLD = """
import sys, time
from kerascnn.runs import run_dir_lock
with run_dir_lock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(60)
"""


def _holder(run_dir):
    """A process that holds the lock of `run_dir` until killed."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(run_dir)],
        stdout=subprocess.PIPE, text=True,
        env=dict(os.environ, PYTHONPATH=os.getcwd()),
    )  # fmt: skip
    assert process.stdout.readline().strip() == "held"
    return process


def test_a_run_dir_held_by_a_live_process_is_refused_with_its_pid(tmp_path):
    run_dir = tmp_path / "runs" / "lenet-1"
    process = _holder(run_dir)
    try:
        with pytest.raises(TrainingError) as error:
            with run_dir_lock(str(run_dir)):
                pass
        message = str(error.value)
        assert f"PID {process.pid}" in message
        assert str(run_dir) in message and "--run-dir" in message
        assert "\n" not in message
    finally:
        process.kill()
        process.wait(timeout=30)
    # Killed (SIGKILL: no clean-up ran): the kernel released the lock, and
    # the file it left behind is taken over.
    assert os.path.exists(lock_path(str(run_dir)))
    with run_dir_lock(str(run_dir)):
        with open(lock_path(str(run_dir))) as f:
            assert f.read().startswith(f"PID {os.getpid()} ")
    assert not os.path.exists(lock_path(str(run_dir)))  # released on exit


def test_the_lock_is_released_on_exit_and_on_sigterm(tmp_path):
    run_dir = tmp_path / "r"
    with run_dir_lock(str(run_dir)):
        assert os.path.exists(lock_path(str(run_dir)))
    assert not os.path.exists(lock_path(str(run_dir)))
    process = _holder(run_dir)
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)
    deadline = time.monotonic() + 10
    while True:  # the next taker gets it at once
        try:
            with run_dir_lock(str(run_dir)):
                break
        except TrainingError:
            assert time.monotonic() < deadline
            time.sleep(0.1)


def test_history_with_a_second_header_and_a_cut_last_line_reads(tmp_path):
    (tmp_path / "history.csv").write_text(
        "epoch,loss\n0,2.5\nepoch,loss\n1,2.0\n2"
    )
    assert read_history_csv(tmp_path) == {"loss": [2.5, 2.0], "epoch": [1, 2]}


def test_a_damaged_history_line_is_named(tmp_path):
    (tmp_path / "history.csv").write_text("epoch,loss\n0,2.5\n1\n2,1.0\n")
    with pytest.raises(RunFileError) as error:
        read_history_csv(tmp_path)
    message = str(error.value)
    assert message.startswith(f"{tmp_path / 'history.csv'} is damaged")
    assert "line 3" in message


def test_damaged_run_files_are_named_and_set_aside(tmp_path):
    from kerascnn.config import recipe_for

    (tmp_path / "backup").mkdir()  # an unfinished run
    (tmp_path / "config.json").write_text('{"model": "lenet", "epo')
    (tmp_path / "history.csv").write_text("epoch,loss\n0,x\n1,2.0\n")
    config = recipe_for("lenet", run_dir=str(tmp_path))
    with pytest.warns(DataNotice) as notes:
        check_same_config(str(tmp_path), config)
    lines = [str(n.message) for n in notes]
    assert len(lines) == 2
    assert lines[0].startswith(f"{tmp_path / 'history.csv'} is damaged")
    assert "history.csv.damaged" in lines[0]
    assert lines[1].startswith(f"{tmp_path / 'config.json'} is damaged")
    assert "resumes" in lines[0] and "Resuming" in lines[1]
    assert (tmp_path / "history.csv.damaged").exists()
    assert not (tmp_path / "history.csv").exists()


def test_fit_resumes_a_run_whose_files_were_damaged(runner, data_dir, tmp_path):
    run_dir = tmp_path / "run"
    args = [
        "fit", "lenet", "--data-dir", data_dir, "--limit", "128",
        "--eval-limit", "64", "--epochs", "2", "--batch-size", "64",
        "--no-export", "--run-dir", str(run_dir), "-q",
    ]  # fmt: skip
    first = runner.invoke(cli, [*args[:-3], "--epochs", "1", *args[-3:]])
    assert first.exit_code == 0, first.output
    # As two concurrent fits once left it: a second header, a torn
    # config.json; the backup says the run is unfinished.
    with open(run_dir / "history.csv", "a") as f:
        f.write("epoch,loss\n0,oops,\n")
    (run_dir / "config.json").write_text("{")
    (run_dir / "backup").mkdir(exist_ok=True)
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    notes = [line for line in result.output.splitlines() if "damaged" in line]
    assert len(notes) == 2 and all(n.startswith("note: ") for n in notes)
    assert "Traceback" not in result.output
    history = read_history_csv(run_dir)
    assert history["epoch"][-1] >= 1
