"""The REST codec on its own: JSON values to arrays and arrays to JSON.

No server, no HTTP: `kerascnn.serving.handlers` is called directly with
hand-made signatures, so each rule of TF Serving's REST dialect is checked
in isolation (the HTTP tests in test_production.py check it end to end).
"""

import base64
import dataclasses
import json

import numpy as np
import pytest
import tensorflow as tf

from kerascnn.export.layout import Signature
from kerascnn.serving import arrays, handlers, signatures
from kerascnn.serving.errors import BadRequest


def _signature(name="serving_default", fn=None, **inputs):
    specs = {
        n: tf.TensorSpec(shape, dtype, name=n)
        for n, (shape, dtype) in sorted(inputs.items())
    }
    return Signature(name=name, fn=fn, inputs=specs, outputs={})


IMAGE = _signature(x=((None, 2, 2), tf.float32))
PAIR = _signature("pair", ids=((None, 3), tf.int32), text=((None,), tf.string))
SIGNATURES = {"serving_default": IMAGE, "pair": PAIR}


def _parse(body):
    return handlers.parse_predict(SIGNATURES, body)


# === Routes ===


@pytest.mark.parametrize(
    "method, path, expected",
    [
        ("GET", "/v1/models/lenet", ("lenet", None, "status")),
        ("GET", "/v1/models/lenet/versions/3", ("lenet", 3, "status")),
        ("GET", "/v1/models/lenet/metadata", ("lenet", None, "metadata")),
        (
            "POST",
            "/v1/models/lenet/versions/12:predict",
            ("lenet", 12, "predict"),
        ),
        ("POST", "/v1/models/le%6Eet:predict", ("lenet", None, "predict")),
    ],
)
def test_routes_parse_name_version_and_kind(method, path, expected):
    route = handlers.parse_route(method, path)
    assert (route.name, route.version, route.kind) == expected


@pytest.mark.parametrize(
    "method, path, expected",
    [
        ("GET", "/V1/MODELS/lenet/Metadata", ("lenet", None, "metadata")),
        ("GET", "/v1/models/lenet/labels/stable", ("lenet", None, "status")),
        ("POST", "/v1/models/lenet:classify", ("lenet", None, "classify")),
        (
            "POST",
            "/v1/models/lenet/versions/2:regress",
            ("lenet", 2, "regress"),
        ),
    ],
)
def test_routes_follow_tf_servings_grammar(method, path, expected):
    route = handlers.parse_route(method, path)
    assert (route.name, route.version, route.kind) == expected
    assert route.label == ("stable" if "labels" in path else None)


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/v1/models/lenet/versions/%C2%B2"),
        ("GET", "/v1/models/lenet/versions/1.0"),
        ("GET", "/v1/models/lenet/"),
        ("GET", "/v2/models/lenet"),
        ("POST", "/v1/models/lenet:explain"),
        ("GET", "/v1/models/lenet:predict"),
        ("POST", "/v1/models/lenet"),
        ("DELETE", "/v1/models/lenet"),
    ],
)
def test_paths_outside_the_grammar_are_malformed_requests(method, path):
    """TF Serving's `400 Malformed request: <METHOD> <path>`."""
    with pytest.raises(BadRequest) as caught:
        handlers.parse_route(method, path)
    assert str(caught.value) == f"Malformed request: {method} {path}"


def test_missing_model_name_and_huge_version_are_bad_requests():
    with pytest.raises(BadRequest, match="Missing model name in request."):
        handlers.parse_route("GET", "/v1/models")
    with pytest.raises(BadRequest, match="Failed to convert version"):
        handlers.parse_route("GET", "/v1/models/m/versions/" + "9" * 20)


# === Requests to arrays ===


def test_row_and_columnar_forms_give_the_same_float32_array():
    rows = _parse({"instances": [[[1, 2], [3, 4]], [[5, 6], [7, 8.5]]]})
    columns = _parse({"inputs": [[[1, 2], [3, 4]], [[5, 6], [7, 8.5]]]})
    (sig_r, feeds_r, row_r), (sig_c, feeds_c, row_c) = rows, columns
    assert sig_r is sig_c is IMAGE and row_r and not row_c
    for feeds in (feeds_r, feeds_c):
        assert feeds["x"].dtype == np.float32 and feeds["x"].shape == (2, 2, 2)
        np.testing.assert_array_equal(feeds["x"][1, 1], [7.0, 8.5])


