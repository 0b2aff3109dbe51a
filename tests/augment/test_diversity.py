"""Diversity figures of the synthetic rows (augment.diversity)."""

import itertools

import numpy as np
import pytest

from augment.diversity import distinct_n, diversity, mean_pairwise_cosine


def test_distinct_2_counts_repeated_bigrams():
    assert distinct_n(["the film is good", "the film is bad"], 2) == pytest.approx(4 / 6)
    assert distinct_n(["The Film", "the film"], 2) == 0.5  # case-insensitive
    assert distinct_n(["a b c", "d e f"], 2) == 1.0
    assert distinct_n(["one", "word"], 2) is None


def test_mean_pairwise_cosine_equals_the_mean_over_all_pairs():
    rng = np.random.default_rng(0)
    v = rng.normal(size=(7, 5))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    brute = np.mean([a @ b for a, b in itertools.combinations(v, 2)])
    assert mean_pairwise_cosine(v) == pytest.approx(brute)
    assert mean_pairwise_cosine(np.repeat(v[:1], 4, axis=0)) == pytest.approx(1.0)
    assert mean_pairwise_cosine(v[:1]) is None


def test_diversity_of_a_set_of_texts():
    vectors = {"a b": [1.0, 0.0], "a c": [0.0, 1.0], "a b c": [0.6, 0.8]}
    out = diversity(list(vectors), lambda texts: np.array([vectors[t] for t in texts]))
    assert out == {"rows": 3, "distinct_2": pytest.approx(3 / 4),
                   "mean_pairwise_cosine": pytest.approx((0 + 0.6 + 0.8) / 3, abs=1e-4)}
