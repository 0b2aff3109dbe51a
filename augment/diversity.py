"""Diversity of a set of texts: are the paraphrases varied, or the same sentence many times?

    distinct-2             distinct word bigrams / all word bigrams over the texts (Li et al.
                           2016, "A Diversity-Promoting Objective Function for Neural
                           Conversation Models"); 1 = no bigram repeats
    mean pairwise cosine   mean cosine of the sentence embeddings over all pairs of different
                           texts; lower = more varied

The augment stage reports both for the synthetic texts of each task (the paraphrased side of
every accepted row) and, for reference, for the task's real texts.

    distinct_n(["the film is good", "the film is bad"], 2)   # 4 distinct of 6 bigrams -> 0.6667
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from minbert.text import match_key


def distinct_n(texts: Sequence[str], n: int = 2) -> float | None:
    """Distinct word n-grams / all word n-grams (case-insensitive); None without any n-gram."""
    grams = [tuple(words[i:i + n]) for text in texts
             for words in [match_key(text).split()] for i in range(len(words) - n + 1)]
    return len(set(grams)) / len(grams) if grams else None


def mean_pairwise_cosine(vectors: np.ndarray) -> float | None:
    """(N, H) unit vectors -> mean cosine over the N(N-1)/2 pairs; None when N < 2."""
    vectors = np.asarray(vectors, dtype=np.float64)
    n = len(vectors)
    if n < 2:
        return None
    total = vectors.sum(0)
    # sum over i != j of v_i . v_j = |sum v|^2 - sum |v_i|^2, without the (N, N) matrix
    off_diagonal = total @ total - np.einsum("ij,ij->", vectors, vectors)
    return float(off_diagonal / (n * (n - 1)))


def diversity(texts: Sequence[str], embed) -> dict:
    """{"rows", "distinct_2", "mean_pairwise_cosine"} of the texts (`embed`: texts -> (N, H)
    unit vectors), rounded to 4 decimals."""
    texts = list(texts)
    cosine = mean_pairwise_cosine(embed(texts)) if len(texts) >= 2 else None
    d2 = distinct_n(texts, 2)
    return {"rows": len(texts), "distinct_2": None if d2 is None else round(d2, 4),
            "mean_pairwise_cosine": None if cosine is None else round(cosine, 4)}
