"""A model card beside every export: `MODEL_CARD.md` and `model_card.json`.

    saved_models/<name>/MODEL_CARD.md
    saved_models/<name>/model_card.json
    saved_models/<name>/<version>/...        (SavedModels)
    saved_models/<name>/<name>.tflite, <name>.onnx, openvino/

Each export rewrites both files (atomically) with what a deployer asks:
the model and its paper, parameters and MACs, the training data set and
its split sizes, the recipe, the run's test metrics (`metrics.json`,
copied as they are, with the per-class table), every exported format
with its verified figures and file size, what a caller must feed,
class names, the producing command, versions and known limitations.

Exports of the same source accumulate under `exports` (one entry per
format label: `saved_model`, `tflite`, `tflite-int8`, `onnx`,
`openvino`); an export of another run starts a fresh card. The JSON is
the record; the Markdown is rendered from it.
"""

import datetime
import json
import os

import kerascnn
from kerascnn.data.pipeline import get_info
from kerascnn.evaluation import recorded_validation_split
from kerascnn.export import formats as _formats
from kerascnn.export import layout
from kerascnn.lazy import LazyModule

keras = LazyModule("keras")
tf = LazyModule("tensorflow")

CARD_JSON = "model_card.json"
CARD_MARKDOWN = "MODEL_CARD.md"
SCHEMA_VERSION = 1

_RECIPE_KEYS = (
    "optimizer",
    "learning_rate",
    "momentum",
    "weight_decay",
    "schedule",
    "warmup_epochs",
    "epochs",
    "batch_size",
    "label_smoothing",
    "augment",
    "mixed_precision",
    "seed",
    "limit",
    "model_options",
)
_METRIC_KEYS = (
    "accuracy",
    "loss",
    "num_examples",
    "slot_f1",
    "slot_precision",
    "slot_recall",
    "token_accuracy",
    "intent_accuracy",
    "sentence_accuracy",
    "decoding",
    "per_class_accuracy",
    "per_slot_f1",
)


# === Reading what the run recorded ===


def run_dir_of(source):
    """The run directory of a source (a run dir, or a `.keras` file's)."""
    source = os.path.abspath(os.fspath(source))
    return source if os.path.isdir(source) else os.path.dirname(source)


def read_json(path):
    """A JSON file as a dict, or `None` if missing or unreadable."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def test_metrics(source):
    """The run's `metrics.json` keys a card shows (values unchanged)."""
    metrics = read_json(os.path.join(run_dir_of(source), "metrics.json"))
    if metrics is None:
        return None
    return {k: metrics[k] for k in _METRIC_KEYS if k in metrics}


def _recipe(meta, source):
    recipe = (meta.extra or {}).get("recipe")
    if recipe is None:
        recipe = read_json(os.path.join(run_dir_of(source), "config.json"))
    if not recipe:
        return None
    return {k: recipe[k] for k in _RECIPE_KEYS if k in recipe}


def split_sizes(meta, data_dir=None):
    """`{split: examples}` of the training data set, or `None`."""
    if not meta.dataset:
        return None
    try:
        info = get_info(
            meta.dataset, "train", data_dir=data_dir,
            validation_size=recorded_validation_split(meta),
        )  # fmt: skip
        return dict(info.split_sizes or {}) or None
    except Exception:  # the card still says what it knows
        return None


def _model_section(model, meta, task):
    # Start-up: the CLI imports export; the zoo loads Keras.
    from kerascnn import models, summary

    section = {"name": meta.model, "task": meta.task}
    try:
        info = models.get_model_info(meta.model)
        section.update(family=info.family, reference=info.reference)
    except Exception:  # not a registry name (a bare .keras)
        section["reference"] = None
    section["input_shape"] = list(meta.input_shape)
    try:
        totals = summary.summarize(model)
        section.update(parameters=totals.total_params, macs=totals.macs)
    except Exception:
        section.update(parameters=int(model.count_params()), macs=None)
    if task.macs_note:
        section["macs_note"] = task.macs_note
    return section


