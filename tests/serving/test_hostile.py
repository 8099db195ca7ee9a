"""Hostile HTTP clients are cut off in bounded time; others keep being served.

Raw sockets on 127.0.0.1 against a server with short timeouts (the
defaults are 75 s idle / incomplete headers and 60 s for a body): slow
headers sent byte by byte, a body shorter than its Content-Length, an
oversized header. Deeply nested JSON is covered in test_production.py.
"""

import json
import socket
import time
import urllib.request

import pytest

from kerascnn.serving import ServeOptions, make_server
from tests.serving.half_plus_two import write_half_plus_two

IDLE_TIMEOUT = 2.0
BODY_TIMEOUT = 1.0


@pytest.fixture(scope="module")
def http(tmp_path_factory):
    base = tmp_path_factory.mktemp("hp2_hostile")
    write_half_plus_two(base)
    options = ServeOptions(
        model_base_path=base,
        model_name="default",
        file_system_poll_wait_seconds=0,
        rest_api_port=0,
        idle_timeout_seconds=IDLE_TIMEOUT,
        body_timeout_seconds=BODY_TIMEOUT,
    )
    server = make_server(options).start()
    yield server
    server.shutdown()
    server.server_close()


def _connect(server):
    host, port = server.server_address
    sock = socket.create_connection((host, port), timeout=30)
    return sock


def _read_all(sock):
    chunks = []
    while True:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def _predict_ok(server):
    request = urllib.request.Request(
        server.url + "/v1/models/default:predict", b'{"instances": [2.0]}'
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read()) == {"predictions": [3.0]}


def test_slow_headers_are_cut_off_and_others_are_served(http):
    socks = [_connect(http) for _ in range(100)]
    started = time.monotonic()
    for sock in socks:
        sock.sendall(b"POST /v1/models/default:predict HTTP/1.1\r\nHo")
    assert _predict_ok(http)  # while 100 clients hold half a request
    for sock in socks:
        sock.sendall(b"s")  # still trickling
    closed = [_read_all(sock) for sock in socks]
    elapsed = time.monotonic() - started
    assert all(b"200 OK" not in c for c in closed)
    assert elapsed < IDLE_TIMEOUT + 10
    for sock in socks:
        sock.close()
    assert _predict_ok(http)


def test_body_shorter_than_its_content_length_is_408(http):
    sock = _connect(http)
    started = time.monotonic()
    sock.sendall(
        b"POST /v1/models/default:predict HTTP/1.1\r\nHost: x\r\n"
        b"Content-Length: 1000\r\n\r\n"
        b'{"instances": [2.0]}'
    )
    answer = _read_all(sock)
    sock.close()
    elapsed = time.monotonic() - started
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408")
    assert b"did not arrive within 1 s (1000 bytes announced)" in body
    assert elapsed < BODY_TIMEOUT + 10


def test_oversized_header_is_refused_at_once(http):
    sock = _connect(http)
    started = time.monotonic()
    sock.sendall(
        b"GET /v1/models/default HTTP/1.1\r\nHost: x\r\nX-Big: "
        + b"a" * 100_000
        + b"\r\n\r\n"
    )
    answer = _read_all(sock)
    sock.close()
    assert answer.split(b" ", 2)[1] in (b"400", b"431")
    assert time.monotonic() - started < 10
    assert _predict_ok(http)


def test_malformed_grpc_message_is_an_error_not_a_crash(http):
    import grpc

    from kerascnn.serving.grpc_service import GrpcServer

    server = GrpcServer(http.model_server, "127.0.0.1", 0).start()
    try:
        channel = grpc.insecure_channel(server.address)
        predict = channel.unary_unary(
            "/tensorflow.serving.PredictionService/Predict",
            request_serializer=lambda raw: raw,
            response_deserializer=lambda raw: raw,
        )
        started = time.monotonic()
        with pytest.raises(grpc.RpcError) as error:
            predict(b"\xff\xff\xff\xff not a protobuf", timeout=30)
        assert error.value.code() in (
            grpc.StatusCode.INTERNAL,
            grpc.StatusCode.INVALID_ARGUMENT,
        )
        assert time.monotonic() - started < 10
        channel.close()
    finally:
        server.stop(0)
    assert _predict_ok(http)
