"""Checks an exported artifact against the Keras model on real examples.

Every export runs the same N test examples through Keras and through the
artifact (a SavedModel's `serving_default`, or the `.tflite` file in the
LiteRT interpreter) and reports accuracy, the largest absolute difference
of the output probabilities and batch-1 latency. `check` turns a report
into an `ExportError` when a float artifact drifts (more than 1e-4 for a
SavedModel, 1e-3 for float TFLite) or a quantized one loses more than
`max_accuracy_drop` percentage points.

Examples come from `kerascnn.data.load(meta.dataset, split, limit=N)`;
tests and callers without the data package pass arrays `(x, y)` instead.
The slot tagger is verified on real ATIS test sentences
(`load_tagger_examples`): both Keras and the artifact are decoded with
the BIO-constrained Viterbi of `kerascnn.tagging` and scored against the
gold tag strings of the file, so the report shows conlleval span F1
(`slot_f1`) of the artifact beside the Keras model's, and `accuracy` is
token accuracy.
"""

import dataclasses
import os
import time

from kerascnn.errors import ExportError

SAVED_MODEL_TOLERANCE = 1e-4
TFLITE_FLOAT_TOLERANCE = 1e-3
DEFAULT_MAX_ACCURACY_DROP = 1.0  # percentage points
LATENCY_EXAMPLES = 20


@dataclasses.dataclass
class ArtifactResult:
    """One row of the verification table."""

    artifact: str
    size_bytes: int = None
    accuracy: float = None
    max_diff: float = None
    latency_ms: float = None
    slot_f1: float = None

    def to_dict(self):
        d = dataclasses.asdict(self)
        if d["slot_f1"] is None:
            del d["slot_f1"]
        return d


@dataclasses.dataclass
class VerifyReport:
    """Keras reference row, artifact row and what was checked."""

    keras: ArtifactResult
    artifact: ArtifactResult
    num_examples: int
    tolerance: float = None
    max_accuracy_drop: float = None

    @property
    def accuracy_drop(self):
        if self.keras.accuracy is None or self.artifact.accuracy is None:
            return None
        return 100.0 * (self.keras.accuracy - self.artifact.accuracy)

    def to_dict(self):
        return {
            "keras": self.keras.to_dict(),
            "artifact": self.artifact.to_dict(),
            "num_examples": self.num_examples,
            "tolerance": self.tolerance,
            "max_accuracy_drop": self.max_accuracy_drop,
            "accuracy_drop_pp": self.accuracy_drop,
        }

    def table(self):
        """A small fixed-width table, one row per artifact."""
        head = ("artifact", "size", "accuracy", "max diff", "latency/ex")
        spans = self.keras.slot_f1 is not None
        if spans:
            head = (*head[:3], "span F1", *head[3:])
        rows = [head] + [
            (
                r.artifact,
                _size(r.size_bytes),
                "-" if r.accuracy is None else f"{100 * r.accuracy:.2f}%",
                *(
                    ["-" if r.slot_f1 is None else f"{100 * r.slot_f1:.2f}"]
                    if spans
                    else []
                ),
                "-" if r.max_diff is None else f"{r.max_diff:.2e}",
                "-" if r.latency_ms is None else f"{r.latency_ms:.3f} ms",
            )
            for r in (self.keras, self.artifact)
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip()
                 for row in rows]
        lines.append(f"({self.num_examples} test examples)")
        return "\n".join(lines)


def _size(num_bytes):
    if num_bytes is None:
        return "-"
    for unit in ("B", "KiB", "MiB"):
        if num_bytes < 1024 or unit == "MiB":
            return f"{num_bytes:.0f} {unit}" if unit == "B" else (
                f"{num_bytes:.1f} {unit}"
            )
        num_bytes /= 1024


def disk_size(path):
    """Bytes on disk of a file or a directory tree."""
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(
        os.path.getsize(os.path.join(root, f))
        for root, _, files in os.walk(path) for f in files
    )


# === Examples ===


def _as_numpy(value):
    import numpy as np

    if isinstance(value, dict):
        value = value.get("token_ids", value.get("tags", next(iter(
            value.values()))))
    return np.asarray(value)


def _stack(values):
    """Stacks arrays; pads 1-D sequences of different lengths with 0."""
    import numpy as np

    values = [np.asarray(v) for v in values]
    if values[0].ndim == 1 and len({len(v) for v in values}) > 1:
        out = np.zeros((len(values), max(len(v) for v in values)),
                       values[0].dtype)
        for i, v in enumerate(values):
            out[i, :len(v)] = v
        return out
    return np.stack(values)


