"""Sequence tagging: one tag per token plus the sentence's intent (ATIS)."""

from kerascnn.tasks.base import Task


class SequenceTagging(Task):
    """Token ids in, a tag per token and an intent out (the slot tagger).

    The best checkpoint is picked by conlleval span F1 on the dev split
    (`val_slot_f1`, logged by `kerascnn.tasks.dev_span_f1.DevSpanF1`), not
    by token accuracy: most tokens are `O`.
    """

    name = "sequence_tagging"
    input_rank = 1
    inputs = "text"
    consumes = "tagged_text"
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
        from kerascnn.tagging import load_atis_split
        from kerascnn.tasks.dev_span_f1 import DevSpanF1

        dev, _ = load_atis_split("validation", config.data_dir)
        return [DevSpanF1(dev, metadata)]

    def evaluate(self, model, metadata, dataset, **options):
        from kerascnn.tagging import evaluate_atis

        for unused in ("batch_size", "validation_split", "progress"):
            options.pop(unused, None)
        return evaluate_atis(model, metadata, **options)

    # --- Export: token ids in, BIO-decoded tags (and intent) out ---

    def add_serving_signatures(self, archive, model, meta):
        from kerascnn.export.saved_model import add_tagger_signatures

        add_tagger_signatures(archive, model, meta)

    def verification_examples(self, meta, count, data_dir):
        """Real ATIS sentences scored by span F1 against the file's gold
        tag strings; other data sets as token-id arrays."""
        from kerascnn.export import examples

        if meta.dataset != "atis":
            return super().verification_examples(meta, count, data_dir)
        x, y = examples.load_tagger_examples(meta, "test", count, data_dir)
        return x, y, "test"

    def synthetic_inputs(self, model, meta, count):
        from kerascnn.export.examples import random_token_ids

        return random_token_ids(meta, count)

    def compared_outputs(self, outputs):
        from kerascnn.export.verify import tag_and_intent_outputs

        return tag_and_intent_outputs(outputs)

    def verification_scores(self, outputs, labels, inputs):
        from kerascnn.export.verify import tagger_scores

        return tagger_scores(outputs, labels, inputs)

    def tflite_model(self, model, meta, config):
        from kerascnn.export.tflite import fixed_length_model

        return fixed_length_model(model, meta, config)

    def named_input_spec(self, model):
        from kerascnn.export.named_io import token_ids_spec

        return token_ids_spec()

    def named_outputs(self, outputs, inputs, meta):
        from kerascnn.export.named_io import tagger_outputs

        return tagger_outputs(outputs, inputs, meta.class_names)

    def card_input(self, meta):
        from kerascnn.export.model_card import token_input

        return token_input(meta)

    def card_limitations(self, meta):
        from kerascnn.export.model_card import TOKEN_ID_LIMITATION

        return [TOKEN_ID_LIMITATION]
