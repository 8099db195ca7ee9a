"""The slot tagger's TFLite model: fixed length, unrolled LSTMs.

Keras 3's dynamic LSTM lowers to WHILE/TensorList ops that need Flex, so
the tagger is rebuilt with unrolled LSTMs at a fixed `max_length`; its
input is int32 token ids, `(1, max_length)`, 0-padded, with the
vocabulary in the metadata (`SequenceTagging.tflite_model`).
"""

from kerascnn import validation as v
from kerascnn.errors import ExportError
from kerascnn.export.tflite import TFLiteModel
from kerascnn.lazy import LazyModule
from kerascnn.tasks.sequence_tagging import graph

keras = LazyModule("keras")
tf = LazyModule("tensorflow")

DEFAULT_MAX_LENGTH = 64


def fixed_length_model(model, meta, config):
    """The tagger at a fixed length (`--max-length`, else the metadata's,
    else `DEFAULT_MAX_LENGTH`); examples are padded to it."""
    length = config.max_length or meta.max_length or DEFAULT_MAX_LENGTH
    converted = fixed_length_tagger(
        model,
        length,
        # In-graph decoding stays float: skipped for int8 (host decodes).
        tag_names=meta.class_names if config.quantize != "int8" else None,
    )
    metadata = dict(meta.to_dict(), max_length=length, input_shape=[length])
    return TFLiteModel(
        converted,
        metadata,
        input_shape=(length,),
        input_dtype="int32",
        input_name="token_ids",
        length=length,
    )


def _fixed_lstm(layer):
    """An unrolled, forward-running copy of an LSTM with the same weights."""

    config = dict(
        layer.get_config(),
        unroll=True,
        go_backwards=False,
        return_sequences=True,
        name=f"{layer.name}_unrolled",
    )
    return keras.layers.LSTM.from_config(config)


def fixed_length_tagger(model, max_length, tag_names=None):
    """The tagger as a fixed-length model with unrolled LSTMs.

    Rebuilding with `unroll=True` is not enough: in Keras 3.15 an unrolled
    `Bidirectional` LSTM misplaces the backward outputs of right-padded
    (masked) sentences. So the backward direction runs forward over each
    sentence reversed within its length (a gather, builtin in TFLite and
    int8-capable) and is reversed back, which is what the masked dynamic
    model computes. Weights are shared with `model`'s layers by copy.

    Args:
        model: the slot tagger built by `kerascnn.models` (layers
            `embedding`, `bilstm<i>`, `tags`, optional `intent_pool` and
            `intent`).
        max_length: int, the fixed sequence length.
        tag_names: IOB2 tag names; when given, the model also returns
            `tag_ids`, int32 `(batch, max_length)`: BIO-constrained Viterbi
            decoding unrolled over the fixed length (builtin ops only).

    Returns:
        A callable `keras.Model`: int32 `(batch, max_length)` token ids ->
        dict of `tags` (and `intent`) probabilities (and `tag_ids`).
    """

    v.check_positive_int("max_length", max_length, error=ExportError)
    layers = _fixed_layers(model, max_length)
    transitions = graph.iob_transitions(tag_names)
    model_class = _fixed_tagger_class(max_length, transitions)
    fixed = model_class(f"{model.name}_fixed{max_length}", layers)
    fixed(tf.zeros((1, max_length), tf.int32))
    return fixed


def _clone(layer):
    """A built copy of `layer` with its weights."""
    copy = layer.__class__.from_config(layer.get_config())
    if layer.weights:
        source = layer.input
        if isinstance(source, (list, tuple)):  # (inputs, mask) calls
            source = source[0]
        copy.build(source.shape)
        copy.set_weights(layer.get_weights())
    return copy


def _fixed_layers(model, max_length):
    """Copies of the tagger's layers; each BiLSTM as a forward and a
    backward unrolled LSTM at `max_length`."""
    names = {layer.name: layer for layer in model.layers}
    bilstms = [names[n] for n in sorted(names) if n.startswith("bilstm")]
    if "embedding" not in names or "tags" not in names or not bilstms:
        raise ExportError(
            "TFLite export of a sequence model supports the kerascnn "
            "slot_tagger (layers embedding, bilstm<i>, tags). "
            f"Received layers: {sorted(names)}"
        )
    bilstms.sort(key=lambda layer: int(layer.name[len("bilstm") :]))
    embedding = _clone(names["embedding"])
    directions, dim = [], embedding.output_dim
    for bilstm in bilstms:
        pair = []
        for layer in (bilstm.forward_layer, bilstm.backward_layer):
            copy = _fixed_lstm(layer)
            copy.build((None, max_length, dim))
            copy.set_weights(layer.get_weights())
            pair.append(copy)
        directions.append(pair)
        dim = sum(layer.units for layer in pair)
    has_intent = "intent" in names
    return {
        "embedding": embedding,
        "directions": directions,
        "tags": _clone(names["tags"]),
        "intent_pool": _clone(names["intent_pool"]) if has_intent else None,
        "intent": _clone(names["intent"]) if has_intent else None,
    }


def _fixed_tagger_class(max_length, transitions):
    """The fixed-length tagger model class (Keras imported lazily)."""

    class FixedLengthTagger(keras.Model):
        def __init__(self, name, layers):
            super().__init__(name=name)
            self.embedding = layers["embedding"]
            self.directions = layers["directions"]
            self.tags = layers["tags"]
            self.intent_pool = layers["intent_pool"]
            self.intent = layers["intent"]

        def call(self, token_ids):
            mask = tf.not_equal(token_ids, 0)
            lengths = tf.reduce_sum(tf.cast(mask, tf.int32), axis=1)
            steps = tf.range(max_length)[None, :]
            reverse = tf.where(
                steps < lengths[:, None], lengths[:, None] - 1 - steps, steps
            )
            x = self.embedding(token_ids)
            for forward, backward in self.directions:
                y = forward(x, mask=mask)
                x_rev = tf.gather(x, reverse, batch_dims=1)
                y_rev = tf.gather(
                    backward(x_rev, mask=mask), reverse, batch_dims=1
                )
                x = tf.concat([y, y_rev], axis=-1)
            outputs = {"tags": self.tags(x)}
            if transitions is not None:
                outputs["tag_ids"] = graph.constrained_decode_fixed(
                    outputs["tags"], mask, *transitions
                )
            if self.intent is not None:
                pooled = self.intent_pool(x, mask=mask)
                outputs["intent"] = self.intent(pooled)
            return outputs

    return FixedLengthTagger
