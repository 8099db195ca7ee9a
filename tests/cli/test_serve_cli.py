"""`kerascnn serve` through click's CliRunner (no real Ctrl-C needed)."""

import json
import urllib.request

from cli.main import cli
from cli.serve_cli import serve_command
from tests.serving.test_app import exported_lenet


def test_serve_help_lists_routes(runner):
    result = runner.invoke(cli, ["serve", "--help"])
    assert result.exit_code == 0, result.output
    assert "--model-base-path" in result.output
    assert ":predict" in result.output


def test_missing_base_path_is_one_line(runner, tmp_path):
    result = runner.invoke(
        serve_command,
        ["--model-base-path", str(tmp_path / "missing"), "--port", "0"],
    )
    assert result.exit_code == 1
    assert "Error: Model base path" in result.output
    assert "not a folder" in result.output
    assert "Traceback" not in result.output


def test_base_path_without_versions_is_one_line(runner, tmp_path):
    (tmp_path / "lenet" / "v0.1").mkdir(parents=True)
    (tmp_path / "lenet" / ".tmp-1-x").mkdir()
    result = runner.invoke(
        serve_command, ["--model-base-path", str(tmp_path), "--port", "0"]
    )
    assert result.exit_code == 1
    assert "No models to serve" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_serve_answers_then_stops_on_ctrl_c(
    runner, tmp_path_factory, monkeypatch
):
    from kerascnn.serving import ServingHTTPServer

    base, _ = exported_lenet(tmp_path_factory)
    seen = {}

    def serve_once(self, handle_signals=False):
        # Stand-in for serve_forever: answer one real request, then Ctrl-C.
        seen["signals"] = handle_signals
        self.start()
        with urllib.request.urlopen(
            self.url + "/v1/models/lenet", timeout=30
        ) as response:
            seen["status"] = json.loads(response.read())
        self.shutdown()
        raise KeyboardInterrupt

    monkeypatch.setattr(ServingHTTPServer, "serve_forever", serve_once)
    result = runner.invoke(
        serve_command,
        [
            "--model-base-path",
            str(base),
            "--port",
            "0",
            "--rest-api-port",
            "0",
            "--disable-batching",
            "--file-system-poll-wait-seconds",
            "0",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "Loaded lenet (versions 2)" in result.output
    assert "Serving on http://127.0.0.1:" in result.output
    assert "batching off" in result.output
    assert "Shutting down." in result.output
    assert seen["signals"] is True
    assert seen["status"]["model_version_status"][0]["version"] == "2"


def test_sigterm_finishes_in_flight_requests(tmp_path_factory):
    """A real `kerascnn serve` process: SIGTERM while a request runs."""
    import os
    import signal
    import subprocess
    import sys
    import threading

    import numpy as np

    base, _ = exported_lenet(tmp_path_factory)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cli.main",
            "serve",
            "-m",
            str(base / "lenet"),
            "--port",
            "0",
            "--rest-api-port",
            "0",
            "--enable-batching",
            "--batch-timeout-micros",
            "300000",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))),
    )
    try:
        url = None
        for line in process.stdout:
            if line.startswith("Serving on "):
                url = line.split()[2].split("/v1/")[0].rstrip(",")
                break
        assert url, process.stderr.read()[-2000:]
        body = json.dumps(
            {"instances": np.zeros((1, 28, 28, 1)).tolist()}
        ).encode()
        answers = []

        def post():
            request = urllib.request.Request(
                url + "/v1/models/lenet:predict", data=body, method="POST"
            )
            with urllib.request.urlopen(request, timeout=30) as response:
                answers.append((response.status, json.loads(response.read())))

        thread = threading.Thread(target=post)
        thread.start()
        import time

        time.sleep(0.1)  # the request now waits 0.3 s in its batch
        process.send_signal(signal.SIGTERM)
        thread.join(timeout=30)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err[-2000:]
    assert "Shutting down." in out
    assert answers and answers[0][0] == 200
    assert len(answers[0][1]["predictions"]) == 1