# === Building the card ===


def export_entry(result, model_dir):
    """One `exports` entry: where, how big, and how it verified."""
    entry = {
        "format": result.format,
        "path": os.path.relpath(result.path, model_dir),
        "size_bytes": result.size_bytes,
        "exported_at": _now(),
    }
    if result.version is not None:
        entry["version"] = result.version
    if result.quantize not in (None, "none"):
        entry["quantize"] = result.quantize
    if result.opset is not None:
        entry["opset"] = result.opset
    portable = result.metadata.get(result.format)
    if isinstance(portable, dict) and "inputs" in portable:
        entry["inputs"] = portable["inputs"]
        entry["outputs"] = portable["outputs"]
    report = result.verification
    entry["verified"] = report is not None
    if report is not None:
        entry.update(
            verified_on=report.verified_on,
            num_examples=report.num_examples,
            max_abs_diff=report.artifact.max_diff,
            tolerance=report.tolerance,
            accuracy=report.artifact.accuracy,
            keras_accuracy=report.keras.accuracy,
            latency_ms_batch1=report.artifact.latency_ms,
        )
        if report.artifact.slot_f1 is not None:
            entry.update(
                slot_f1=report.artifact.slot_f1,
                keras_slot_f1=report.keras.slot_f1,
            )
    return entry


def format_label(result):
    """`<format>-<quantize>` for quantized files (`tflite-int8`), else the
    format."""
    if result.quantize not in (None, "none"):
        return f"tflite-{result.quantize}"
    return result.format


def image_input(meta):
    """The "Input" section of an image model: the normalization."""
    p = dict(meta.preprocessing or {})
    steps = [
        "decode to RGB or grayscale as `channels`, resize to "
        "`image_size`, as float pixels in [0, 255]"
    ]
    steps.append(
        f"x = x * {p.get('scale', 1.0)!r}"
        + (f" + {p['offset']!r}" if p.get("offset") else "")
    )
    if p.get("mean") is not None:
        steps.append(f"x = (x - {p['mean']!r}) / {p.get('std', 1.0)!r}")
    return {
        "input": "images: float32 (batch, H, W, C), channels last",
        "steps": steps,
        "spec": p,
        "note": "the SavedModel's predict_pixels / predict_images "
        "signatures do this in-graph",
    }


def image_limitations(meta):
    """What an image model's callers must feed."""
    shape = "x".join(str(d) for d in meta.input_shape)
    return [
        f"Inputs must be {shape} and normalized as described; other "
        "sizes are resized by the SavedModel's predict_images only."
    ]


def _limitations(meta, task, card):
    notes = []
    dataset = (meta.dataset or "").lower()
    source = str((meta.extra or {}).get("source", "")).lower()
    if dataset == "cifar10" and "tfds" not in source:
        notes.append(
            "The CIFAR-10 copy it was trained and tested on is JPEG "
            "re-encoded (quality about 75): accuracy is a little below "
            "published CIFAR-10 figures, and PNG/raw inputs differ slightly."
        )
    if card["test_metrics"] is None:
        notes.append("No test metrics: the source has no metrics.json.")
    test_size = (card["dataset"].get("split_sizes") or {}).get("test")
    for label, e in card["exports"].items():
        n = e.get("num_examples")
        if n is not None and test_size and n < test_size:
            notes.append(
                f"{label} was verified on {n} of {test_size} test examples."
            )
        if not e["verified"]:
            notes.append(f"{label} was exported without verification.")
    notes += task.card_limitations(meta)
    precision = (card["recipe"] or {}).get("mixed_precision", "")
    portable = sorted({"onnx", "openvino"} & set(card["exports"]))
    if str(precision).startswith("mixed") and portable:
        notes.append(
            f"Trained with {precision}: {' and '.join(portable)} compute in "
            "float32 and were verified against the model's float32 twin "
            "(same weights); the SavedModel keeps the training precision."
        )
    if "openvino" in card["exports"]:
        notes.append(
            "OpenVINO matches Keras to 1e-4 at f32 inference precision; "
            "CPUs with bf16/AMX default to lower precision unless "
            "INFERENCE_PRECISION_HINT=f32 is set."
        )
    return notes


