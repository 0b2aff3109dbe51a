"""Statistics of a sweep: intervals over training seeds, a paired bootstrap over dev examples,
and the verdict of a group against the baseline group.

Over seeds (runs of one group differ only in `train.seed`), for a metric with values x_1..x_n:

    mean ± t_{0.975, n-1} · sd / sqrt(n)                        (Student t-interval, n >= 2)
    Δ = mean_g - mean_b ± t_{0.975, ν} · sqrt(s_g²/n_g + s_b²/n_b)   (Welch; ν Welch-Satterthwaite)

Over dev examples (Efron & Tibshirani 1993, ch. 13; paired as in Koehn 2004): each replicate
draws the dev examples of every task with replacement, the same draw for every run, scores every
run on it and takes Δ between the group means; the 2.5th and 97.5th percentiles of Δ are the
interval (SST macro F1 and Quora's duplicate-class F1 from the counts of the same draw as the
task's accuracy). Seeds answer "would another training run reproduce it?", examples "would another
dev sample of this size reproduce it?". A verdict needs both: "helps" when every available
interval of Δ lies above 0, "hurts" when every one lies below, else "no evidence" (one seed
per group gives no seed interval, hence no evidence).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from minbert import metrics as formulas
from minbert.tasks import class_names

LEVEL = 0.95
HELPS, HURTS, NO_EVIDENCE = "helps", "hurts", "no evidence"
LOWER_IS_BETTER = frozenset({"sts_mse", "sts_mae"})
METRIC_TASK = {"sst_accuracy": "sst", "para_accuracy": "para", "sts_pearson": "sts"}
F1_METRIC_TASK = {"sst_macro_f1": "sst", "para_f1": "para"}  # macro F1 / duplicate-class F1


@dataclass(frozen=True)
class Interval:
    low: float
    high: float


@dataclass(frozen=True)
class DevTask:
    """One run's dev predictions of one task, aligned with the gold labels by id."""

    ids: np.ndarray
    gold: np.ndarray
    preds: np.ndarray


def t_interval(values: Sequence[float], level: float = LEVEL) -> Interval | None:
    """Student t-interval of the mean; None for fewer than two values."""
    x = np.asarray(values, dtype=np.float64)
    if x.size < 2:
        return None
    half = stats.t.ppf(0.5 + level / 2, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size)
    return Interval(float(x.mean() - half), float(x.mean() + half))


def welch_interval(group: Sequence[float], baseline: Sequence[float],
                   level: float = LEVEL) -> Interval | None:
    """Interval of mean(group) - mean(baseline), unequal variances; None below 2 runs each."""
    a, b = np.asarray(group, dtype=np.float64), np.asarray(baseline, dtype=np.float64)
    if a.size < 2 or b.size < 2:
        return None
    diff = a.mean() - b.mean()
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    if va + vb == 0:  # every run of both groups scored the same: the difference is exact
        return Interval(float(diff), float(diff))
    dof = (va + vb) ** 2 / (va ** 2 / (a.size - 1) + vb ** 2 / (b.size - 1))
    half = stats.t.ppf(0.5 + level / 2, dof) * np.sqrt(va + vb)
    return Interval(float(diff - half), float(diff + half))


def verdict(metric: str, intervals: Sequence[Interval | None]) -> str:
    """helps / hurts when every interval of Δ excludes 0 on the same side; needs the seed one."""
    if not intervals or intervals[0] is None:
        return NO_EVIDENCE
    given = [i for i in intervals if i is not None]
    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
    if all(min(sign * i.low, sign * i.high) > 0 for i in given):
        return HELPS
    if all(max(sign * i.low, sign * i.high) < 0 for i in given):
        return HURTS
    return NO_EVIDENCE


