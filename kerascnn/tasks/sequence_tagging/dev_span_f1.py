"""The slot tagger's model selection: conlleval span F1 on the dev split.

Imported only when a tagger trains (it imports Keras).
"""

import keras

from kerascnn.tasks.sequence_tagging.tagging import evaluate_tagger


class DevSpanF1(keras.callbacks.Callback):
    """Adds `val_slot_f1` (and `val_intent_acc`) to the epoch logs.

    Scores the dev split with the vocabularies of the run's own metadata.
    Must come before the checkpoint and the CSV logger in the callback
    list so they see the value. Keeps the best epoch's weights (by dev
    span F1, ties by intent accuracy) and restores them when training
    ends, so the final model is the selected one.
    """

    def __init__(self, utterances, metadata):
        super().__init__()
        self.utterances = utterances
        self.metadata = metadata
        self.best = None
        self.best_weights = None
        self.best_epoch = None

    def on_epoch_end(self, epoch, logs=None):
        report = evaluate_tagger(self.model, self.metadata, self.utterances)
        f1 = report["slot_f1"]
        intent = report.get("intent_accuracy", 0.0)
        if logs is not None:
            logs["val_slot_f1"] = f1
            logs["val_intent_acc"] = intent
        if self.best is None or (f1, intent) > self.best:
            self.best = (f1, intent)
            self.best_epoch = epoch + 1
            self.best_weights = self.model.get_weights()

    def on_train_end(self, logs=None):
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)
