"""TF Serving's example clients, their logic reimplemented, against
`kerascnn serve` (the CLI, in a subprocess) on a LeNet trained on real
MNIST (tests/serving/trained.py).

Each client does what TF Serving's does, with only the model, signature,
input and output names set for this model (and the channel axis a
one-channel digit needs, since PIL decodes it as `(28, 28)`):

- `mnist_client.py`: concurrent `Predict.future` calls with callbacks and
  a throttle, `make_tensor_proto(image, shape=[1, ...])`, the answer read
  from `outputs[...].float_val` and `argmax`ed into an error rate;
- `resnet_client_grpc.py`: an image file opened with PIL, `/ 255.0`,
  batched, `make_tensor_proto(data)` (which sends `tensor_content`),
  `outputs[...].float_val`; and its JPEG-bytes variant (`shape=[1]`
  string input), read from `int64_val` and `string_val`;
- `resnet_client.py`: `requests.post` of `{"instances": ...}` (the image
  tensor, or `{"b64": ...}` bytes), `response.json()["predictions"][0]`.

Every client must get exactly the predictions the SavedModel gives in
process, and the error rate on real test digits must be that of the
model (about 3% for this 2-epoch LeNet; TF Serving's own example asserts
nothing tighter).
"""

import base64
import io
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

from tests.serving import trained

grpc = pytest.importorskip("grpc")

N_DIGITS = 300
MAX_ERROR = 0.05
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))


@pytest.fixture(scope="module")
def base(data_dir, tmp_path_factory):
    return trained.exported_models(data_dir, tmp_path_factory)