def load_examples(meta, split="test", limit=500, data_dir=None,
                  input_rank=None):
    """`(x, y)` numpy arrays of real examples, or `None` if unavailable.

    Reads `kerascnn.data.load(meta.dataset, split, limit=limit, ...)`, which
    already normalizes features for the model. Returns `None` when the
    data package or the data set cannot be read.
    """
    if not meta.dataset or not limit:
        return None
    try:
        from kerascnn.data import load
    except ImportError:
        return None
    try:
        try:
            ds, _ = load(meta.dataset, split=split, data_dir=data_dir,
                         limit=limit, shuffle=split == "train",
                         augment=False)
        except TypeError:
            ds, _ = load(meta.dataset, split=split, data_dir=data_dir,
                         limit=limit)
        xs, ys = [], []
        for features, labels in ds.as_numpy_iterator():
            xs.append(_as_numpy(features))
            ys.append(_as_numpy(labels))
    except Exception:  # data missing or unreadable: caller decides
        return None
    if not xs:
        return None
    rank = input_rank if input_rank is not None else len(meta.input_shape)
    if xs[0].ndim != rank:  # batched: flatten to examples
        xs = [row for batch in xs for row in batch]
        ys = [row for batch in ys for row in batch]
    x, y = _stack(xs), _stack(ys)
    return x[:limit], y[:limit]


@dataclasses.dataclass
class TaggerGold:
    """Gold labels of tagger examples: tag strings and tag names."""

    tags: list
    tag_names: list

    def __len__(self):
        return len(self.tags)

    def __getitem__(self, index):
        return TaggerGold(self.tags[index], self.tag_names)


def load_tagger_examples(meta, split="test", limit=500, data_dir=None):
    """`(token ids (N, T), TaggerGold)` of real ATIS sentences, or `None`.

    Words get the training normalisation; gold tags stay the strings of
    the file (a tag never seen in training still counts as a gold span).
    """
    import numpy as np

    try:
        from kerascnn import tagging
        from kerascnn.data import text

        utterances, _ = tagging.load_atis_split(split, data_dir, limit)
    except Exception:  # data missing or unreadable: caller decides
        return None
    if not utterances:
        return None
    vocab = text.Vocabulary(meta.vocab)
    digits = text.uses_digit_shapes(meta.vocab)
    rows = [
        vocab.encode(
            text.normalize_words(u.words)
            if digits
            else [w.lower() for w in u.words]
        )
        for u in utterances
    ]
    x = np.zeros((len(rows), max(len(r) for r in rows)), np.int32)
    for i, r in enumerate(rows):
        x[i, : len(r)] = r
    gold = TaggerGold([list(u.tags) for u in utterances], meta.class_names)
    return x, gold


def fit_length(x, length):
    """Pads with 0 / truncates token ids `(N, T)` to `(N, length)`."""
    import numpy as np

    out = np.zeros((len(x), length), np.int32)
    n = min(length, x.shape[1])
    out[:, :n] = x[:, :n]
    return out


# === Runners: each maps a batch of model inputs to output arrays ===


def _split(outputs):
    """`(main probabilities, intent probabilities or None)` as numpy."""
    import numpy as np

    if isinstance(outputs, dict):
        main = outputs.get("tags", outputs.get("tag_probabilities",
                           outputs.get("probabilities")))
        intent = outputs.get("intent_probabilities", outputs.get("intent"))
        if intent is not None and np.asarray(intent).dtype.kind in "SUO":
            intent = None
        return np.asarray(main), (
            None if intent is None else np.asarray(intent))
    return np.asarray(outputs), None


def keras_runner(model):
    def run(x):
        return _split(model.predict_on_batch(x))

    return run


def saved_model_runner(path):
    import tensorflow as tf

    loaded = tf.saved_model.load(path)
    fn = loaded.signatures["serving_default"]
    key = next(iter(fn.structured_input_signature[1]))

    def run(x):
        out = fn(**{key: tf.constant(x)})
        out = {k: v.numpy() for k, v in out.items()}
        main = out.get("probabilities", out.get("tag_probabilities"))
        return main, out.get("intent_probabilities")

    run.loaded = loaded
    return run


def tflite_runner(tflite_bytes, num_threads=None):
    """Runs a batch through the LiteRT interpreter one example at a time."""
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(
        model_content=bytes(tflite_bytes),
        num_threads=num_threads or os.cpu_count(),
    )
    runner = interpreter.get_signature_runner()
    (in_name, in_detail), = runner.get_input_details().items()
    out_details = runner.get_output_details()

    def quantize(x):
        scale, zero = in_detail["quantization"]
        if in_detail["dtype"] in (np.int8, np.uint8) and scale:
            info = np.iinfo(in_detail["dtype"])
            q = np.round(x / scale + zero)
            return np.clip(q, info.min, info.max).astype(in_detail["dtype"])
        return x.astype(in_detail["dtype"])

    def dequantize(name, y):
        scale, zero = out_details[name]["quantization"]
        if y.dtype in (np.int8, np.uint8) and scale:
            return (y.astype(np.float32) - zero) * scale
        return y

    def run(x):
        rows = [
            runner(**{in_name: quantize(x[i:i + 1])}) for i in range(len(x))
        ]
        out = {
            k: np.concatenate([dequantize(k, r[k]) for r in rows])
            for k in rows[0]
        }
        return _split(out)

    run.interpreter = interpreter
    return run


