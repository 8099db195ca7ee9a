#!/usr/bin/env python3
"""Seed ensembling of slot-tagger runs: does averaging help on ATIS?

Loads the `model.keras` of each run given (e.g. `kerascnn fit slot_tagger
--seed S --no-export --run-dir runs/tagger-sS` for several seeds), scores
each on the test split as `kerascnn evaluate` does (BIO-constrained
Viterbi, conlleval span F1 on the gold tag strings), then scores their
average: the tag and intent probabilities of the members averaged before
decoding. Members must share the vocabulary and the tag and intent names
(runs of one recipe do). Prints one JSON object on stdout.

    python benchmarks/tagger_ensemble.py --data-dir ../shared/data \\
        runs/tagger-s0 runs/tagger-s1 runs/tagger-s2 runs/tagger-s3
"""

import argparse
import json
import os
import statistics
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCORES = ("slot_f1", "intent_accuracy", "sentence_accuracy")


def _scores(report):
    return {key: round(100 * float(report[key]), 2) for key in SCORES}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="slot_tagger run folders")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--split", default="test")
    args = parser.parse_args(argv)
    if len(args.runs) < 2:
        parser.error("give at least two runs to average")

    sys.path.insert(0, REPO)
    import keras

    from kerascnn import tasks
    from kerascnn.errors import KerasCNNError
    from kerascnn.tasks.sequence_tagging import tagging

    members, metas = [], []
    for i, run in enumerate(args.runs):
        model, meta = tasks.load_model_and_metadata(run)
        model.name = f"member{i}"  # one name per nested model
        members.append(model)
        metas.append(meta)
    first = metas[0]
    for run, meta in zip(args.runs, metas):
        same = (meta.vocab, meta.class_names, meta.intent_names) == (
            first.vocab, first.class_names, first.intent_names
        )  # fmt: skip
        if meta.task != "sequence_tagging" or not same:
            raise KerasCNNError(
                f"{run} is not a slot tagger with the vocabulary and tags "
                f"of {args.runs[0]}."
            )
    token_ids = keras.Input((None,), dtype="int32", name="token_ids")
    outputs = [member(token_ids) for member in members]
    averaged = keras.Model(
        token_ids,
        {
            key: keras.layers.Average(name=key)([o[key] for o in outputs])
            for key in ("tags", "intent")
        },
    )

    def score(model):
        report = tagging.evaluate_atis(
            model, first, data_dir=args.data_dir, split=args.split
        )
        return _scores(report)

    each = {run: score(model) for run, model in zip(args.runs, members)}
    result = {
        "split": args.split,
        "members": each,
        "member_mean": {
            key: round(statistics.mean(s[key] for s in each.values()), 2)
            for key in SCORES
        },
        "ensemble": score(averaged),
        "method": "mean of the members' tag and intent probabilities, then "
        "BIO-constrained Viterbi; conlleval span F1 (percent)",
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
