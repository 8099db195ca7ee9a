"""Bidirectional-LSTM slot tagger with an optional joint intent head.

token ids -> word dropout (training only) -> Embedding (index 0 is padding
and is masked) -> dropout -> `num_layers` x Bidirectional(LSTM,
return_sequences) -> dropout -> per-token softmax over IOB slot tags. With
`num_intents` set, an intent head reads the last BiLSTM layer through
`IntentPool` (`"mean"`: masked average; `"attention"`: the final forward
and backward states plus an attention-weighted sum) and the model returns a
dict `{"tags": ..., "intent": ...}`.

This is the recurrent slot-filling setup of Mesnil et al. (2015) with an
LSTM (Yao et al., 2014), the joint intent head of Hakkani-Tur et al.
(2016) and the attention pooling of Liu & Lane (2016). Word dropout
(Kiperwasser & Goldberg, 2016) trains the `<unk>` embedding so that a word
never seen in training (a new city) still gets its tag from the context.
Inputs have variable length by default (`input_shape=(None,)`);
`unroll=True` with a fixed length is what the TFLite export uses.
"""

import keras

from kerascnn.errors import InvalidArgumentError
from kerascnn.layers.text import IntentPool, WordDropout
from kerascnn.models import _validation as v
from kerascnn.models.registry import register_model

REFERENCE = (
    "Mesnil et al. (2015), Using recurrent neural networks for slot filling "
    "in spoken language understanding (https://doi.org/10.1109/"
    "TASLP.2014.2383614); Hakkani-Tur et al. (2016), multi-domain joint "
    "semantic frame parsing; Liu & Lane (2016), attention-based recurrent "
    "neural network models for joint intent detection and slot filling"
)


def _check_sequence_shape(input_shape, unroll):
    shape = tuple(input_shape)
    ok = len(shape) == 1 and (
        shape[0] is None or (isinstance(shape[0], int) and shape[0] >= 1)
    )
    if not ok:
        raise InvalidArgumentError(
            "slot_tagger expects input_shape=(sequence_length,) with a "
            f"positive int or None. Received: input_shape={shape}"
        )
    if unroll and shape[0] is None:
        raise InvalidArgumentError(
            "slot_tagger needs a fixed sequence length to unroll. "
            f"Received: input_shape={shape}, unroll=True"
        )
    return shape


@register_model(
    default_input_shape=(None,),
    default_num_classes=128,
    reference=REFERENCE,
    task="sequence_tagging",
    num_params=367_392,
)
def slot_tagger(
    input_shape=(None,),
    num_classes=128,
    vocab_size=1000,
    num_intents=None,
    embedding_dim=100,
    units=128,
    num_layers=1,
    dropout=0.0,
    embedding_dropout=0.0,
    word_dropout=0.0,
    intent_pooling="mean",
    unroll=False,
    name="slot_tagger",
):
    """Builds the BiLSTM IOB slot tagger.

    Args:
        input_shape: `(sequence_length,)`, `None` for any length. Defaults
            to `(None,)`.
        num_classes: int, number of slot tags (the output width per token).
            Defaults to `128`.
        vocab_size: int, embedding rows including padding id 0 and the OOV
            id 1. Defaults to `1000`.
        num_intents: int or `None`; adds the joint intent head. Defaults to
            `None`.
        embedding_dim: int. Defaults to `100`.
        units: int, LSTM units per direction. Defaults to `128`.
        num_layers: int, stacked BiLSTM layers. Defaults to `1`.
        dropout: float, dropout before the heads and on the inputs of
            stacked BiLSTM layers after the first. Defaults to `0.0`.
        embedding_dropout: float, dropout on the embeddings (before the
            first BiLSTM). Defaults to `0.0`.
        word_dropout: float, training-time probability of replacing a word
            by `<unk>` (id 1), which trains the unknown-word embedding.
            Defaults to `0.0`.
        intent_pooling: `"mean"` or `"attention"` (see `IntentPool`).
            Defaults to `"mean"`.
        unroll: bool, unroll the LSTMs (needs a fixed length; used for
            builtin-only TFLite export). Defaults to `False`.
        name: model name. Defaults to `"slot_tagger"`.

    Returns:
        A `keras.Model` mapping int token ids `(batch, length)` to tag
        probabilities `(batch, length, num_classes)` (and intents).
    """
    shape = _check_sequence_shape(input_shape, unroll)
    v.check_positive_int("num_classes", num_classes)
    v.check_positive_int("vocab_size", vocab_size, minimum=2)
    v.check_positive_int("embedding_dim", embedding_dim)
    v.check_positive_int("units", units)
    v.check_positive_int("num_layers", num_layers)
    if num_intents is not None:
        v.check_positive_int("num_intents", num_intents)
    dropout = v.check_rate("dropout", dropout)
    embedding_dropout = v.check_rate("embedding_dropout", embedding_dropout)
    word_dropout = v.check_rate("word_dropout", word_dropout)

    inputs = keras.Input(shape=shape, dtype="int32", name="token_ids")
    ids = inputs
    if word_dropout:
        ids = WordDropout(word_dropout, name="word_dropout")(ids)
    x = keras.layers.Embedding(
        vocab_size, embedding_dim, mask_zero=True, name="embedding"
    )(ids)
    if embedding_dropout:
        x = keras.layers.Dropout(embedding_dropout, name="embedding_dropout")(x)
    for i in range(1, num_layers + 1):
        x = keras.layers.Bidirectional(
            keras.layers.LSTM(
                units,
                return_sequences=True,
                dropout=dropout if i > 1 else 0.0,
                unroll=unroll,
                name=f"lstm{i}",
            ),
            name=f"bilstm{i}",
        )(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    # float32 softmax outputs under mixed precision.
    tags = keras.layers.Dense(
        num_classes, activation="softmax", name="tags", dtype="float32"
    )(x)
    if num_intents is None:
        return keras.Model(inputs, tags, name=name)
    pooled = IntentPool(intent_pooling, name="intent_pool")(x)
    intent = keras.layers.Dense(
        num_intents, activation="softmax", name="intent", dtype="float32"
    )(pooled)
    return keras.Model(inputs, {"tags": tags, "intent": intent}, name=name)
