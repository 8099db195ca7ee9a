"""Layers of the slot tagger: word dropout and the intent pooling.

`WordDropout` trains the `<unk>` embedding (Kiperwasser & Goldberg, 2016);
`IntentPool` turns BiLSTM outputs into one sentence vector for the intent
head (mean, or final states plus attention as in Liu & Lane, 2016).
"""

import keras
from keras import ops

from kerascnn.errors import InvalidArgumentError

INTENT_POOLINGS = ("mean", "attention")
UNKNOWN_WORD_ID = 1


@keras.saving.register_keras_serializable(package="kerascnn")
class WordDropout(keras.layers.Layer):
    """Training only: replaces each real token id by `<unk>` with `rate`.

    Padding (id 0) is kept, so the mask is unchanged. At inference the
    layer is the identity.
    """

    def __init__(self, rate, unknown_id=UNKNOWN_WORD_ID, seed=None, **kw):
        super().__init__(**kw)
        self.rate = float(rate)
        self.unknown_id = int(unknown_id)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, token_ids, training=None):
        if not training or not self.rate:
            return token_ids
        draw = keras.random.uniform(
            ops.shape(token_ids), seed=self.seed_generator
        )
        drop = ops.logical_and(draw < self.rate, ops.not_equal(token_ids, 0))
        unknown = ops.full_like(token_ids, self.unknown_id)
        return ops.where(drop, unknown, token_ids)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "rate": self.rate,
            "unknown_id": self.unknown_id,
            "seed": self.seed,
        }


@keras.saving.register_keras_serializable(package="kerascnn")
class IntentPool(keras.layers.Layer):
    """Sentence vector from BiLSTM outputs `(batch, T, 2u)` and a mask.

    `"mean"`: the masked average. `"attention"`: the forward state at the
    last real token, the backward state at the first token (the LSTMs'
    final states) and an attention-weighted sum of all outputs, concatenated
    (twice the input width).
    """

    def __init__(self, pooling="mean", **kw):
        super().__init__(**kw)
        if pooling not in INTENT_POOLINGS:
            raise InvalidArgumentError(
                f"Unknown intent_pooling {pooling!r}; choose one of "
                f"{', '.join(INTENT_POOLINGS)}."
            )
        self.pooling = pooling
        self.supports_masking = True

    def build(self, input_shape):
        if self.pooling == "attention":
            self.score = keras.layers.Dense(1, name="score")
            self.score.build(input_shape)

    def call(self, x, mask=None):
        if mask is None:
            mask = ops.ones(ops.shape(x)[:2], dtype="bool")
        weights = ops.cast(mask, x.dtype)[..., None]
        if self.pooling == "mean":
            total = ops.sum(x * weights, axis=1)
            return total / ops.maximum(ops.sum(weights, axis=1), 1.0)
        half = ops.shape(x)[-1] // 2
        lengths = ops.sum(ops.cast(mask, "int32"), axis=1)
        last = ops.maximum(lengths - 1, 0)
        forward_final = ops.take_along_axis(
            x[:, :, :half], last[:, None, None], axis=1
        )[:, 0]
        backward_final = x[:, 0, half:]
        scores = ops.squeeze(self.score(x), -1)
        scores = ops.where(mask, scores, ops.full_like(scores, -1e9))
        attention = ops.softmax(scores, axis=-1)[..., None]
        context = ops.sum(x * attention, axis=1)
        return ops.concatenate([forward_final, backward_final, context], -1)

    def compute_mask(self, x, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        width = input_shape[-1]
        if self.pooling == "attention" and width is not None:
            width *= 2
        return (input_shape[0], width)

    def get_config(self):
        return {**super().get_config(), "pooling": self.pooling}
