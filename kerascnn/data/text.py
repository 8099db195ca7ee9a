"""ATIS slot filling: the `.iob` reader, vocabularies and padded batches.

One utterance a line: `BOS w1 ... wn EOS<TAB>O t1 ... tn INTENT` (stray
spaces around the tab are allowed). BOS/EOS are dropped; each word keeps
its IOB2 tag; the label in the EOS position is the intent.

Id layout (the model's Embedding uses `mask_zero=True`):

* words: 0 = `"<pad>"`, 1 = `"<unk>"` (OOV), then training words;
* tags: 0 = `"<pad>"`, 1 = `"<unk>"` (a tag never seen in training), then
  training tags;
* intents: 0 = `"<unk>"` (an intent never seen in training, e.g. a
  multi-intent test label), then training intents.

Words are normalised before lookup (`normalize_word`): lowercased and
every digit replaced by the shape token `DIGIT`, so `1991` and `2014`
share one entry (`DIGITDIGITDIGITDIGIT`) and flight numbers, years and
times never seen in training are still known shapes. The exported
SavedModel applies the same two steps in-graph (`DIGIT_PATTERN`).

Vocabularies are built from the training portion only (the dev split, the
last 500 training utterances by default, is excluded). `Vocabulary.lookup`
returns a `keras.layers.StringLookup` that maps exactly like
`Vocabulary.encode`, for use inside exported graphs.
"""

import collections
import dataclasses
import re

from kerascnn.data import sources
from kerascnn.errors import DataError
from kerascnn.lazy import LazyModule

np = LazyModule("numpy")
keras = LazyModule("keras")
tf = LazyModule("tensorflow")

PAD = "<pad>"
UNK = "<unk>"
BUCKET_BOUNDARIES = (8, 12, 16, 20, 24, 32, 48)
DIGIT_TOKEN = "DIGIT"
DIGIT_PATTERN = "[0-9]"
_DIGIT = re.compile(DIGIT_PATTERN)


def normalize_word(word):
    """Lowercase; each ASCII digit becomes `DIGIT` (a word-shape token)."""
    return _DIGIT.sub(DIGIT_TOKEN, word.lower())


def normalize_words(words):
    """`normalize_word` over a sequence."""
    return [normalize_word(w) for w in words]


def uses_digit_shapes(vocab):
    """True when a vocabulary was built from `normalize_word`ed words.

    Runs from before the normalisation have raw digits in the vocabulary;
    their exports and predictions must not rewrite digits.
    """
    return any(DIGIT_TOKEN in str(w) for w in vocab) or not any(
        _DIGIT.search(str(w)) for w in vocab
    )


def tokenize(sentence, normalize_digits=True):
    """Raw text -> `(tokens as typed, normalised words)` by whitespace."""
    tokens = sentence.split()
    words = [w.lower() for w in tokens]
    if normalize_digits:
        words = [_DIGIT.sub(DIGIT_TOKEN, w) for w in words]
    return tokens, words


@dataclasses.dataclass(frozen=True)
class Utterance:
    """One ATIS line: words, one tag per word, and the intent."""

    words: tuple
    tags: tuple
    intent: str


def parse_iob_line(line, path="<string>", lineno=0):
    """Parses one `.iob` line into an `Utterance`.

    Raises:
        DataError: a malformed line, naming `path` and `lineno`.
    """
    where = f"{path}, line {lineno}"
    if "\t" not in line:
        raise DataError(
            f"{where}: expected 'BOS words EOS<TAB>O tags INTENT' but found "
            "no tab."
        )
    left, right = line.split("\t", 1)
    words, labels = left.split(), right.split()
    if len(words) < 2 or words[0] != "BOS" or words[-1] != "EOS":
        raise DataError(
            f"{where}: the words must start with BOS and end with EOS."
        )
    if len(labels) != len(words):
        raise DataError(
            f"{where}: {len(words) - 2} word(s) but {len(labels) - 2} tag(s) "
            f"(counting BOS/EOS: {len(words)} tokens, {len(labels)} labels); "
            "every token needs exactly one tag."
        )
    return Utterance(tuple(words[1:-1]), tuple(labels[1:-1]), labels[-1])


def read_iob(path, skip_bad=False):
    """Reads an ATIS `.iob` file into a list of `Utterance`s.

    Args:
        path: the file.
        skip_bad: skip malformed lines with a warning instead of raising.
    """
    utterances, bad = [], 0
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                utterances.append(parse_iob_line(line, path, lineno))
            except DataError:
                if not skip_bad:
                    raise
                bad += 1
    sources.warn_skipped(bad, f"in {path}")
    return utterances