def _versions(formats):
    """kerascnn's, TensorFlow's and Keras' versions, and those of the
    packages each exported format names (`ExportFormat.packages`)."""
    from importlib import metadata as md

    out = {
        "kerascnn": kerascnn.__version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
    }
    registered = {f.name: f for f in _formats.all_formats()}
    for fmt in sorted(formats):
        packages = registered[fmt].packages if fmt in registered else ()
        for package in packages:
            try:
                out[package] = md.version(package)
            except md.PackageNotFoundError:
                pass
    return out


def _now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(
        timespec="seconds"
    )


def _default_command(source, config):
    parts = ["kerascnn", "export", os.fspath(source)]
    if config.format != "saved_model":
        parts += ["--format", config.format]
    if config.quantize != "none":
        parts += ["--quantize", config.quantize]
    if os.fspath(config.base_dir) != "saved_models":
        parts += ["--base-dir", os.fspath(config.base_dir)]
    if config.verify_examples != 500:
        parts += ["--verify-examples", str(config.verify_examples)]
    return " ".join(parts)


def build(source, model, meta, config, result, task, previous=None):
    """The card dict for `result`, keeping `previous` exports of the
    same source; `task` (the model's `Task`) writes its input section
    and limitations."""
    model_dir = config.model_dir(result.name)
    source_path = os.path.abspath(os.fspath(source))
    exports = {}
    if previous and previous.get("source") == source_path:
        exports = dict(previous.get("exports") or {})
    exports[format_label(result)] = export_entry(result, model_dir)
    recipe = _recipe(meta, source)
    card = {
        "schema_version": SCHEMA_VERSION,
        "name": result.name,
        "source": source_path,
        "model": _model_section(model, meta, task),
        "dataset": {
            "name": meta.dataset,
            "source": (meta.extra or {}).get("source"),
            "split_sizes": split_sizes(meta, config.data_dir),
        },
        "recipe": recipe,
        "test_metrics": test_metrics(source),
        "exports": exports,
        "preprocessing": task.card_input(meta),
        "class_names": list(meta.class_names),
        "intent_names": list(meta.intent_names),
        "command": config.command or _default_command(source, config),
        "versions": _versions({e["format"] for e in exports.values()}),
        "updated_at": _now(),
    }
    card["limitations"] = _limitations(meta, task, card)
    return card


def update(source, model, meta, config, result, task):
    """Rewrites the card beside the versions; returns `MODEL_CARD.md`."""
    model_dir = config.model_dir(result.name)
    previous = read_json(os.path.join(model_dir, CARD_JSON))
    card = build(source, model, meta, config, result, task, previous)
    text = json.dumps(card, indent=2, sort_keys=True, default=str)
    layout.write_new_file(
        os.path.join(model_dir, CARD_JSON), text.encode(), overwrite=True
    )
    path = os.path.join(model_dir, CARD_MARKDOWN)
    layout.write_new_file(path, render(card).encode("utf-8"), overwrite=True)
    return path


def read(model_dir):
    """The `model_card.json` of a model folder, or `None`."""
    return read_json(os.path.join(model_dir, CARD_JSON))


# === Markdown ===


def _pct(value):
    return "-" if value is None else f"{100 * value:.2f}"


