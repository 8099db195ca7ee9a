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
    checkpoint_monitor = "val_slot_f1"
    pictures = frozenset({"curves", "tags"})

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
