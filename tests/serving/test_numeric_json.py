"""The fast numeric path gives exactly what the general codec gives.

Every body is parsed twice, by `handlers.parse_predict_body` (which takes
`numeric_json`'s fast path when it can) and by the general
`parse_json` + `parse_predict`; arrays, dtypes, row format and error
messages must agree, for plain tensors and for everything the fast path
has to hand back (ragged, unevenly nested, bools, strings, ...).
"""

import json

import numpy as np
import pytest
import tensorflow as tf

from kerascnn.export.layout import Signature
from kerascnn.serving import handlers, numeric_json
from kerascnn.serving.errors import BadRequest


def _signature(name, **inputs):
    specs = {
        n: tf.TensorSpec(shape, dtype, name=n)
        for n, (shape, dtype) in sorted(inputs.items())
    }
    return Signature(name=name, fn=None, inputs=specs, outputs={})


SIGNATURES = {
    "serving_default": _signature(
        "serving_default", x=((None, 2, 2), tf.float32)
    ),
    "ids": _signature("ids", t=((None, 3), tf.int32)),
    "wide": _signature("wide", w=((None, 2), tf.float64)),
    "half": _signature("half", h=((None, 2), tf.float16)),
    "pair": _signature(
        "pair", a=((None, 2), tf.float32), b=((None, 2), tf.float32)
    ),
}

PLAIN = 8  # the first PLAIN bodies are plain tensors
BODIES = [
    # Plain tensors: the fast path.
    b'{"instances": [[[1, 2], [3, 4]], [[5, 6], [7, 8.5]]]}',
    b'{"inputs": [[[1e-45, -0.0], [3.4e38, 1e38]]]}',
    b' {\n "instances" : [ [ [0.1,0.2] , [0.3 ,0.4] ] ] } ',
    b'{"signature_name": "ids", "instances": [[1, 2, 3], [-4, 5, 2147483648]]}',
    b'{"signature_name": "wide", "inputs": [[0.1, 1E-300]]}',
    b'{"signature_name": "half", "instances": [[0.1, 65519]]}',
    b'{"signature_name": "", "instances": [[[1, 2], [3, 4]]]}',
    b'{"instances": [[[1, 2], [3, 4]]], "signature_name": "serving_default"}',
    # Everything the general codec must judge.
    b'{"instances": [[[1, 2], [3]], [[4, 5], [6, 7, 8]]]}',  # same count
    b'{"instances": [[[1, [2]], [3, 4]]]}',
    b'{"instances": [[[true, 2], [3, 4]]]}',
    b'{"instances": [[[null, 2], [3, 4]]]}',
    b'{"instances": [[["1", 2], [3, 4]]]}',
    b'{"instances": [[[{"b64": "AA=="}, 2], [3, 4]]]}',
    b'{"instances": []}',
    b'{"instances": [[]]}',
    b'{"instances": 3}',
    b'{"inputs": 3}',
    b'{"instances": [[[1, 2], [3, 4]]], "inputs": [[[1, 2], [3, 4]]]}',
    b'{"signature_name": "ids", "instances": [[1.5, 2, 3]]}',
    b'{"signature_name": "ids", "instances": [[99999999999999999999, 2, 3]]}',
    b'{"signature_name": "nope", "instances": [[1, 2, 3]]}',
    b'{"signature_name": 7, "instances": [[1, 2, 3]]}',
    b'{"signature_name": "pair", "instances": [{"a": [1, 2], "b": [3, 4]}]}',
    b'{"inputs": {"x": [[[1, 2], [3, 4]]]}}',
    b'{"instances": [[[1, 2], [3, 4]]], "instances": [[[5, 6], [7, 8]]]}',
    b'{"instances": [[[1, 2], [3, 4]]], "extra": 1}',
    b'{"instances": [[[1, 2], [3, 4]]]',
    b'{"signature_name": "serving_default", "instances": [[[1, 2], [3]], '
    b"[[4, 5], [6, 7, 8]]]}",
    b'{"signature_name": "serving\\u005fdefault", "instances": [[[1, 2], '
    b"[3, 4]]]}",
    b'{"signature_name": "ids", "inputs": [[1, 2, 3], [4, 5, 6], [7, 8]]}',
    b"[1, 2]",
    b"",
]


def _general(body):
    request = handlers.parse_json(body)
    return handlers.parse_predict(SIGNATURES, request)


def _outcome(parse, body):
    try:
        signature, feeds, rows = parse(body)
    except BadRequest as e:
        return "error", str(e)
    arrays = {n: (a.dtype.name, a.shape, a.tolist()) for n, a in feeds.items()}
    return signature.name, arrays, rows


@pytest.mark.parametrize("body", BODIES, ids=range(len(BODIES)))
def test_fast_path_answers_exactly_like_the_general_codec(body):
    fast = _outcome(
        lambda b: handlers.parse_predict_body(b, lambda name: SIGNATURES), body
    )
    assert fast == _outcome(_general, body)


@pytest.mark.parametrize("index", range(len(BODIES)))
def test_only_plain_tensors_take_the_fast_path(monkeypatch, index):
    general = []
    parse_json = handlers.parse_json

    def counting(body):
        general.append(body)
        return parse_json(body)

    monkeypatch.setattr(handlers, "parse_json", counting)
    try:
        handlers.parse_predict_body(BODIES[index], lambda name: SIGNATURES)
    except BadRequest:
        pass
    assert (not general) == (index < PLAIN)


def test_plain_tensors_do_not_build_python_lists(monkeypatch):
    def refuse(body):
        raise AssertionError("the general codec was used")

    monkeypatch.setattr(handlers, "parse_json", refuse)
    image = np.random.default_rng(0).random((1, 28, 28, 1)).round(4)
    body = json.dumps({"instances": image.tolist()}).encode()
    signatures = {
        "serving_default": _signature(
            "serving_default", images=((None, 28, 28, 1), tf.float32)
        )
    }
    signature, feeds, rows = handlers.parse_predict_body(
        body, lambda name: signatures
    )
    assert rows and feeds["images"].dtype == np.float32
    np.testing.assert_array_equal(feeds["images"], image.astype(np.float32))


def test_skeleton_is_the_minified_nesting_of_a_shape():
    assert numeric_json.skeleton((2, 3)) == b"[[,,],[,,]]"
    assert numeric_json.skeleton((1, 2, 1)) == b"[[[],[]]]"
    assert numeric_json.skeleton(()) == b""
