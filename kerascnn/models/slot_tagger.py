"""Bidirectional-LSTM slot tagger with an optional joint intent head.

token ids -> Embedding (index 0 is padding and is masked) -> `num_layers`
x Bidirectional(LSTM, return_sequences) -> per-token softmax over IOB slot
tags. With `num_intents` set, a masked average of the last LSTM layer feeds
a second softmax over intents, and the model returns a dict
`{"tags": ..., "intent": ...}`.

This is the recurrent slot-filling setup of Mesnil et al. (2015) with an
LSTM (Yao et al., 2014) and the joint intent head of Hakkani-Tur et al.
(2016). Inputs have variable length by default (`input_shape=(None,)`);
`unroll=True` with a fixed length is what the TFLite export uses.
"""

import keras

from kerascnn.errors import InvalidArgumentError
from kerascnn.models import _validation as v
from kerascnn.models.registry import register_model

REFERENCE = (
    "Mesnil et al. (2015), Using recurrent neural networks for slot filling "
    "in spoken language understanding (https://doi.org/10.1109/"
    "TASLP.2014.2383614); Hakkani-Tur et al. (2016), multi-domain joint "
    "semantic frame parsing"
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
            id. Defaults to `1000`.
        num_intents: int or `None`; adds the joint intent head. Defaults to
            `None`.
        embedding_dim: int. Defaults to `100`.
        units: int, LSTM units per direction. Defaults to `128`.
        num_layers: int, stacked BiLSTM layers. Defaults to `1`.
        dropout: float, dropout on the LSTM inputs and before the heads.
            Defaults to `0.0`.
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

    inputs = keras.Input(shape=shape, dtype="int32", name="token_ids")
    x = keras.layers.Embedding(
        vocab_size, embedding_dim, mask_zero=True, name="embedding"
    )(inputs)
    for i in range(1, num_layers + 1):
        x = keras.layers.Bidirectional(
            keras.layers.LSTM(
                units,
                return_sequences=True,
                dropout=dropout,
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
    pooled = keras.layers.GlobalAveragePooling1D(name="intent_pool")(x)
    intent = keras.layers.Dense(
        num_intents, activation="softmax", name="intent", dtype="float32"
    )(pooled)
    return keras.Model(inputs, {"tags": tags, "intent": intent}, name=name)
