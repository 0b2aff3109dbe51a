"""Label-consistency rules (augment.consistency): label_flip, score_drift, near_duplicate.

The fast tests use hand-made embeddings (each text a chosen vector); the slow ones embed
hand-written sentences with the embedded MiniLM encoder, as the augment stage does.
"""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from augment.consistency import LabelChecks
from augment.params import load_params
from tests.augment.fakes import ROOT

FILTERS = load_params(str(ROOT / "params.yaml")).filters


def _unit(*xs):
    v = np.asarray(xs, dtype=float)
    return v / np.linalg.norm(v)


class TableEmbed:
    """texts -> vectors from a dict; records every text it was asked for."""

    def __init__(self, vectors: dict[str, np.ndarray]):
        self.vectors = vectors
        self.seen: list[str] = []

    def __call__(self, texts):
        self.seen += list(texts)
        return np.stack([self.vectors[t] for t in texts])


def _sentiment_table(rng, per_class=10):
    """Two well separated sentiment classes (0 and 4) in a 6-d embedding space."""
    rows, vectors = [], {}
    for label, axis in ((0, 0), (4, 1)):
        for i in range(per_class):
            text = f"class {label} review {i}"
            vectors[text] = _unit(*(np.eye(6)[axis] * 3 + rng.normal(scale=0.3, size=6)))
            rows.append((f"s{label}{i}", text, label))
    return pd.DataFrame(rows, columns=["id", "sentence", "label"]), vectors


def test_a_sentiment_flip_is_rejected_and_a_faithful_paraphrase_kept():
    real, vectors = _sentiment_table(np.random.default_rng(0))
    vectors["faithful"] = _unit(3, 0.2, 0.1, 0, 0, 0)  # still on the class-0 side
    vectors["flipped"] = _unit(0.1, 3, 0, 0.2, 0, 0)  # now on the class-4 side
    checks = LabelChecks("sst", real, TableEmbed(vectors), FILTERS, seed=7)
    shift = checks.label_shift(["s00", "s00"], ["sentence", "sentence"], ["faithful", "flipped"])
    assert [checks.shift_reason(s) for s in shift] == [None, "label_flip"]
    assert shift[1] > 0.5 and abs(shift[0]) < 0.1


def test_the_probe_is_fitted_on_the_real_training_rows_only():
    real, vectors = _sentiment_table(np.random.default_rng(1))
    embed = TableEmbed(vectors)
    checks = LabelChecks("sst", real, embed, FILTERS, seed=7)
    assert checks.probe.fitted_ids == frozenset(real["id"])
    assert set(embed.seen) == set(real["sentence"])


def _sts_checks():
    real = pd.DataFrame([("p1", "a guitar player", "a flute player", 2.0)],
                        columns=["id", "sentence1", "sentence2", "label"])
    vectors = {"a guitar player": _unit(1, 0, 0), "a flute player": _unit(0.6, 0.8, 0),
               "a man plays guitar": _unit(0.995, 0, 0.0998),  # cos to s2 still ~0.6
               "a man plays flute": _unit(0.62, 0.78, 0.05)}  # now ~ s2: cos ~1
    return LabelChecks("sts", real, TableEmbed(vectors), FILTERS, seed=7)


def test_an_sts_paraphrase_that_changes_the_score_is_rejected():
    checks = _sts_checks()
    assert checks.probe is None
    shift = checks.label_shift(["p1", "p1"], ["sentence1", "sentence1"],
                               ["a man plays guitar", "a man plays flute"])
    assert shift == pytest.approx([0.003, 0.398], abs=0.01)
    assert [checks.shift_reason(s) for s in shift] == [None, "score_drift"]


def test_the_threshold_decides():
    checks = _sts_checks()
    strict = dataclasses.replace(FILTERS, max_score_drift=0.001)
    checks.params = strict
    assert checks.shift_reason(0.003) == "score_drift"
    assert checks.shift_reason(float("nan")) is None  # not measured: not rejected