@pytest.fixture(scope="module")
def serve(base):
    """`(grpc host:port, REST url)` of a `kerascnn serve` process."""
    command = [
        sys.executable, "-m", "cli.main", "serve", "-m", str(base),
        "--port", "0", "--rest-api-port", "0", "--no-ui",
        "--file-system-poll-wait-seconds", "0", "--enable-batching",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    grpc_address = url = None
    for line in process.stdout:
        if line.startswith("gRPC (TF Serving's API) on "):
            grpc_address = line.rsplit(" ", 1)[1].strip()
        if line.startswith("Serving on "):
            url = line.split()[2].split("/v1/")[0]
            break
    try:
        assert grpc_address and url, "kerascnn serve did not start"
        yield grpc_address, url
    finally:
        process.terminate()
        process.wait(timeout=60)


@pytest.fixture(scope="module")
def digits(data_dir, base):
    """`(uint8 pixels, labels, PNG files' bytes, in-process predictions)`."""
    import tensorflow as tf

    x, y = trained.mnist_split(data_dir, "test")
    x, y = x[:N_DIGITS], y[:N_DIGITS]
    pngs = [tf.io.encode_png(d).numpy() for d in x]
    model = tf.saved_model.load(os.path.join(str(base), "lenet", "1"))
    probabilities = model.signatures["serving_default"](
        images=tf.constant(x / 255.0, tf.float32)
    )["probabilities"]
    return x, y, pngs, np.argmax(probabilities.numpy(), axis=-1)


def _stub(address):
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    channel = grpc.insecure_channel(address)
    return prediction_service_pb2_grpc.PredictionServiceStub(channel)


def _check(predicted, labels, expected):
    predicted = np.asarray(predicted)
    np.testing.assert_array_equal(predicted, expected)
    assert np.mean(predicted != labels) <= MAX_ERROR


# === mnist_client.py ===


class ResultCounter:
    """The client's counter: errors, done, and a concurrency throttle."""

    def __init__(self, num_tests, concurrency):
        self.num_tests, self.concurrency = num_tests, concurrency
        self.error = self.done = self.active = 0
        self.predictions = {}
        self.condition = threading.Condition()

    def throttle(self):
        with self.condition:
            while self.active == self.concurrency:
                self.condition.wait()
            self.active += 1

    def finish(self, index, prediction, wrong):
        with self.condition:
            self.predictions[index] = prediction
            self.error += int(wrong)
            self.done += 1
            self.active -= 1
            self.condition.notify_all()

    def error_rate(self):
        with self.condition:
            while self.done != self.num_tests:
                self.condition.wait(timeout=60)
            return self.error / float(self.num_tests)


def test_mnist_client_logic(serve, digits):
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    x, y, _, expected = digits
    stub = _stub(serve[0])
    counter = ResultCounter(len(x), concurrency=8)

    def callback(index, label):
        def done(future):
            if future.exception():
                counter.finish(index, -1, True)
                return
            scores = np.array(
                future.result().outputs["probabilities"].float_val
            )
            prediction = int(np.argmax(scores))
            counter.finish(index, prediction, label != prediction)

        return done

    for index, (image, label) in enumerate(zip(x / 255.0, y)):
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "lenet"
        request.inputs["images"].CopyFrom(
            tf.make_tensor_proto(
                image.astype(np.float32), shape=[1, *image.shape]
            )
        )
        counter.throttle()
        future = stub.Predict.future(request, 30.0)
        future.add_done_callback(callback(index, int(label)))
    rate = counter.error_rate()
    predicted = [counter.predictions[i] for i in range(len(x))]
    _check(predicted, y, expected)
    assert rate == np.mean(np.asarray(predicted) != y)


# === resnet_client_grpc.py ===


def test_resnet_client_grpc_logic_image_tensor(serve, digits):
    import tensorflow as tf
    from PIL import Image
    from tensorflow_serving.apis import predict_pb2

    _, y, pngs, expected = digits
    stub = _stub(serve[0])
    predicted = []
    for png in pngs:
        data = Image.open(io.BytesIO(png))
        data = np.array(data) / 255.0
        data = np.expand_dims(data, 0)[..., None]  # + the channel axis
        data = data.astype(np.float32)
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "lenet"
        request.model_spec.signature_name = "serving_default"
        request.inputs["images"].CopyFrom(tf.make_tensor_proto(data))
        result = stub.Predict(request, 10.0)
        result = result.outputs["probabilities"].float_val
        assert len(result) == 10
        predicted.append(int(np.argmax(result)))
    _check(predicted, y, expected)


def test_resnet_client_grpc_logic_jpeg_bytes(serve, digits):
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    _, y, pngs, expected = digits
    stub = _stub(serve[0])
    ids, names = [], []
    for png in pngs[:100]:
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "lenet"
        request.model_spec.signature_name = "predict_images"
        request.inputs["images"].CopyFrom(tf.make_tensor_proto(png, shape=[1]))
        result = stub.Predict(request, 10.0)
        ids.append(result.outputs["class_ids"].int64_val[0])
        names.append(result.outputs["class_names"].string_val[0])
    _check(ids, y[:100], expected[:100])
    assert names == [str(i).encode() for i in ids]


# === resnet_client.py (REST) ===


def test_resnet_client_rest_logic(serve, digits):
    import json

    import requests
    from PIL import Image

    _, y, pngs, expected = digits
    server_url = serve[1] + "/v1/models/lenet:predict"
    tensor_predictions, b64_predictions = [], []
    for png in pngs[:100]:
        image = Image.open(io.BytesIO(png))
        image = np.expand_dims(np.array(image) / 255.0, 0)[..., None].tolist()
        predict_request = json.dumps({"instances": image})
        response = requests.post(server_url, data=predict_request, timeout=30)
        response.raise_for_status()
        prediction = response.json()["predictions"][0]
        tensor_predictions.append(int(np.argmax(prediction["probabilities"])))
        png_b64 = base64.b64encode(png).decode("utf-8")
        predict_request = (
            f'{{"signature_name": "predict_images", '
            f'"instances" : [{{"b64": "{png_b64}"}}]}}'
        )
        response = requests.post(server_url, data=predict_request, timeout=30)
        response.raise_for_status()
        b64_predictions.append(response.json()["predictions"][0]["class_ids"])
    _check(tensor_predictions, y[:100], expected[:100])
    _check(b64_predictions, y[:100], expected[:100])