def align_dev(runs: Sequence[dict[str, DevTask]]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per task: (gold (N,), predictions (runs, N)) on the dev ids every run has."""
    aligned = {}
    for task in runs[0]:
        common = set(runs[0][task].ids)
        for run in runs[1:]:
            common &= set(run[task].ids)
        ids = np.array(sorted(common))
        if ids.size < 2:
            raise ValueError(f"{task}: fewer than 2 dev examples shared by every run")
        golds, preds = [], []
        for run in runs:
            pos = {i: k for k, i in enumerate(run[task].ids)}
            take = np.array([pos[i] for i in ids])
            golds.append(np.asarray(run[task].gold, dtype=np.float64)[take])
            preds.append(np.asarray(run[task].preds, dtype=np.float64)[take])
        if any(not np.array_equal(golds[0], g) for g in golds[1:]):
            raise ValueError(f"{task}: the runs disagree on dev labels (different dev sets)")
        aligned[task] = (golds[0], np.stack(preds))  # (N,), (runs, N)
    return aligned


def _weighted_pearson(w: np.ndarray, preds: np.ndarray, gold: np.ndarray) -> np.ndarray:
    """Pearson r of every run on every replicate; w (B, N) counts, preds (runs, N) -> (B, runs).

    Equal to `minbert.metrics.pearson` on the resampled rows (0 where a side is constant)."""
    n = w.sum(axis=1, keepdims=True)  # (B, 1)
    mx, my = w @ preds.T / n, w @ gold[:, None] / n  # (B, runs), (B, 1)
    cov = w @ (preds * gold).T / n - mx * my
    var_x, var_y = w @ (preds ** 2).T / n - mx ** 2, w @ (gold ** 2)[:, None] / n - my ** 2
    denom = np.sqrt(np.clip(var_x, 0, None) * np.clip(var_y, 0, None))
    return np.divide(cov, denom, out=np.zeros_like(cov), where=denom > 1e-12)


def _weighted_f1(w: np.ndarray, preds: np.ndarray, gold: np.ndarray, n_classes: int
                 ) -> np.ndarray:
    """Per-class F1 of every run on every replicate: (B, runs, K).

    F1_k = 2 TP_k / (predicted_k + support_k) with counts weighted by w (B, N), equal to
    `minbert.metrics.per_class_scores` on the resampled rows (0 where the denominator is 0)."""
    f1 = np.zeros((w.shape[0], preds.shape[0], n_classes))
    for k in range(n_classes):
        pred_k, gold_k = (preds == k).astype(np.float64), (gold == k).astype(np.float64)
        tp = w @ (pred_k * gold_k[None, :]).T  # (B, runs)
        denom = w @ pred_k.T + (w @ gold_k)[:, None]
        f1[:, :, k] = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    return f1


def _f1_metric(metric: str, f1: np.ndarray) -> np.ndarray:
    """sst_macro_f1: mean over the classes; para_f1: F1 of the duplicate class (1)."""
    return f1.mean(axis=-1) if metric == "sst_macro_f1" else f1[..., 1]


def bootstrap_scores(aligned: dict[str, tuple[np.ndarray, np.ndarray]], n_boot: int, seed: int,
                     chunk: int = 100) -> dict[str, np.ndarray]:
    """Every run's metric on every replicate, the same dev draw for every run: (B, runs)."""
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {}
    for metric, task in METRIC_TASK.items():
        if task not in aligned:
            continue
        gold, preds = aligned[task]
        n = gold.size
        f1_metrics = [m for m, t in F1_METRIC_TASK.items() if t == task]
        for start in range(0, n_boot, chunk):
            w = rng.multinomial(n, np.full(n, 1.0 / n), size=min(chunk, n_boot - start))
            w = w.astype(np.float64)  # (b, N): how often each example is drawn
            if task == "sts":
                parts.setdefault(metric, []).append(_weighted_pearson(w, preds, gold))
            else:
                parts.setdefault(metric, []).append(
                    w @ (preds == gold[None, :]).T.astype(np.float64) / n)
            if f1_metrics:  # the same draw as the task's accuracy
                f1 = _weighted_f1(w, preds, gold, len(class_names(task)))
                for f1_metric in f1_metrics:
                    parts.setdefault(f1_metric, []).append(_f1_metric(f1_metric, f1))
    scores = {metric: np.concatenate(chunks) for metric, chunks in parts.items()}
    if {"sst_accuracy", "para_accuracy", "sts_pearson"} <= scores.keys():
        scores["overall"] = formulas.overall_score(scores["sst_accuracy"],
                                                   scores["para_accuracy"], scores["sts_pearson"])
    return scores


def point_scores(aligned: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, np.ndarray]:
    """Every run's metric on the full dev sets (runs,), from its predictions."""
    scores = {}
    for metric, task in METRIC_TASK.items():
        if task in aligned:
            gold, preds = aligned[task]
            score = formulas.pearson if task == "sts" else formulas.accuracy
            scores[metric] = np.array([score(p, gold) for p in preds])
    for metric, task in F1_METRIC_TASK.items():
        if task in aligned:
            gold, preds = aligned[task]
            n_classes = len(class_names(task))
            per_class = [formulas.per_class_scores(formulas.confusion_matrix(p, gold, n_classes))
                         for p in preds]
            f1 = np.array([[c[str(k)]["f1"] for k in range(n_classes)] for c in per_class])
            scores[metric] = _f1_metric(metric, f1)  # (runs, K) -> (runs,)
    if {"sst_accuracy", "para_accuracy", "sts_pearson"} <= scores.keys():
        scores["overall"] = formulas.overall_score(scores["sst_accuracy"],
                                                   scores["para_accuracy"], scores["sts_pearson"])
    return scores


def bootstrap_interval(replicates: np.ndarray, group: Sequence[int], baseline: Sequence[int],
                       level: float = LEVEL) -> Interval:
    """Percentile interval of mean over `group` runs - mean over `baseline` runs."""
    diff = replicates[:, list(group)].mean(axis=1) - replicates[:, list(baseline)].mean(axis=1)
    low, high = np.quantile(diff, [0.5 - level / 2, 0.5 + level / 2])
    return Interval(float(low), float(high))
