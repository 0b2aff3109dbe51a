"""Label-consistency checks: does a paraphrased row still carry its source row's label?

Three rejection reasons (thresholds in `augment.filters`; all off, together with the
`not_question` form rule of `augment/filters.py`, with `filters.label_consistency: false`):

    label_flip      SST, Quora: the label probe (`augment.probe`) sees the paraphrased row farther
                    from the gold label y than the source row, by more than `max_label_drop`:
                    d(paraphrased row) - d(source row) > max_label_drop, with
                    d = |E_probe[y | row] - y| / (number of classes - 1); for Quora (two
                    classes) that is p(y | source row) - p(y | paraphrased row). Consistency
                    with the source, not agreement with y: see docs/augmentation.md
    score_drift     STS: the pair's similarity moved:  |cos(s1', s2) - cos(s1, s2)| >
                    `max_score_drift` (s1' the paraphrased side, s2 the other side, unchanged)
    near_duplicate  any task: cosine to a paraphrase already accepted for the same source row
                    and side > `max_sibling_similarity` (adds no variety)

`label_shift` (the probe drop or the score drift) and `sibling_similarity` are kept with every
candidate, so rejected.parquet and examples.json show how far past the threshold a row was.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from augment.params import FilterParams
from augment.probe import LabelProbe, pair_features
from minbert.tasks import TASKS

log = logging.getLogger(__name__)

EmbedFn = Callable[[Sequence[str]], np.ndarray]  # texts -> (N, H) unit vectors


class LabelChecks:
    """The label-consistency state of one task: its fitted probe and the accepted paraphrases
    per (source row, side)."""

    def __init__(self, task: str, real: pd.DataFrame, embed: EmbedFn, params: FilterParams,
                 seed: int):
        self.spec = TASKS[task]
        self.params = params
        self.embed = embed
        self.real = real.assign(id=real["id"].astype(str)).set_index("id")
        self.accepted: dict[tuple[str, str], list[np.ndarray]] = defaultdict(list)
        self.regression = self.spec.label_kind == "float"  # STS: score_drift, no probe
        self.probe = None
        if not self.regression:
            self.probe = LabelProbe.fit(self.features(self.real), self.real["label"],
                                        self.real.index, folds=params.probe_folds,
                                        c=params.probe_c, seed=seed)

    def features(self, rows: pd.DataFrame) -> np.ndarray:
        """Probe features of rows with the task's text columns (module doc of augment.probe)."""
        columns = [self.embed(list(rows[col])) for col in self.spec.text_columns]
        return columns[0] if len(columns) == 1 else pair_features(*columns)

    def _rows(self, source_ids: Sequence[str], sides: Sequence[str],
              paraphrases: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(source rows, the same rows with the paraphrased side replaced)."""
        sources = self.real.loc[[str(s) for s in source_ids]]
        changed = sources.copy()
        for i, (side, text) in enumerate(zip(sides, paraphrases, strict=True)):
            changed.iloc[i, changed.columns.get_loc(side)] = text
        return sources, changed

    def label_shift(self, source_ids: Sequence[str], sides: Sequence[str],
                    paraphrases: Sequence[str]) -> np.ndarray:
        """(N,) SST/Quora: how much farther the out-of-fold probe's expected label of the
        paraphrased row is from the gold label than the source row's (`label_distance`, in
        [-1, 1]; for Quora p(y | source) - p(y | paraphrased row));
        STS: |cos(s1', s2) - cos(s1, s2)|. NaN where it cannot be measured."""
        if not len(source_ids):
            return np.zeros(0)
        sources, changed = self._rows(source_ids, sides, paraphrases)
        if self.regression:
            others = [self.spec.text_columns[1 - self.spec.text_columns.index(s)] for s in sides]
            other = self.embed([sources[o].iat[i] for i, o in enumerate(others)])
            before = self.embed([sources[s].iat[i] for i, s in enumerate(sides)])
            after = self.embed(list(paraphrases))
            return np.abs(_cosine(other, after) - _cosine(other, before))
        labels, ids = sources["label"].astype(int), list(sources.index)
        return (self.probe.label_distance(self.features(changed), ids, labels)
                - self.probe.label_distance(self.features(sources), ids, labels))

    def shift_reason(self, shift: float) -> str | None:
        """label_flip / score_drift when the shift passes its threshold (NaN passes)."""
        if self.regression:
            return "score_drift" if shift > self.params.max_score_drift else None
        return "label_flip" if shift > self.params.max_label_drop else None

    def sibling_similarity(self, source_id: str, side: str, paraphrase: str) -> float:
        """Highest cosine to a paraphrase accepted earlier for this source row and side."""
        siblings = self.accepted.get((str(source_id), side))
        if not siblings:
            return float("nan")
        vector = self.embed([paraphrase])[0]
        return float(np.max(np.stack(siblings) @ vector))

    def sibling_reason(self, similarity: float) -> str | None:
        return "near_duplicate" if similarity > self.params.max_sibling_similarity else None

    def accept(self, source_id: str, side: str, paraphrase: str) -> None:
        self.accepted[(str(source_id), side)].append(self.embed([paraphrase])[0])


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine of unit vectors."""
    return np.sum(np.asarray(a) * np.asarray(b), axis=1)