# === Measuring ===


def accuracy(probabilities, labels, token_ids=None):
    """Top-1 accuracy; for the tagger over real (non-padding) tokens."""
    import numpy as np

    if isinstance(labels, TaggerGold):
        return tagger_scores(probabilities, labels, token_ids)[0]

    labels = np.asarray(labels)
    pred = np.argmax(probabilities, axis=-1)
    if pred.ndim == 2:  # tags: compare where a real token stands
        n = min(pred.shape[1], labels.shape[1])
        mask = np.asarray(token_ids)[:, :n] != 0
        hits = (pred[:, :n] == labels[:, :n]) & mask
        return float(hits.sum() / max(mask.sum(), 1))
    return float(np.mean(pred == labels.reshape(-1)))


def max_difference(reference, outputs, token_ids=None):
    """Largest |a - b| over main outputs (real tokens only) and intents."""
    import numpy as np

    (ref, ref_intent), (out, out_intent) = reference, outputs
    diff = np.abs(ref - out)
    if diff.ndim == 3 and token_ids is not None:
        diff = diff[np.asarray(token_ids) != 0]
    worst = float(diff.max()) if diff.size else 0.0
    if ref_intent is not None and out_intent is not None:
        worst = max(worst, float(np.abs(ref_intent - out_intent).max()))
    return worst


def batch_latency_ms(run, x, repeats=LATENCY_EXAMPLES):
    """Median milliseconds for one batch-1 call (after one warm-up)."""
    import numpy as np

    samples = [x[i % len(x):i % len(x) + 1] for i in range(repeats)]
    run(samples[0])
    times = []
    for sample in samples:
        start = time.perf_counter()
        run(sample)
        times.append(time.perf_counter() - start)
    return 1000.0 * float(np.median(times))


def _predict(run, x, batch_size=256):
    import numpy as np

    parts = [run(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]
    main = np.concatenate([p[0] for p in parts])
    intent = None if parts[0][1] is None else np.concatenate(
        [p[1] for p in parts])
    return main, intent


def compare(model, run, x, y, artifact_name, size_bytes,
            keras_outputs=None, batch_size=256):
    """Runs Keras and the artifact on `(x, y)`; returns a `VerifyReport`."""
    keras_run = keras_runner(model)
    token_ids = x if x.ndim == 2 else None
    reference = keras_outputs or _predict(keras_run, x)
    outputs = _predict(run, x, batch_size)
    has_labels = y is not None
    keras_row = ArtifactResult(
        "keras",
        accuracy=accuracy(reference[0], y, token_ids) if has_labels else None,
        latency_ms=batch_latency_ms(keras_run, x),
    )
    row = ArtifactResult(
        artifact_name,
        size_bytes=size_bytes,
        accuracy=accuracy(outputs[0], y, token_ids) if has_labels else None,
        max_diff=max_difference(reference, outputs, token_ids),
        latency_ms=batch_latency_ms(run, x),
    )
    if isinstance(y, TaggerGold):
        for r, probs in ((keras_row, reference[0]), (row, outputs[0])):
            r.accuracy, r.slot_f1 = tagger_scores(probs, y, token_ids)
    return VerifyReport(keras_row, row, num_examples=len(x))


def tagger_scores(probabilities, gold, token_ids):
    """`(token accuracy, span F1)` of constrained-decoded tags vs gold."""
    import numpy as np

    from kerascnn import metrics, tagging

    lengths = [
        min(len(g), int(n))
        for g, n in zip(gold.tags, (np.asarray(token_ids) != 0).sum(1))
    ]
    pred = tagging.decode_tags(probabilities, lengths, gold.tag_names)
    true = [g[:n] for g, n in zip(gold.tags, lengths)]
    report = metrics.tagging_report(true, pred)
    return report["token_accuracy"], report["slot_f1"]


def check(report, tolerance=None, max_accuracy_drop=None):
    """Raises `ExportError` if the artifact drifted or lost accuracy."""
    report.tolerance = tolerance
    report.max_accuracy_drop = max_accuracy_drop
    row = report.artifact
    if tolerance is not None and row.max_diff > tolerance:
        raise ExportError(
            f"Verification failed: {row.artifact} differs from Keras by "
            f"{row.max_diff:.3g} (tolerance {tolerance:g}) on "
            f"{report.num_examples} examples; nothing was written."
        )
    drop = report.accuracy_drop
    if max_accuracy_drop is not None and drop is not None and (
        drop > max_accuracy_drop
    ):
        raise ExportError(
            f"Verification failed: {row.artifact} accuracy "
            f"{100 * row.accuracy:.2f}% is {drop:.2f} pp below Keras "
            f"({100 * report.keras.accuracy:.2f}%; allowed drop "
            f"{max_accuracy_drop:g} pp); nothing was written."
        )
    return report
