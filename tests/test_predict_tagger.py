"""The slot tagger end to end on real ATIS: a short training run, metrics,
raw-text predict (text, JSON, stdin, edge cases) and the exported string
signature loaded by TensorFlow alone."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from kerascnn.config import recipe_for
from kerascnn.predict import tag_utterances
from kerascnn.train import fit

SHORT_EPOCHS = 6


@pytest.fixture(scope="module")
def tagger_run(data_dir, tmp_path_factory):
    """The default recipe on all of ATIS, shortened to a few epochs (with
    lighter dropout and a higher peak learning rate to converge sooner)."""
    root = tmp_path_factory.mktemp("tagger")
    options = recipe_for("slot_tagger").model_options
    config = recipe_for(
        "slot_tagger",
        data_dir=data_dir,
        epochs=SHORT_EPOCHS,
        learning_rate=3e-3,
        model_options={**options, "dropout": 0.3, "embedding_dropout": 0.3},
        run_dir=str(root / "run"),
        export_dir=str(root / "saved_models"),
        log_format="quiet",
    )
    return fit(config)


def _cli(runner, args, stdin=None):
    from cli.main import cli

    return runner.invoke(cli, args, input=stdin, catch_exceptions=False)


def test_short_real_run_exceeds_90_f1_on_test(tagger_run):
    m = tagger_run.metrics
    assert m["num_examples"] == 893
    assert m["slot_f1"] > 0.90
    assert m["intent_accuracy"] > 0.90
    assert m["decoding"] == "bio_viterbi"
    assert m["per_slot_f1"]["fromloc.city_name"]["f1"] > 0.9
    # The gold strings are scored: test tags never seen in training (e.g.
    # B-booking_class) count as expected spans, so expected = all gold.
    assert m["slot_counts"]["expected"] == 2837
    assert 0.0 < m["sentence_accuracy"] < m["intent_accuracy"]
    history = tagger_run.history
    assert len(history["val_slot_f1"]) == SHORT_EPOCHS


def test_evaluate_cli_reports_the_same_metrics(tagger_run, runner):
    result = _cli(runner, ["evaluate", tagger_run.run_dir, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["slot_f1"] == pytest.approx(tagger_run.metrics["slot_f1"])
    assert set(report) >= {
        "slot_precision",
        "slot_recall",
        "per_slot_f1",
        "token_accuracy",
        "intent_accuracy",
        "sentence_accuracy",
    }


def test_predict_text_groups_slots_and_names_the_intent(tagger_run, runner):
    text = "i want to fly from boston to denver"
    result = _cli(runner, ["predict", tagger_run.run_dir, text])
    assert result.exit_code == 0, result.output
    assert "boston/B-fromloc.city_name" in result.stdout
    assert "fromloc.city_name = boston" in result.stdout
    assert "toloc.city_name = denver" in result.stdout
    assert "intent: atis_flight (" in result.stdout


def test_predict_json_one_object_per_utterance(tagger_run, runner):
    result = _cli(
        runner,
        [
            "predict",
            tagger_run.run_dir,
            "--json",
            "show me flights from dallas to pittsburgh",
            "what is the fare from atlanta to boston",
        ],
    )
    first, second = [json.loads(x) for x in result.stdout.splitlines()]
    assert first["tokens"][4] == "dallas"
    assert {"type": "fromloc.city_name", "value": "dallas", "start": 4,
            "end": 5} in first["slots"]  # fmt: skip
    assert len(first["tags"]) == len(first["tokens"]) == 7
    assert first["intent"] == "atis_flight"
    assert 0.5 < first["intent_probability"] <= 1.0
    assert second["intent"] == "atis_airfare"


def test_predict_reads_stdin_with_empty_lines(tagger_run, runner):
    lines = "flights from boston to denver\n\ncheapest fare to dallas\n"
    result = _cli(runner, ["predict", tagger_run.run_dir, "--json"], lines)
    assert result.exit_code == 0
    rows = [json.loads(x) for x in result.stdout.splitlines()]
    assert len(rows) == 3
    assert rows[1] == {
        "tokens": [],
        "tags": [],
        "slots": [],
        "intent": None,
        "intent_probability": None,
        "warning": "empty utterance: nothing to tag",
    }
    assert "warning: empty utterance" in result.stderr
    assert rows[2]["slots"][-1]["value"] == "dallas"


def test_long_and_non_ascii_utterances(tagger_run, runner):
    long_text = " ".join(["flights from boston to denver"] * 200)  # 1,000
    result = _cli(runner, ["predict", tagger_run.run_dir, "--json", long_text])
    row = json.loads(result.stdout)
    assert len(row["tokens"]) == len(row["tags"]) == 200
    assert "truncated to the first 200" in result.stderr
    (row,) = tag_utterances(
        tagger_run.run_dir, ["flights from Zürich to denver"]
    )
    assert row["tokens"][2] == "Zürich"  # kept as typed; tagged from context
    assert {"type": "toloc.city_name", "value": "denver", "start": 4,
            "end": 5} in row["slots"]  # fmt: skip


def test_unknown_city_is_tagged_from_context(tagger_run):
    (row,) = tag_utterances(
        tagger_run.run_dir, ["show me flights from ulaanbaatar to denver"]
    )
    assert "ulaanbaatar" not in _vocab(tagger_run.run_dir)
    assert row["tags"][4] == "B-fromloc.city_name"


def _vocab(run_dir):
    with open(os.path.join(run_dir, "metadata.json")) as f:
        return set(json.load(f)["vocab"])


def test_export_is_verified_on_real_sentences_with_span_f1(tagger_run):
    from tests.helpers import export

    result = export(
        tagger_run.run_dir,
        base_dir=os.path.dirname(os.path.dirname(tagger_run.export_path)),
        verify_examples=893,
        version=2,  # fit exported version 1: the same export is not repeated
    )
    assert result.written and result.examples == "test"
    assert result.verified_on == "atis test split (893 sentences)"
    report = result.verification.to_dict()
    assert report["num_examples"] == 893
    keras_f1 = report["keras"]["slot_f1"]
    assert keras_f1 == pytest.approx(tagger_run.metrics["slot_f1"])
    assert report["artifact"]["slot_f1"] == keras_f1


SIGNATURE_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import tensorflow as tf
    assert not any(m.startswith("kerascnn") for m in sys.modules)
    loaded = tf.saved_model.load(sys.argv[1])
    sentences = json.loads(sys.stdin.read())
    out = loaded.signatures["predict_sentences"](
        sentences=tf.constant(sentences))
    tags = [[t.decode() for t in row[:n]] for row, n in
            zip(out["tags"].numpy(), out["lengths"].numpy())]
    intents = [i.decode() for i in out["intent"].numpy()]
    assert not any(m.startswith("kerascnn") for m in sys.modules)
    print(json.dumps({"tags": tags, "intents": intents}))
    """
)


