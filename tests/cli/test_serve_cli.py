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

    def serve_once(self):
        # Stand-in for serve_forever: answer one real request, then Ctrl-C.
        import threading

        thread = threading.Thread(target=self.handle_request, daemon=True)
        thread.start()
        with urllib.request.urlopen(
            self.url + "/v1/models/lenet", timeout=30
        ) as response:
            seen["status"] = json.loads(response.read())
        thread.join(timeout=10)
        raise KeyboardInterrupt

    monkeypatch.setattr(ServingHTTPServer, "serve_forever", serve_once)
    result = runner.invoke(
        serve_command, ["--model-base-path", str(base), "--port", "0"]
    )
    assert result.exit_code == 0, result.output
    assert "Loaded lenet (versions 2)" in result.output
    assert "Serving on http://127.0.0.1:" in result.output
    assert "Shutting down." in result.output
    assert seen["status"]["model_version_status"][0]["version"] == "2"
