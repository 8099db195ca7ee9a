"""Writes TF Serving's test model the way TF Serving writes it: a TF1 graph.

    python -m tests.serving.half_plus_two OUTPUT_DIR   # OUTPUT_DIR/00000123/

A `tf.compat.v1` graph saved with `SavedModelBuilder`, as TF Serving's
`saved_model_half_plus_two.py` builds `saved_model_half_plus_two_cpu`:
variables `a = 0.5`, `b = 2`, `c = 3`; a string placeholder `tf_example`
parsed as `tf.Example`s with features `x` (required) and `x2` (default
0); `y = a*x + b`, `y2 = a*x + c`, `y3 = a*x2 + c`. Signatures:

    serving_default    predict   x -> y   (x has shape (-1, 1))
    classify_x_to_y    classify  inputs (serialized examples) -> scores
    regress_x_to_y     regress   inputs -> outputs (y)
    regress_x_to_y2    regress   inputs -> outputs (y2)
    regress_x2_to_y3   regress   x2 (a float tensor) -> outputs (y3)

The version folder is zero-padded (`00000123`), as in TF Serving's
testdata, so serving it exercises version 123 found by its real name.
Written with TensorFlow's own APIs only; nothing is copied.
"""

import os
import sys

VERSION_FOLDER = "00000123"
VERSION = 123


def _info(tf1, tensor):
    return tf1.saved_model.utils.build_tensor_info(tensor)


def _signature(tf1, inputs, outputs, method):
    return tf1.saved_model.signature_def_utils.build_signature_def(
        {k: _info(tf1, t) for k, t in inputs.items()},
        {k: _info(tf1, t) for k, t in outputs.items()},
        method,
    )


def write_half_plus_two(base_dir, version_folder=VERSION_FOLDER):
    """Writes the SavedModel to `base_dir/version_folder`; returns its path."""
    import tensorflow as tf

    tf1 = tf.compat.v1
    constants = tf1.saved_model.signature_constants
    path = os.path.join(os.fspath(base_dir), version_folder)
    builder = tf1.saved_model.builder.SavedModelBuilder(path)
    with tf.Graph().as_default(), tf1.Session() as session:
        a = tf1.Variable(0.5, name="a")
        b = tf1.Variable(2.0, name="b")
        c = tf1.Variable(3.0, name="c")
        serialized = tf1.placeholder(tf.string, name="tf_example")
        features = tf1.io.parse_example(
            serialized,
            {
                "x": tf1.io.FixedLenFeature([1], tf.float32),
                "x2": tf1.io.FixedLenFeature([1], tf.float32, [0.0]),
            },
        )
        for name in ("x", "x2"):  # as TF1's parse_example inferred them
            features[name].set_shape([None, 1])
        x = tf.identity(features["x"], name="x")
        y = tf.identity(a * x + b, name="y")
        y2 = tf.identity(a * x + c, name="y2")
        x2 = tf.identity(features["x2"], name="x2")
        y3 = tf.identity(a * x2 + c, name="y3")
        signatures = {
            constants.DEFAULT_SERVING_SIGNATURE_DEF_KEY: _signature(
                tf1, {"x": x}, {"y": y}, constants.PREDICT_METHOD_NAME
            ),
            "classify_x_to_y": _signature(
                tf1,
                {constants.CLASSIFY_INPUTS: serialized},
                {constants.CLASSIFY_OUTPUT_SCORES: y},
                constants.CLASSIFY_METHOD_NAME,
            ),
            "regress_x_to_y": _signature(
                tf1,
                {constants.REGRESS_INPUTS: serialized},
                {constants.REGRESS_OUTPUTS: y},
                constants.REGRESS_METHOD_NAME,
            ),
            "regress_x_to_y2": _signature(
                tf1,
                {constants.REGRESS_INPUTS: serialized},
                {constants.REGRESS_OUTPUTS: y2},
                constants.REGRESS_METHOD_NAME,
            ),
            "regress_x2_to_y3": _signature(
                tf1,
                {constants.REGRESS_INPUTS: x2},
                {constants.REGRESS_OUTPUTS: y3},
                constants.REGRESS_METHOD_NAME,
            ),
        }
        session.run(tf1.global_variables_initializer())
        builder.add_meta_graph_and_variables(
            session,
            [tf1.saved_model.tag_constants.SERVING],
            signature_def_map=signatures,
        )
    builder.save()
    return path


if __name__ == "__main__":
    print(write_half_plus_two(sys.argv[1] if len(sys.argv) > 1 else "."))