def test_string_signature_in_tensorflow_only_process_tags_like_keras(
    tagger_run, data_dir
):
    from kerascnn.data.text import read_iob

    test = read_iob(os.path.join(data_dir, "atis", "atis.test.w-intent.iob"))
    sentences = [" ".join(u.words) for u in test[:150]]
    sentences.append("Flights from ULAANBAATAR to Denver on 12 May 1991")
    done = subprocess.run(
        [sys.executable, "-c", SIGNATURE_SCRIPT, tagger_run.export_path],
        input=json.dumps(sentences),
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    served = json.loads(done.stdout.splitlines()[-1])
    expected = tag_utterances(tagger_run.run_dir, sentences)
    assert served["tags"] == [r["tags"] for r in expected]
    assert served["intents"] == [r["intent"] for r in expected]


def test_tflite_decodes_in_graph_like_keras(tagger_run, tmp_path):
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    from kerascnn.export.examples import fit_length
    from kerascnn.metadata import load_model_and_metadata
    from kerascnn.tasks.sequence_tagging import tagging
    from kerascnn.tasks.sequence_tagging.export import load_examples
    from tests.helpers import export

    result = export(
        tagger_run.run_dir, format="tflite", base_dir=tmp_path,
        verify_examples=100,
    )  # fmt: skip
    report = result.verification.to_dict()
    assert report["artifact"]["slot_f1"] == report["keras"]["slot_f1"]
    model, meta = load_model_and_metadata(tagger_run.run_dir)
    x, _ = load_examples(meta, "test", 100)
    x = fit_length(x, result.metadata["max_length"])
    runner = Interpreter(model_path=result.path).get_signature_runner()
    ids = np.concatenate(
        [runner(token_ids=x[i : i + 1])["tag_ids"] for i in range(len(x))]
    )
    probs = np.asarray(model.predict(x, verbose=0)["tags"])
    start, trans = tagging.allowed_transitions(meta.class_names)
    for row, n in enumerate((x != 0).sum(1)):
        expected = tagging.viterbi_decode(probs[row, :n], start, trans)
        assert ids[row, :n].tolist() == expected
        assert not ids[row, n:].any()


def test_predict_on_the_exported_model_folder_tags_like_the_run(
    tagger_run, runner
):
    """`kerascnn predict saved_models/slot_tagger "..."`: the model folder
    (newest version, its predict_sentences signature) answers like the
    run's Keras model."""
    sentence = "show me flights from dallas to pittsburgh"
    model_folder = os.path.dirname(tagger_run.export_path)
    by_run, by_folder = (
        json.loads(_cli(runner, ["predict", source, "--json", sentence]).stdout)
        for source in (tagger_run.run_dir, model_folder)
    )
    assert by_folder["tags"] == by_run["tags"]
    assert by_folder["intent"] == by_run["intent"] == "atis_flight"
    assert {"type": "toloc.city_name", "value": "pittsburgh", "start": 6,
            "end": 7} in by_folder["slots"]  # fmt: skip
