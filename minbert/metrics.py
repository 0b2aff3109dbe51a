"""Metric formulas shared by training (per-epoch dev evaluation) and the `evaluate` stage.

The CS224N multitask score averages the three task metrics, with the STS Pearson correlation
mapped from [-1, 1] to [0, 1]:

    overall = (sst_accuracy + para_accuracy + (sts_pearson + 1) / 2) / 3
"""

from __future__ import annotations

import numpy as np


def accuracy(preds: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of predictions equal to the label (ints compared exactly)."""
    preds, labels = np.asarray(preds), np.asarray(labels)
    if preds.shape != labels.shape:
        raise ValueError(f"accuracy: {preds.shape[0]} predictions for {labels.shape[0]} labels")
    if preds.size == 0:
        raise ValueError("accuracy: no predictions")
    return float(np.mean(preds.astype(np.int64) == labels.astype(np.int64)))


def pearson(preds: np.ndarray, labels: np.ndarray) -> float:
    """Pearson correlation; 0.0 when either side is constant (the correlation is undefined)."""
    preds = np.asarray(preds, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.float64)
    if preds.shape != labels.shape:
        raise ValueError(f"pearson: {preds.shape[0]} predictions for {labels.shape[0]} labels")
    if preds.size < 2:
        raise ValueError("pearson: needs at least two predictions")
    p, y = preds - preds.mean(), labels - labels.mean()
    denom = np.sqrt((p * p).sum() * (y * y).sum())
    return float((p * y).sum() / denom) if denom > 0 else 0.0


def overall_score(sst_accuracy: float, para_accuracy: float, sts_pearson: float) -> float:
    """(SST accuracy + Quora accuracy + (STS Pearson + 1) / 2) / 3, in [0, 1]."""
    return (sst_accuracy + para_accuracy + (sts_pearson + 1.0) / 2.0) / 3.0


def confusion_matrix(preds: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts C[i, j] of rows with gold class i predicted as class j; shape (K, K)."""
    preds = np.asarray(preds).astype(np.int64)
    labels = np.asarray(labels).astype(np.int64)
    if preds.shape != labels.shape:
        raise ValueError(f"confusion: {preds.shape[0]} predictions for {labels.shape[0]} labels")
    for name, values in (("predictions", preds), ("labels", labels)):
        if values.size and (values.min() < 0 or values.max() >= n_classes):
            raise ValueError(f"confusion: {name} outside 0..{n_classes - 1}")
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(matrix, (labels, preds), 1)
    return matrix


def per_class_scores(matrix: np.ndarray) -> dict[str, dict[str, float]]:
    """Precision, recall, F1 and support of every class from a confusion matrix.

    precision_k = C[k,k] / sum_i C[i,k],  recall_k = C[k,k] / sum_j C[k,j],
    F1_k = 2 P R / (P + R); a ratio with a zero denominator is 0.0 (as scikit-learn's
    `zero_division=0`). Also "macro_f1" over classes.
    """
    tp = np.diag(matrix).astype(np.float64)
    predicted, support = matrix.sum(axis=0), matrix.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    scores = {
        str(k): {
            "precision": float(precision[k]),
            "recall": float(recall[k]),
            "f1": float(f1[k]),
            "support": int(support[k]),
        }
        for k in range(matrix.shape[0])
    }
    scores["macro_f1"] = float(f1.mean())  # type: ignore[assignment]
    return scores


def _ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties given their average rank (as scipy.stats.rankdata)."""
    order = np.argsort(values, kind="mergesort")
    sorted_vals = values[order]
    ranks = np.empty(len(values), dtype=np.float64)
    starts = np.flatnonzero(np.r_[True, sorted_vals[1:] != sorted_vals[:-1]])
    ends = np.r_[starts[1:], len(values)]
    for s, e in zip(starts, ends):
        ranks[order[s:e]] = (s + e + 1) / 2.0  # mean of 1-based ranks s+1 .. e
    return ranks


def spearman(preds: np.ndarray, labels: np.ndarray) -> float:
    """Spearman rank correlation: Pearson of the (tie-averaged) ranks."""
    preds = np.asarray(preds, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.float64)
    if preds.shape != labels.shape:
        raise ValueError(f"spearman: {preds.shape[0]} predictions for {labels.shape[0]} labels")
    return pearson(_ranks(preds), _ranks(labels))


def mse(preds: np.ndarray, labels: np.ndarray) -> float:
    diff = np.asarray(preds, dtype=np.float64) - np.asarray(labels, dtype=np.float64)
    return float(np.mean(diff * diff))


def mae(preds: np.ndarray, labels: np.ndarray) -> float:
    diff = np.asarray(preds, dtype=np.float64) - np.asarray(labels, dtype=np.float64)
    return float(np.mean(np.abs(diff)))
