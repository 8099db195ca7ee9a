"""Sequence tagging: one tag per token plus the sentence's intent (ATIS)."""

from kerascnn.tasks.base import Task
from kerascnn.tasks.sequence_tagging import export as _export
from kerascnn.tasks.sequence_tagging import tagging
from kerascnn.tasks.sequence_tagging import tflite as _tflite


class SequenceTagging(Task):
    """Token ids in, a tag per token and an intent out (the slot tagger).

    The best checkpoint is picked by conlleval span F1 on the dev split
    (`val_slot_f1`, logged by `dev_span_f1.DevSpanF1`), not by token
    accuracy: most tokens are `O`.
    """

    name = "sequence_tagging"
    consumes = "tagged_text"
    input_rank = 1
    predict_input = "text"
    checkpoint_monitor = "val_slot_f1"
    pictures = frozenset({"curves", "tags", "explain"})
    example_noun = "sentences"
    macs_note = "per sentence at the traced length"

    def builder_options(self, info):
        return {
            "vocab_size": len(info.vocab),
            "num_intents": len(info.intent_names),
        }

    def loss_and_metrics(self, make_loss):
        loss = {"tags": make_loss(), "intent": make_loss()}
        return loss, {"tags": ["accuracy"], "intent": ["accuracy"]}

    def epoch_callbacks(self, config, metadata):
        # Imported here: the callback subclasses a Keras class, and the
        # CLI asks tasks questions before Keras is loaded.
        from kerascnn.tasks.sequence_tagging.dev_span_f1 import DevSpanF1

        dev, _ = tagging.load_atis_split("validation", config.data_dir)
        return [DevSpanF1(dev, metadata)]

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
        """`tagging.evaluate_atis` on `split` of the ATIS `.iob` files
        (conlleval spans on the gold tag strings). ATIS has its own
        splits of text files: `validation_split`, `skip_bad` and
        `progress` (image folders) do not apply, and sentences are
        batched by length (`TaggerPredictor`), not by `batch_size`."""
        return tagging.evaluate_atis(
            model, metadata, data_dir=data_dir, split=split, limit=limit
        )

    # --- Export: token ids in, BIO-decoded tags (and intent) out ---

    def add_serving_signatures(self, archive, model, meta):
        _export.add_signatures(archive, model, meta)

    def verification_examples(self, meta, count, data_dir, skip_bad=False):
        """Real ATIS sentences scored by span F1 against the file's gold
        tag strings; other data sets as token-id arrays."""
        if meta.dataset != "atis":
            return super().verification_examples(
                meta, count, data_dir, skip_bad
            )
        x, y = _export.load_examples(meta, "test", count, data_dir)
        return x, y, "test"

    def synthetic_inputs(self, model, meta, count):
        return _export.random_token_ids(meta, count)

    def compared_outputs(self, outputs):
        return _export.compared_outputs(outputs)

    def verification_scores(self, outputs, labels, inputs):
        return _export.scores(outputs, labels, inputs)

    def tflite_model(self, model, meta, config):
        return _tflite.fixed_length_model(model, meta, config)

    def named_input_spec(self, model):
        return _export.token_ids_spec()

    def named_outputs(self, outputs, inputs, meta):
        return _export.named_outputs(outputs, inputs, meta.class_names)

    def warmup_values(self, key, kind, x, meta):
        return _export.warmup_values(key, kind, x, meta)

    def card_input(self, meta):
        return _export.card_input(meta)

    def card_limitations(self, meta):
        return [_export.TOKEN_ID_LIMITATION]
