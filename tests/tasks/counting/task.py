"""`Counting`: images in, the number of white squares out (a regression).

Trained, evaluated and picked by a "min" checkpoint monitor through the
library's own `fit` and `evaluate`, exported by `kerascnn export` with its
own SavedModel signature and ONNX outputs, its own verification examples
and score: everything the task seam lets a task decide.
"""

import numpy as np

from kerascnn import tasks
from kerascnn.data import DatasetInfo
from tests.tasks.counting.data import SIZE, count_accuracy, counting_images


class Counting(tasks.Task):
    name = "counting"
    consumes = "images"
    input_rank = 3
    predict_input = "images"
    checkpoint_monitor = "val_loss"
    checkpoint_mode = "min"
    pictures = frozenset({"curves"})

    def load_training_data(self, config, strategy=None):
        """Generated images: no data set on disk to read."""
        import tensorflow as tf

        def dataset(n, seed):
            x, y = counting_images(n, seed)
            return tf.data.Dataset.from_tensor_slices((x, y)).batch(
                config.batch_size
            )

        info = DatasetInfo(
            name=config.dataset,
            kind=self.consumes,
            source="generated in the test",
            split="train",
            num_examples=config.limit or 512,
            split_sizes={"train": 512, "test": 256},
            input_shape=(SIZE, SIZE, 1),
            num_classes=1,
            class_names=["count"],
            preprocessing={},
        )
        train = dataset(info.num_examples, config.seed)
        return train, dataset(256, 1), info

    def loss_and_metrics(self, make_loss):
        return "mse", ["mae"]

    def evaluate(
        self,
        model,
        metadata,
        dataset,
        *,
        data_dir=None,
        split="test",
        limit=None,
        batch_size=256,
        validation_split=None,
        progress=None,
        skip_bad=False,
        tta=False,
    ):
        """Rounded-count accuracy and MAE on 256 generated test images
        (the data set is generated: no files, splits or batches to
        choose)."""
        x, y = counting_images(256, seed=2)
        predicted = np.asarray(model.predict(x, verbose=0)).ravel()
        return {
            "accuracy": count_accuracy(predicted, y),
            "mae": float(np.mean(np.abs(predicted - y))),
            "num_examples": len(y),
        }

    # --- Export: images in, the count out ---

    def add_serving_signatures(self, archive, model, meta):
        import tensorflow as tf

        shape = tuple(model.input_shape[1:])

        def count(images):
            value = tf.reshape(
                tf.cast(model(images, training=False), tf.float32), [-1]
            )
            return {"count": value, "rounded": tf.round(value)}

        archive.add_endpoint(
            "serving_default",
            count,
            input_signature=[
                tf.TensorSpec((None, *shape), tf.float32, name="images")
            ],
        )

    def verification_examples(self, meta, count, data_dir, skip_bad=False):
        x, y = counting_images(count, seed=2)
        return x, y, "test"

    def compared_outputs(self, outputs):
        """The count, `(N,)`, in any runtime: Keras' `(N, 1)` array, the
        SavedModel's `count` (its `rounded` is not compared), TFLite's
        one output."""
        if isinstance(outputs, dict):
            outputs = outputs.get("count", next(iter(outputs.values())))
        return np.asarray(outputs).reshape(-1), None

    def verification_scores(self, outputs, labels, inputs):
        return {"accuracy": count_accuracy(outputs, labels)}

    def named_outputs(self, outputs, inputs, meta):
        """ONNX / OpenVINO: `images` -> `count`."""
        import tensorflow as tf

        return {"count": tf.reshape(tf.cast(outputs, tf.float32), [-1])}

    def card_limitations(self, meta):
        return ["Counts 0-4 white 2x2 squares on a black 16x16 image."]