def test_named_instances_become_one_column_per_input():
    payload = b"\x00\xff binary"
    _, feeds, _ = _parse(
        {
            "signature_name": "pair",
            "instances": [
                {"ids": [1, 2, 3], "text": "hello"},
                {
                    "ids": [4, 5, 6],
                    "text": {"b64": base64.b64encode(payload).decode()},
                },
            ],
        }
    )
    assert feeds["ids"].dtype == np.int32
    np.testing.assert_array_equal(feeds["ids"], [[1, 2, 3], [4, 5, 6]])
    assert feeds["text"].dtype == object
    assert list(feeds["text"]) == [b"hello", payload]


@pytest.mark.parametrize(
    "body, text",
    [
        ({"instances": [[[1, 2], [3, 4]]], "inputs": []}, "not both"),
        ({"signature_name": "nope", "instances": [1]}, "'nope' not found"),
        (
            {"signature_name": 3, "instances": [1]},
            "'signature_name' key must be a string value.",
        ),
        ({}, "Missing 'instances'"),
        ({"instances": []}, "'instances' is empty"),
        ({"instances": {"x": 1}}, "must be a list"),
        ({"instances": [[[1, 2], [3]]]}, "not a rectangular array"),
        ({"instances": [[["a", "b"], ["c", "d"]]]}, "received text"),
        (
            {
                "signature_name": "pair",
                "instances": [{"ids": [1.5, 2, 3], "text": "a"}],
            },
            "'ids' expects int32 values; received float64",
        ),
        (
            {"signature_name": "pair", "instances": [{"ids": [1, 2, 3]}]},
            "missing ['text']",
        ),
        (
            {
                "signature_name": "pair",
                "instances": [{"ids": [1, 2, 3], "text": "a", "z": 1}],
            },
            "unknown ['z']",
        ),
        (
            {
                "signature_name": "pair",
                "inputs": {"ids": [[1, 2, 3]], "text": [{"b64": "@@"}]},
            },
            "invalid base64",
        ),
        (
            {
                "signature_name": "pair",
                "inputs": {"ids": [[1, 2, 3]], "text": [7]},
            },
            "expects strings",
        ),
    ],
)
def test_bad_requests_name_the_problem(body, text):
    with pytest.raises(BadRequest) as caught:
        _parse(body)
    assert text in str(caught.value)


def test_json_errors_are_bad_requests_not_crashes():
    with pytest.raises(BadRequest, match="Malformed JSON"):
        handlers.parse_json(b'{"instances": [1,')
    with pytest.raises(BadRequest, match="Malformed JSON"):
        handlers.parse_json(b"\xff\xfe")
    with pytest.raises(BadRequest, match="nested too deeply"):
        handlers.parse_json(b"[" * 5000 + b"]" * 5000)
    with pytest.raises(BadRequest, match="must be a JSON object"):
        handlers.parse_json(b"[1, 2]")
    assert handlers.parse_json(b'{"instances": [1]}') == {"instances": [1]}


def test_api_arrays_are_checked_like_json():
    feeds = arrays.check_arrays(
        PAIR, {"ids": np.array([[1, 2, 3]], np.int64), "text": ["a"]}
    )
    assert feeds["ids"].dtype == np.int32 and feeds["text"].dtype == object
    with pytest.raises(
        BadRequest, match="expects int32 values; received float32"
    ):
        arrays.check_arrays(
            PAIR, {"ids": np.zeros((1, 3), np.float32), "text": ["a"]}
        )
    feeds = arrays.check_arrays(PAIR, {"ids": [[1, 2]], "text": ["a"]})
    with pytest.raises(BadRequest, match=r"expects shape \(-1, 3\)"):
        arrays.check_shapes(PAIR, feeds)


def test_shapes_are_checked_apart_from_values():
    """Parsing keeps any rectangular shape (a TF1 graph model lets
    TensorFlow judge it); `check_shapes` refuses what does not fit."""
    _, feeds, _ = _parse({"instances": [[1, 2]]})
    assert feeds["x"].shape == (1, 2)
    with pytest.raises(BadRequest) as caught:
        arrays.check_shapes(IMAGE, feeds)
    assert str(caught.value) == (
        "input 'x' expects shape (-1, 2, 2); received (1, 2)."
    )


