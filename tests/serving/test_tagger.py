"""The slot tagger's signatures through `ModelServer.handle` (no HTTP)."""

import json

import pytest

from tests.helpers import save_run, tagger_metadata

VOCAB = ["<pad>", "<unk>", "show", "flights", "to", "boston"]
TAGS = ["O", "B-toloc.city_name"]
INTENTS = ["atis_flight", "atis_airfare"]


@pytest.fixture(scope="module")
def tagger_server(tmp_path_factory):
    import keras

    from kerascnn import models
    from kerascnn.export import export
    from kerascnn.serving import ModelServer, ServeOptions

    keras.utils.set_random_seed(0)
    model = models.build(
        "slot_tagger",
        input_shape=(None,),
        num_classes=len(TAGS),
        vocab_size=len(VOCAB),
        num_intents=len(INTENTS),
        embedding_dim=8,
        units=8,
    )
    meta = tagger_metadata(TAGS, VOCAB, INTENTS)
    run = save_run(model, meta, tmp_path_factory.mktemp("runs") / "tagger")
    base = tmp_path_factory.mktemp("saved_models")
    export(run, base_dir=str(base), verify=False)
    return ModelServer(
        ServeOptions(model_base_path=base, file_system_poll_wait_seconds=0)
    )


def predict(server, body):
    from kerascnn.serving import rest

    return rest.handle(
        server,
        "POST",
        "/v1/models/slot_tagger:predict",
        json.dumps(body).encode(),
    )


def test_sentences_rows_give_text_tags_and_intent(tagger_server):
    status, answer = predict(
        tagger_server,
        {
            "signature_name": "predict_sentences",
            "instances": ["Show flights to Boston", "show flights"],
        },
    )
    assert status == 200, answer
    first, second = answer["predictions"]
    # Tokens come back as the client wrote them; the graph lowercases
    # (and digit-normalises) only for the vocabulary lookup.
    assert first["tokens"] == ["Show", "flights", "to", "Boston"]
    assert first["lengths"] == 4 and second["lengths"] == 2
    assert all(t in TAGS for t in first["tags"])
    assert second["tags"][2:] == ["", ""]  # padding
    assert first["intent"] in INTENTS


def test_token_ids_columnar_and_dtype_errors(tagger_server):
    status, answer = predict(
        tagger_server, {"inputs": {"token_ids": [[2, 3, 4, 5]]}}
    )
    assert status == 200, answer
    assert len(answer["outputs"]["tags"][0]) == 4
    status, answer = predict(tagger_server, {"instances": [[2.5, 3]]})
    assert status == 400
    assert "'token_ids' expects int32 values" in answer["error"]
    status, answer = predict(
        tagger_server, {"signature_name": "predict_sentences", "instances": [3]}
    )
    assert status == 400 and "expects strings" in answer["error"]
