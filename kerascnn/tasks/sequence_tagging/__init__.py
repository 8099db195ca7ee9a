"""The slot tagger's task: everything that differs for token ids in, a
tag per token and an intent out.

* `task`: `SequenceTagging`, the `Task` (training, evaluation, export
  hooks).
* `tagging`: BIO-constrained decoding, `TaggerPredictor`, the ATIS test
  report (`evaluate_atis`).
* `graph`: the same decoding and word normalisation as TensorFlow ops.
* `export`: SavedModel signatures, verification examples and scores,
  ONNX/OpenVINO names, warm-up inputs, model-card sections.
* `tflite`: the fixed-length, unrolled model TFLite converts.
* `dev_span_f1`: the callback that picks the best epoch by dev span F1
  (training only; imports Keras).
"""

from kerascnn.tasks.sequence_tagging.task import SequenceTagging

__all__ = ["SequenceTagging"]