class Vocabulary:
    """An ordered list of tokens with reserved ids for padding and OOV.

    Args:
        tokens: the full id -> token list, reserved tokens included.
        mask_token: token at id 0 used for padding, or `None`.
        oov_token: token for unknown inputs (id 1 with a mask, else 0).
    """

    def __init__(self, tokens, mask_token=PAD, oov_token=UNK):
        self.tokens = list(tokens)
        self.mask_token = mask_token
        self.oov_token = oov_token
        self.index = {t: i for i, t in enumerate(self.tokens)}
        self.oov_id = self.index[oov_token]

    @classmethod
    def build(cls, sequences, mask_token=PAD, oov_token=UNK):
        """Builds from token sequences: most frequent first, ties by name."""
        counts = collections.Counter(t for seq in sequences for t in seq)
        reserved = [t for t in (mask_token, oov_token) if t is not None]
        ordered = sorted(
            (t for t in counts if t not in reserved),
            key=lambda t: (-counts[t], t),
        )
        return cls(reserved + ordered, mask_token, oov_token)

    def __len__(self):
        return len(self.tokens)

    def encode(self, tokens):
        """Token list -> int32 ids (unknown tokens get the OOV id)."""
        get = self.index.get
        return np.array([get(t, self.oov_id) for t in tokens], np.int32)

    def decode(self, ids):
        """Ids -> tokens; padding ids are dropped."""
        return [
            self.tokens[int(i)]
            for i in ids
            if self.mask_token is None or int(i) != 0
        ]

    def lookup(self, invert=False):
        """A `keras.layers.StringLookup` with exactly these ids."""

        reserved = 2 if self.mask_token is not None else 1
        return keras.layers.StringLookup(
            vocabulary=self.tokens[reserved:],
            mask_token=self.mask_token,
            oov_token=self.oov_token,
            num_oov_indices=1,
            invert=invert,
        )

    def to_list(self):
        return list(self.tokens)


@dataclasses.dataclass
class AtisVocabularies:
    """The three vocabularies of the ATIS task."""

    words: Vocabulary
    tags: Vocabulary
    intents: Vocabulary

    @classmethod
    def build(cls, utterances):
        """Builds all three from (training) utterances."""
        return cls(
            Vocabulary.build(normalize_words(u.words) for u in utterances),
            Vocabulary.build(u.tags for u in utterances),
            Vocabulary.build(([u.intent] for u in utterances), mask_token=None),
        )

    @classmethod
    def from_lists(cls, words, tags, intents):
        """Rebuilds from `DatasetInfo.vocab`, `class_names`, `intent_names`."""
        return cls(
            Vocabulary(words), Vocabulary(tags), Vocabulary(intents, None)
        )


def split_atis(paths, split, validation_size=None, skip_bad=False):
    """Reads ATIS and returns `(utterances of split, train-only, sizes)`.

    The dev split is the last `validation_size` (default 500) training
    utterances; the vocabulary portion is the training file without them.
    """
    train = read_iob(paths["train"], skip_bad)
    n_dev = sources.validation_count(
        len(train), validation_size, sources.ATIS_DEV_SIZE
    )
    portion = {"train": train[:-n_dev], "validation": train[-n_dev:]}
    portion["test"] = (
        read_iob(paths["test"], skip_bad) if split == "test" else None
    )
    sizes = {"train": len(train) - n_dev, "validation": n_dev}
    sizes["test"] = (
        len(portion["test"]) if split == "test" else _count_lines(paths["test"])
    )
    return portion[split], portion["train"], sizes


def _count_lines(path):
    with open(path, encoding="utf-8") as f:
        return sum(1 for line in f if line.strip())


def encode_utterances(utterances, vocabs):
    """Returns ragged word ids, ragged tag ids and intent ids (int32)."""

    words = [vocabs.words.encode(normalize_words(u.words)) for u in utterances]
    tags = [vocabs.tags.encode(u.tags) for u in utterances]
    intents = vocabs.intents.encode([u.intent for u in utterances])
    return (
        tf.ragged.constant(words, dtype=tf.int32, ragged_rank=1),
        tf.ragged.constant(tags, dtype=tf.int32, ragged_rank=1),
        tf.constant(intents, tf.int32),
    )


def make_dataset(utterances, vocabs):
    """Unbatched `(word_ids (T,), {"tags": (T,), "intent": ()})` dataset."""

    words, tags, intents = encode_utterances(utterances, vocabs)
    ds = tf.data.Dataset.from_tensor_slices((words, tags, intents))
    return ds.map(
        lambda w, t, i: (w, {"tags": t, "intent": i}),
        num_parallel_calls=tf.data.AUTOTUNE,
    )


def batch_dataset(ds, batch_size, bucket=False):
    """Pads per batch with 0; with `bucket`, groups similar lengths.

    Bucketing (training) changes the order of examples; evaluation keeps
    file order with a plain `padded_batch`.
    """

    if not bucket:
        return ds.padded_batch(batch_size)
    return ds.bucket_by_sequence_length(
        element_length_func=lambda w, labels: tf.shape(w)[0],
        bucket_boundaries=list(BUCKET_BOUNDARIES),
        bucket_batch_sizes=[batch_size] * (len(BUCKET_BOUNDARIES) + 1),
    )
