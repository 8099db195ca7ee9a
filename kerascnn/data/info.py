"""`DatasetInfo`: what a loaded split is and how it was prepared."""

import dataclasses
import json

from kerascnn.data import text

# `DatasetInfo.kind`: what the examples of a data set are.
IMAGES = "images"
TAGGED_TEXT = "tagged_text"
KINDS = (IMAGES, TAGGED_TEXT)


@dataclasses.dataclass
class DatasetInfo:
    """What a loaded data set is and how its examples were prepared.

    Attributes:
        name: the name passed to `load`.
        kind: what the examples are: `IMAGES` (`"images"`: float32 images
            and int32 class ids) or `TAGGED_TEXT` (`"tagged_text"`: word
            ids, one tag per word and an intent); a task says which kind
            it consumes.
        source: where it was found, e.g. `"/data/mnist (IDX files)"`.
        split: the split loaded (`"train"`, `"validation"`, `"test"`).
        num_examples: examples in this split after `limit` / `skip_bad`.
        split_sizes: dict split -> number of examples (before `limit`).
        input_shape: model input shape, e.g. `(28, 28, 1)`; `(None,)` for
            text.
        num_classes: number of classes (of tags, padding included, for
            ATIS).
        class_names: class names; tag names (id order) for ATIS.
        preprocessing: JSON-able normalization spec, see
            `preprocessing.image_preprocessing`; `{}` for text.
        augmentation: training recipe (`"none"`, `"flip"`,
            `"pad_crop_flip"`) or `None` when augmentation is off.
        vocab: words (index = id) for text, else `None`.
        intent_names: intents (index = id) for text, else `None`.
        max_length: longest utterance in this split (text), else `None`.
        storage: how the split is read and why, one line (images), e.g.
            `"2,500 images in memory (~0.35 GiB decoded, fits ...)"`.
    """

    name: str
    kind: str
    source: str
    split: str
    num_examples: int
    split_sizes: dict
    input_shape: tuple
    num_classes: int
    class_names: list
    preprocessing: dict = dataclasses.field(default_factory=dict)
    augmentation: str = None
    vocab: list = None
    intent_names: list = None
    max_length: int = None
    storage: str = None

    def to_dict(self):
        """A JSON-able dict (tuples become lists)."""
        d = dataclasses.asdict(self)
        d["input_shape"] = list(self.input_shape)
        return d

    def to_json(self, **kwargs):
        return json.dumps(self.to_dict(), **kwargs)

    @classmethod
    def from_dict(cls, d):
        d = dict(d)
        d["input_shape"] = tuple(d["input_shape"])
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    @classmethod
    def from_json(cls, s):
        return cls.from_dict(json.loads(s))

    @property
    def vocabularies(self):
        """`text.AtisVocabularies` for text data sets (else `None`)."""
        if not self.vocab:
            return None
        return text.AtisVocabularies.from_lists(
            self.vocab, self.class_names, self.intent_names
        )
