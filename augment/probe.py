"""Label probe: how strongly a row carries its label, seen by a cheap classifier.

A multinomial logistic regression (scikit-learn) on frozen sentence embeddings of the backbone
encoder (`minbert.encoder`), fitted on the task's REAL balanced training rows only
(`data/balanced/<task>/train.parquet`: never a dev or test row):

    SST   x = e(sentence)                                  (H,)   5 classes
    Quora x = [u, v, |u - v|, u * v],  u = e(q1), v = e(q2)  (4H,)  2 classes
              (the pair features of Conneau et al. 2017, InferSent)

The probe is cross-fitted. The rows are split into `folds` stratified folds and fold model k is
fitted on the other folds; a source row and every paraphrase of it are scored by the model of
the source's fold, a model that saw neither. In-sample, a probe with 4H features and a few dozen
rows per class gives its own training rows a probability near 1, so every paraphrase would look
like a step away from the label; out of fold, source and paraphrase are judged alike.

    probe = LabelProbe.fit(x, labels, ids, folds=5, c=3.0, seed=7)
    probe.gold_probability(x_new, source_ids, labels)   # (N,) p(label | row) out of fold
    probe.label_distance(x_new, source_ids, labels)     # (N,) |E[y | row] - label| / span
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)


def pair_features(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(N, H) and (N, H) unit embeddings -> (N, 4H) features [u, v, |u - v|, u * v]."""
    return np.hstack([u, v, np.abs(u - v), u * v])


@dataclass(frozen=True)
class LabelProbe:
    models: tuple  # one fitted LogisticRegression per fold (None: the fold had a single class)
    classes: np.ndarray  # (K,) sorted labels of the fitted rows
    fold_of: dict[str, int]  # real row id -> its fold (the model that never saw it)
    fitted_ids: frozenset[str]  # every row the probe was fitted on

    @classmethod
    def fit(cls, features: np.ndarray, labels: Sequence[int], ids: Sequence[str], *,
            folds: int, c: float, seed: int) -> LabelProbe:
        """Cross-fit `folds` models on the rows (features, labels, ids); see the module doc."""
        from sklearn.model_selection import StratifiedKFold

        labels = np.asarray(labels, dtype=int)
        ids = [str(i) for i in ids]
        counts = np.unique(labels, return_counts=True)[1] if len(labels) else np.array([0])
        n_splits = min(folds, int(counts.max()))  # StratifiedKFold: some class must fill each
        if n_splits < 2 or len(counts) < 2:
            log.warning("label probe: %d rows in %d classes: too few to fit; nothing is "
                        "rejected as label_flip", len(labels), len(counts))
            return cls((), np.unique(labels), {}, frozenset(ids))
        splitter = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        models, fold_of = [], {}
        with warnings.catch_warnings():  # a class smaller than n_splits: that fold lacks it
            warnings.simplefilter("ignore", UserWarning)
            splits = list(splitter.split(features, labels))
        for k, (train, held_out) in enumerate(splits):
            models.append(_fit_one(features[train], labels[train], c))
            fold_of.update({ids[i]: k for i in held_out})
        return cls(tuple(models), np.unique(labels), fold_of, frozenset(ids))

    def probabilities(self, features: np.ndarray, source_ids: Sequence[str]) -> np.ndarray:
        """(N, K) class probabilities (columns: `classes`) of row i under the model of
        source_ids[i]'s fold; a row of NaN where no model can score it (source not fitted, or a
        single-class fold). A class missing from a fold's rows gets probability 0."""
        out = np.full((len(source_ids), len(self.classes)), np.nan)
        folds = np.array([self.fold_of.get(str(s), -1) for s in source_ids])
        for k, model in enumerate(self.models):
            rows = np.flatnonzero(folds == k)
            if model is None or not len(rows):
                continue
            proba = model.predict_proba(features[rows])  # (n, classes seen by fold k)
            out[rows] = 0.0
            out[np.ix_(rows, np.searchsorted(self.classes, model.classes_))] = proba
        return out

    def gold_probability(self, features: np.ndarray, source_ids: Sequence[str],
                         labels: Sequence[int]) -> np.ndarray:
        """(N,) out-of-fold probability of labels[i] for row i (NaN: not scored)."""
        proba = self.probabilities(features, source_ids)
        column = np.searchsorted(self.classes, np.asarray(labels, dtype=int))
        return proba[np.arange(len(proba)), np.clip(column, 0, len(self.classes) - 1)]

    def label_distance(self, features: np.ndarray, source_ids: Sequence[str],
                       labels: Sequence[int]) -> np.ndarray:
        """(N,) |E[y | row] - labels[i]| / (largest class - smallest class), out of fold: how far
        the probe's expected label is from the gold label, in [0, 1]. Ordinal classes (SST)
        count how far the view moved; for two classes it is 1 - p(label)."""
        proba = self.probabilities(features, source_ids)
        span = max(float(self.classes[-1] - self.classes[0]), 1.0)
        return np.abs(proba @ self.classes - np.asarray(labels, dtype=float)) / span


def _fit_one(x: np.ndarray, y: np.ndarray, c: float):
    from sklearn.linear_model import LogisticRegression

    if len(np.unique(y)) < 2:
        return None
    return LogisticRegression(C=c, max_iter=2000).fit(x, y)