def test_a_paraphrase_close_to_an_accepted_sibling_is_a_near_duplicate():
    checks = _sts_checks()
    checks.embed.vectors |= {"first": _unit(1, 0, 0), "almost the same": _unit(0.99, 0.14, 0),
                             "different": _unit(0, 1, 0)}
    assert np.isnan(checks.sibling_similarity("p1", "sentence1", "almost the same"))
    checks.accept("p1", "sentence1", "first")
    near = checks.sibling_similarity("p1", "sentence1", "almost the same")
    assert near == pytest.approx(0.99, abs=0.001)
    assert checks.sibling_reason(near) == "near_duplicate"
    assert checks.sibling_reason(checks.sibling_similarity("p1", "sentence1", "different")) is None
    # another side (or another source row) has no siblings yet
    assert np.isnan(checks.sibling_similarity("p1", "sentence2", "almost the same"))


# --- real embeddings (the embedded MiniLM), hand-written rows --------------------------------

VERY_NEGATIVE = [
    "after that it becomes long and tedious like a classroom play in a college history course .",
    "a dull , lifeless and utterly boring mess .",
    "the worst film of the year , a complete waste of time .",
    "painfully slow , badly acted and insulting to the audience .",
    "an ugly , pointless and tiresome movie that never ends .",
    "the script is awful and the jokes fall flat every single time .",
    "i hated every minute of this dreadful , clumsy picture .",
    "a tedious , joyless slog with nothing to say .",
    "it is a disaster from start to finish .",
    "stupid , shallow and unbearably long .",
]
VERY_POSITIVE = [
    "a gorgeous , witty , seductive movie .",
    "one of the best films of the year , funny and deeply moving .",
    "a brilliant , beautifully acted and thrilling ride .",
    "an absolute delight from start to finish .",
    "the performances are wonderful and the story is charming .",
    "a smart , warm and hugely entertaining film .",
    "i loved every minute of this remarkable picture .",
    "a triumph : exciting , clever and full of heart .",
    "the best comedy in years , simply terrific .",
    "a masterpiece of tension and beauty .",
]


@pytest.fixture(scope="module")
def minilm():
    from augment.params import EncoderParams
    from augment.stage import CachedEncoder

    return CachedEncoder(EncoderParams(backbone="minilm", batch_size=32))


@pytest.mark.slow
def test_real_embeddings_reject_a_sentiment_flip_and_keep_a_faithful_paraphrase(minilm):
    rows = [(f"n{i}", t, 0) for i, t in enumerate(VERY_NEGATIVE)] + \
           [(f"p{i}", t, 4) for i, t in enumerate(VERY_POSITIVE)]
    real = pd.DataFrame(rows, columns=["id", "sentence", "label"])
    checks = LabelChecks("sst", real, minilm.embed, FILTERS, seed=7)
    faithful = ("after that it gets long and boring , like a school play in a college history "
                "class .")
    flipped = "after that , it becomes a classroom drama in a college history course ."
    glowing = "after that it becomes a delightful , charming classroom play ."
    shift = checks.label_shift(["n0"] * 3, ["sentence"] * 3, [faithful, glowing, flipped])
    assert [checks.shift_reason(s) for s in shift[:2]] == [None, "label_flip"], shift
    # the example (the sentiment words dropped, not reversed) moves away from the label
    # too, but less (0.04-0.05 on this table): below max_label_drop, so it passes; the
    # measured recall of the rule is in docs/augmentation.md
    assert shift[0] < 0 < shift[2] < shift[1]


@pytest.mark.slow
def test_real_embeddings_reject_an_sts_pair_whose_score_changed(minilm):
    real = pd.DataFrame([("p1", "A man is playing a guitar.", "A man is playing a flute.", 1.6)],
                        columns=["id", "sentence1", "sentence2", "label"])
    checks = LabelChecks("sts", real, minilm.embed, FILTERS, seed=7)
    shift = checks.label_shift(["p1", "p1"], ["sentence1", "sentence1"],
                               ["A guy is playing the guitar.", "A man plays the flute."])
    assert [checks.shift_reason(s) for s in shift] == [None, "score_drift"], shift