# === Arrays to answers ===


def test_float32_outputs_are_written_in_their_shortest_form():
    array = np.array([[0.1, 1 / 3, 1e-8]], np.float32)
    value = handlers.to_json_value(array)
    assert json.dumps(value) == "[[0.1, 0.33333334, 1e-08]]"
    # Parsing the text back gives the same float32 bits.
    np.testing.assert_array_equal(np.array(value, np.float32), array)


def test_only_outputs_named_bytes_are_base64():
    raw = np.array([b"caf\xc3\xa9", b"\xff\x00"], dtype=object)
    as_text = handlers.to_json_value(raw, "text")
    as_b64 = handlers.to_json_value(raw, "image_bytes")
    assert as_text[0] == "caf\u00e9"
    assert [base64.b64decode(v["b64"]) for v in as_b64] == list(raw)


def test_rows_zip_outputs_and_columns_keep_them_apart():
    outputs = {
        "classes": np.array([3, 7], np.int64),
        "probabilities": np.array([[0.25, 0.75], [1.0, 0.0]], np.float32),
    }
    rows = handlers.format_predict(outputs, row_format=True)
    assert rows == {
        "predictions": [
            {"classes": 3, "probabilities": [0.25, 0.75]},
            {"classes": 7, "probabilities": [1.0, 0.0]},
        ]
    }
    columns = handlers.format_predict(outputs, row_format=False)
    assert columns == {
        "outputs": {
            "classes": [3, 7],
            "probabilities": [[0.25, 0.75], [1.0, 0.0]],
        }
    }
    single = handlers.format_predict({"y": outputs["classes"]}, row_format=True)
    assert single == {"predictions": [3, 7]}


@pytest.mark.parametrize("row_format", [True, False])
def test_numpy_numbers_write_the_same_json_as_lists(row_format):
    rng = np.random.default_rng(0)
    scale = 10.0 ** rng.integers(-30, 30, (64, 10))
    outputs = {
        "class_ids": np.arange(64, dtype=np.int64) - 3,
        "class_names": np.array([str(i).encode() for i in range(64)], object),
        "probabilities": (rng.standard_normal((64, 10)) * scale).astype(
            np.float32
        ),
        "flags": np.arange(64) % 3 == 0,
        "half": np.full((64, 2), 0.1, np.float16),
    }
    as_lists = handlers.format_predict(outputs, row_format)
    as_numpy = handlers.format_predict(outputs, row_format, numpy_numbers=True)
    written = handlers.dumps(as_numpy)
    assert json.loads(written) == json.loads(handlers.dumps(as_lists))
    # Every float32 comes back with the same bits (shortest form).
    parsed = json.loads(written)
    if row_format:
        back = [row["probabilities"] for row in parsed["predictions"]]
    else:
        back = parsed["outputs"]["probabilities"]
    np.testing.assert_array_equal(
        np.array(back, np.float32), outputs["probabilities"]
    )


def test_routes_are_parsed_once_per_path():
    handlers.parse_route.cache_clear()
    first = handlers.parse_route("POST", "/v1/models/cached:predict")
    again = handlers.parse_route("POST", "/v1/models/cached:predict")
    assert again is first and handlers.parse_route.cache_info().hits == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.name = "other"  # shared between requests: read-only


def test_outputs_without_a_shared_batch_cannot_be_rows():
    outputs = {"a": np.zeros((2, 3)), "b": np.zeros((5,))}
    with pytest.raises(BadRequest, match="columnar format"):
        handlers.format_predict(outputs, row_format=True)


def test_signature_errors_from_tensorflow_are_bad_requests():
    @tf.function(input_signature=[tf.TensorSpec((None,), tf.string)])
    def decode(images):
        return {
            "pixels": tf.map_fn(
                lambda b: tf.shape(tf.io.decode_png(b)),
                images,
                fn_output_signature=tf.int32,
            )
        }

    signature = Signature(
        name="decode",
        fn=lambda images: decode(images),
        inputs={"images": tf.TensorSpec((None,), tf.string, name="images")},
        outputs={},
    )
    with pytest.raises(BadRequest) as caught:
        signatures.run_signature(
            signature, {"images": np.array([b"not a png"], object)}
        )
    message = str(caught.value)
    assert message.startswith("Signature 'decode' rejected the input:")
    assert "\n" not in message and "{{" not in message
