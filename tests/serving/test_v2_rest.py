"""The v2 REST codec without a server: bodies in, tensors or errors out.

`rest.load_header` reads numeric `data` through simdjson; every body
here is parsed with it and without it (the general path), and both must
give the same tensors or the same error.
"""

import json
import struct

import numpy as np
import pytest

from kerascnn.serving.errors import BadRequest
from kerascnn.serving.v2 import rest


def tensor(datatype, shape, data):
    return {"name": "x", "datatype": datatype, "shape": shape, "data": data}


BODIES = [
    tensor("FP32", [2, 2], [0.1, 2, 3e-3, -4.5]),
    tensor("FP32", [2, 2], [[0.1, 2], [3e-3, -4.5]]),
    tensor("FP32", [2, 2], [[0.1, 2, 3e-3], [-4.5]]),  # ragged, Triton-like
    tensor("FP64", [1], [1e300]),
    tensor("FP16", [2], [0.5, 1]),
    tensor("INT64", [3], [1, -2, 2**62]),
    tensor("INT32", [2], [1, 2.5]),
    tensor("INT64", [1], [True]),
    tensor("BOOL", [2], [True, False]),
    tensor("BYTES", [2], ["a", "\u00e9"]),
    tensor("FP32", [0], []),
    tensor("FP32", [1], [None]),
    tensor("FP32", [2], "12"),
    tensor("UINT8", [2], [1, 255]),
    tensor("FP32", [2], [1, 1e39]),  # out of float32's range: refused
]


def _parse(body, fast, monkeypatch):
    if not fast:
        monkeypatch.setattr(rest, "simdjson", None)
    raw = json.dumps(body).encode() if not isinstance(body, bytes) else body
    try:
        request, binary, default = rest.parse_infer("m", "", raw)
    except BadRequest as e:
        return "error", str(e)
    finally:
        monkeypatch.undo()
    return "ok", request


def _arrays(request):
    import tensorflow as tf

    from kerascnn.serving.v2 import tensors

    out = []
    for t in request.inputs:
        dtype = "string" if t.datatype == "BYTES" else None
        if dtype is None:
            name = next(
                k for k, v in tensors.DATATYPES.items() if v == t.datatype
            )
            dtype = name
        spec = tf.TensorSpec(None, tf.dtypes.as_dtype(dtype))
        try:
            out.append(tensors.to_array(t, spec))
        except BadRequest as e:
            out.append(("error", str(e)))
    return out


@pytest.mark.parametrize("entry", BODIES, ids=lambda e: json.dumps(e)[:60])
def test_simdjson_and_the_general_path_agree(entry, monkeypatch):
    body = {"inputs": [entry], "parameters": {"binary_data_output": True}}

    fast = _parse(body, True, monkeypatch)
    slow = _parse(body, False, monkeypatch)

    assert fast[0] == slow[0]
    if fast[0] == "error":
        assert fast[1] == slow[1]
        return
    got, expected = _arrays(fast[1]), _arrays(slow[1])
    for a, b in zip(got, expected):
        if isinstance(b, tuple):
            assert a == b
        else:
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(a, b)


def test_numbers_take_the_fast_path():
    body = json.dumps({"inputs": [tensor("FP32", [3], [1, 2.5, 3])]})
    request, _, _ = rest.parse_infer("m", "", body.encode())
    values = request.inputs[0].values
    assert request.inputs[0].data is None
    assert values.dtype == np.float32
    assert values.tolist() == [1.0, 2.5, 3.0]


@pytest.mark.parametrize(
    "body, message",
    [
        (b"[1, 2]", "must be a JSON object"),
        (b"{", "JSON Parse error"),
        (b'{"inputs": {}}', "'inputs' must be a list"),
        (b'{"inputs": [{"datatype": "FP32"}]}', "needs a 'name'"),
        (
            b'{"inputs": [{"name": "x", "datatype": "F32", "shape": [1]}]}',
            "unknown datatype 'F32'",
        ),
        (
            b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [-1],'
            b' "data": [1]}]}',
            "negative dimension",
        ),
        (
            b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1]}]}',
            "neither 'data' nor",
        ),
        (
            b'{"inputs": [], "outputs": [{"name": "y", "parameters": '
            b'{"binary_data": 1}}]}',
            "'binary_data' must be a boolean",
        ),
        (b'{"inputs": [], "id": 3}', "'id' must be a string"),
    ],
)
def test_malformed_bodies_are_one_line_errors(body, message):
    with pytest.raises(BadRequest, match=message):
        rest.parse_infer("m", "", body)


def test_binary_inputs_are_cut_in_order_and_outputs_flagged():
    head = json.dumps(
        {
            "inputs": [
                {
                    "name": "a",
                    "datatype": "FP32",
                    "shape": [2],
                    "parameters": {"binary_data_size": 8},
                },
                {
                    "name": "b",
                    "datatype": "BYTES",
                    "shape": [1],
                    "parameters": {"binary_data_size": 6},
                },
            ],
            "outputs": [
                {"name": "p", "parameters": {"binary_data": False}},
                {"name": "q"},
            ],
            "parameters": {"binary_data_output": True},
        }
    ).encode()
    raw = np.array([1.5, -2], "<f4").tobytes() + struct.pack("<I", 2) + b"hi"

    request, binary, default = rest.parse_infer(
        "m", "3", head + raw, str(len(head))
    )

    assert request.version == "3"
    assert bytes(request.inputs[0].raw) == raw[:8]
    assert bytes(request.inputs[1].raw) == raw[8:]
    assert request.outputs == ["p", "q"]
    assert binary == {"p": False, "q": True} and default is True
