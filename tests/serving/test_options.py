"""`ServeOptions`: the one home of every server default and its check."""

import dataclasses
import inspect

import pytest

from cli.serve_cli import serve_command
from kerascnn.serving import DEFAULTS, ModelServer, ServeOptions, make_server
from kerascnn.serving.app import MAX_BODY
from kerascnn.serving.errors import ServingError
from kerascnn.serving.grpc_service import GrpcServer


def test_every_option_is_a_serve_flag_with_the_same_default():
    params = {p.name: p for p in serve_command.params}
    for field in dataclasses.fields(ServeOptions):
        assert field.name in params, field.name
        assert params[field.name].default == field.default, field.name
    assert set(params) == {f.name for f in dataclasses.fields(ServeOptions)}


def _default(function, name):
    return inspect.signature(function).parameters[name].default


@pytest.fixture(scope="module")
def half_plus_two(tmp_path_factory):
    from tests.serving.half_plus_two import write_half_plus_two

    base = tmp_path_factory.mktemp("hp2_options")
    write_half_plus_two(base)
    return base


def test_the_library_takes_its_defaults_from_serve_options(half_plus_two):
    assert _default(ModelServer, "options") is None  # DEFAULTS
    assert _default(make_server, "options") is None
    options = dataclasses.replace(
        DEFAULTS,
        model_base_path=half_plus_two,
        model_name="default",
        file_system_poll_wait_seconds=0,
        rest_api_port=0,
    )
    http = make_server(options)
    server = http.model_server
    try:
        assert server.options is options
        assert server.scheduler.max_queued_requests == 1024
        assert server.scheduler.max_queued_requests == (
            DEFAULTS.max_queued_requests
        )
        assert server.request_timeout == DEFAULTS.request_timeout_seconds
        assert server.versions.load_retry_interval == 60.0
        assert server.versions.version_policy == "latest"
        assert server.batching is None
        assert server.budget.max_request_rows == DEFAULTS.max_request_rows
        assert server.bodies.limit == DEFAULTS.max_inflight_body_bytes
        assert http.app[MAX_BODY] == DEFAULTS.max_body_bytes
        assert http.idle_timeout == DEFAULTS.idle_timeout_seconds
        assert http.max_connections == DEFAULTS.max_connections
    finally:
        http.server_close()
    assert _default(GrpcServer, "max_message_bytes") == (
        DEFAULTS.grpc_max_message_bytes
    )
    assert _default(GrpcServer, "port") == DEFAULTS.port == 8500


@pytest.mark.parametrize(
    "change, message",
    [
        ({"port": 70000}, "`port` must be a port number from 0 to 65535"),
        ({"max_body_bytes": 0}, "max_body_bytes"),
        ({"request_timeout_seconds": 0}, "request_timeout_seconds"),
        ({"file_system_poll_wait_seconds": -1}, "file_system_poll_wait"),
    ],
)
def test_bad_settings_are_one_line(change, message):
    with pytest.raises(ServingError, match=message) as e:
        ServeOptions(**change).validate()
    assert "\n" not in str(e.value)


def test_batching_parameters_from_the_options():
    assert ServeOptions().batching() is None
    batching = ServeOptions(enable_batching=True, max_batch_size=8).batching()
    assert batching.enabled and batching.max_batch_size == 8


def test_model_server_reads_its_options(half_plus_two):
    options = ServeOptions(
        model_base_path=half_plus_two,
        model_name="default",
        file_system_poll_wait_seconds=0,
        all_versions=True,
        load_retry_interval_micros=2_000_000,
        enable_batching=True,
        max_batch_size=8,
        max_request_rows=7,
    )
    with ModelServer(options) as server:
        assert server.versions.version_policy == "all"
        assert server.versions.load_retry_interval == 2.0
        assert server.batching.enabled
        assert server.batching.max_batch_size == 8
        assert server.budget.max_request_rows == 7
        assert list(server.models()) == ["default"]
    assert ServeOptions(cors_allowed_origins=" a, b ,").cors_origins() == [
        "a",
        "b",
    ]
