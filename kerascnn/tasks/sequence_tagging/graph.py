"""In-graph pieces of the exported slot tagger (plain TensorFlow ops).

* `normalize_words`: the training normalisation (lowercase, each digit ->
  `DIGIT`, `kerascnn.data.text.normalize_word`) on a string tensor.
* `constrained_decode`: BIO-constrained Viterbi over the tag softmax, the
  same decoding as `tagging.viterbi_decode`, as a `tf.scan`, so
  a SavedModel loaded with TensorFlow alone tags exactly like kerascnn.
* `constrained_decode_fixed`: the same, unrolled over a fixed length
  (TFLite builtin ops only: no loops or tensor lists).
* `decode_tag_ids`: which of them applies (IOB2 tag names or not), as
  the SavedModel, ONNX and OpenVINO graphs decode.
"""

from kerascnn.data import text
from kerascnn.lazy import LazyModule
from kerascnn.tasks.sequence_tagging.tagging import allowed_transitions

np = LazyModule("numpy")
tf = LazyModule("tensorflow")

NEG_INF = -1e30


def normalize_words(words, normalize_digits=True):
    """Lowercases (UTF-8 aware) and maps digits to `DIGIT` in-graph."""

    words = tf.strings.lower(words, encoding="utf-8")
    if normalize_digits:
        words = tf.strings.regex_replace(
            words, text.DIGIT_PATTERN, text.DIGIT_TOKEN
        )
    return words


def iob_transitions(tag_names):
    """`(start, transitions)` of `tagging.allowed_transitions` for IOB2
    tag names, `None` for others (decoded by argmax)."""
    names = [str(n) for n in tag_names or ()]
    if not any(n.startswith("I-") for n in names):
        return None
    return allowed_transitions(names)


def decode_tag_ids(tag_probs, token_ids, tag_names):
    """Tag ids int64 `(batch, T)`, 0 at padding (token id 0):
    BIO-constrained Viterbi for IOB2 `tag_names`, else argmax."""

    mask = tf.not_equal(token_ids, 0)
    transitions = iob_transitions(tag_names)
    if transitions is None:
        ids = tf.argmax(tag_probs, axis=-1, output_type=tf.int64)
        return tf.where(mask, ids, tf.zeros_like(ids))
    lengths = tf.reduce_sum(tf.cast(mask, tf.int32), axis=1)
    return constrained_decode(tag_probs, lengths, *transitions)


def constrained_decode(tag_probs, lengths, start, transitions):
    """Best valid IOB2 tag ids `(batch, T)` int64; padding positions 0.

    Args:
        tag_probs: float `(batch, T, K)` softmax outputs.
        lengths: int `(batch,)` real tokens per row.
        start: bool `(K,)` tags allowed first.
        transitions: bool `(K, K)`, `[a, b]`: `b` may follow `a`.
    """

    log_p = tf.math.log(tf.maximum(tf.cast(tag_probs, tf.float32), 1e-12))
    k = tf.shape(log_p)[-1]
    penalty = tf.where(tf.constant(transitions), 0.0, NEG_INF)
    start_penalty = tf.where(tf.constant(start), 0.0, NEG_INF)
    time_major = tf.transpose(log_p, [1, 0, 2])
    steps = tf.range(tf.shape(log_p)[1])
    lengths = tf.cast(lengths, tf.int32)
    identity = tf.broadcast_to(
        tf.range(k, dtype=tf.int32)[None, :], tf.shape(log_p[:, 0])
    )

    def forward(carry, inputs):
        score, _ = carry
        step_log_p, t = inputs
        candidates = score[:, :, None] + penalty[None]
        best_prev = tf.argmax(candidates, axis=1, output_type=tf.int32)
        new = tf.reduce_max(candidates, axis=1) + step_log_p
        live = (t < lengths)[:, None]
        return tf.where(live, new, score), tf.where(live, best_prev, identity)

    first = time_major[0] + start_penalty[None]
    scores, pointers = tf.scan(
        forward,
        (time_major[1:], steps[1:]),
        initializer=(first, identity),
    )
    final = tf.concat([first[None], scores], axis=0)[-1]
    last_tag = tf.argmax(final, axis=-1, output_type=tf.int32)

    def backward(tag, step_pointers):
        return tf.gather(step_pointers, tag, batch_dims=1)

    # Backtrack over the reversed pointers and reverse the result: the
    # same as `tf.scan(..., reverse=True)`, which tf2onnx converts wrongly
    # (the ONNX file's tag ids came out in the wrong order).
    earlier = tf.reverse(
        tf.scan(backward, tf.reverse(pointers, [0]), initializer=last_tag),
        [0],
    )
    path = tf.concat([earlier, last_tag[None]], axis=0)
    path = tf.transpose(path, [1, 0])
    mask = steps[None, :] < lengths[:, None]
    return tf.cast(tf.where(mask, path, 0), tf.int64)


def constrained_decode_fixed(tag_probs, mask, start, transitions):
    """`constrained_decode` unrolled over the static length; int32 ids."""

    length = int(tag_probs.shape[1])
    log_p = tf.math.log(tf.maximum(tf.cast(tag_probs, tf.float32), 1e-12))
    penalty = tf.constant(np.where(transitions, 0.0, NEG_INF), tf.float32)
    start_penalty = tf.constant(np.where(start, 0.0, NEG_INF), tf.float32)
    k = len(start)
    identity = tf.zeros_like(tf.cast(log_p[:, 0], tf.int32)) + tf.range(
        k, dtype=tf.int32
    )
    score = log_p[:, 0] + start_penalty
    pointers = []
    for t in range(1, length):
        candidates = score[:, :, None] + penalty[None]
        live = mask[:, t : t + 1]
        best = tf.argmax(candidates, axis=1, output_type=tf.int32)
        new = tf.reduce_max(candidates, axis=1) + log_p[:, t]
        score = tf.where(live, new, score)
        pointers.append(tf.where(live, best, identity))
    tag = tf.argmax(score, axis=-1, output_type=tf.int32)
    path = [tag]
    for step_pointers in reversed(pointers):
        tag = tf.gather(step_pointers, tag, batch_dims=1)
        path.append(tag)
    path = tf.stack(path[::-1], axis=1)
    return tf.where(mask, path, tf.zeros_like(path))