def _table(head, rows):
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def _metrics_lines(metrics):
    if metrics is None:
        return ["No test metrics recorded (no metrics.json)."]
    scalars = [
        (k, v)
        for k, v in metrics.items()
        if not isinstance(v, dict) and v is not None
    ]
    lines = _table(
        ("metric", "value"),
        [(k, f"{v:.4f}" if isinstance(v, float) else v) for k, v in scalars],
    )
    if metrics.get("per_class_accuracy"):
        lines += ["", "Per class:", ""]
        lines += _table(
            ("class", "accuracy (%)"),
            [(k, _pct(v)) for k, v in metrics["per_class_accuracy"].items()],
        )
    if metrics.get("per_slot_f1"):
        lines += ["", "Per slot type:", ""]
        lines += _table(
            ("slot", "precision", "recall", "F1"),
            [
                (
                    k,
                    _pct(v.get("precision")),
                    _pct(v.get("recall")),
                    _pct(v.get("f1")),
                )
                for k, v in metrics["per_slot_f1"].items()
            ],
        )
    return lines


def _with_keras(value, keras_value):
    """`"98.20 (98.30)"`: the artifact's figure and Keras' in brackets."""
    if value is None:
        return "-"
    return f"{_pct(value)} ({_pct(keras_value)})"


def _exports_lines(exports):
    rows = []
    for label, e in sorted(exports.items()):
        diff = e.get("max_abs_diff")
        rows.append(
            (
                label,
                e["path"],
                f"{e['size_bytes']:,}",
                "yes" if e["verified"] else "no",
                "-" if diff is None else f"{diff:.2e}",
                _with_keras(e.get("accuracy"), e.get("keras_accuracy")),
                _with_keras(e.get("slot_f1"), e.get("keras_slot_f1")),
                e.get("opset", "-"),
                e.get("verified_on") or "-",
            )
        )
    return _table(
        (
            "format",
            "path",
            "bytes",
            "verified",
            "max abs diff",
            "accuracy % (Keras)",
            "span F1 (Keras)",
            "opset",
            "verified on",
        ),
        rows,
    )


def render(card):
    """`MODEL_CARD.md` text from the card dict."""
    m, d, r = card["model"], card["dataset"], card["recipe"] or {}
    macs = m.get("macs")
    lines = [
        f"# Model card: {card['name']}",
        "",
        f"Architecture `{m['name']}` ({m.get('family', '-')}), task "
        f"{m['task']}. Reference: {m.get('reference') or '-'}.",
        f"Parameters: {m.get('parameters'):,}; MACs: "
        + ("-" if macs is None else f"{macs:,}")
        + f"; input shape {m['input_shape']}.",
        "",
        "## Training data",
        "",
        f"Data set `{d['name']}` from {d.get('source') or '-'}; split "
        f"sizes: {json.dumps(d.get('split_sizes'))}.",
        "",
        "## Recipe",
        "",
        *(
            _table(
                ("setting", "value"), [(k, json.dumps(v)) for k, v in r.items()]
            )
            if r
            else ["Not recorded."]
        ),
        "",
        "## Test metrics",
        "",
        *_metrics_lines(card["test_metrics"]),
        "",
        "## Exports",
        "",
        *_exports_lines(card["exports"]),
        "",
        "## Input",
        "",
        card["preprocessing"]["input"] + ":",
        "",
        *[f"1. {s}" for s in card["preprocessing"]["steps"]],
        "",
        f"({card['preprocessing']['note']}.)",
        "",
        "## Classes",
        "",
        ", ".join(f"`{c}`" for c in card["class_names"]),
    ]
    if card.get("intent_names"):
        lines += ["", "Intents: " + ", ".join(card["intent_names"])]
    lines += [
        "",
        "## Provenance",
        "",
        f"Last written by `{card['command']}` from `{card['source']}`.",
        "Versions: "
        + ", ".join(f"{k} {v}" for k, v in card["versions"].items())
        + ".",
        "",
        "## Limitations",
        "",
        *[f"- {note}" for note in card["limitations"]],
        "",
    ]
    return "\n".join(lines)
