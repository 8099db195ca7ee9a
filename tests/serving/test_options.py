"""`ServeOptions`: the one home of every server default and its check."""

import dataclasses
import inspect

import pytest

from cli.serve_cli import serve_command
from kerascnn.serving import DEFAULTS, ModelServer, ServeOptions, make_server
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


def test_the_library_takes_its_defaults_from_serve_options():
    assert _default(ModelServer, "max_queued_requests") == 1024
    assert _default(ModelServer, "max_queued_requests") == (
        DEFAULTS.max_queued_requests
    )
    assert _default(ModelServer, "request_timeout") == (
        DEFAULTS.request_timeout_seconds
    )
    assert _default(ModelServer, "load_retry_interval") == 60.0
    assert _default(make_server, "max_body_bytes") == DEFAULTS.max_body_bytes
    assert _default(make_server, "port") == DEFAULTS.rest_api_port
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


def test_model_server_keywords():
    kwargs = ServeOptions(
        all_versions=True, load_retry_interval_micros=2_000_000
    ).model_server_kwargs()
    assert kwargs["version_policy"] == "all"
    assert kwargs["load_retry_interval"] == 2.0
    assert ServeOptions(cors_allowed_origins=" a, b ,").cors_origins() == [
        "a",
        "b",
    ]
