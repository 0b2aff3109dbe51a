"""Stage `audit`: confident-learning audit of the real training labels (cleanlab).

    python -m pipeline.audit

A probe on frozen sentence embeddings of the embedded encoder (minbert/encoder.py) gives every
training row an out-of-sample prediction: k-fold cross-validation, so no row is scored by a
probe that saw it. cleanlab then flags the rows whose given label the probe contradicts:

- SST, Quora (classes): scikit-learn logistic regression -> cross-validated class
  probabilities -> `cleanlab.filter.find_label_issues` (confident learning, Northcutt, Jiang &
  Chuang 2021). Features: SST the sentence embedding u; Quora (u, v, |u-v|, u*v).
- STS (a 0-5 score): ridge regression on (u, v, |u-v|, u*v) inside cleanlab's
  `regression.learn.CleanLearning`, which cross-validates the residuals and flags the rows
  whose label quality is lowest.

A probe on frozen embeddings is weak (SST-5: about 0.4 accuracy), so cleanlab alone flags a
large share of rows, mostly neighbouring sentiment classes. A suspect must therefore also be
far from its label: the probe's label at least `min_distance[task]` away from the given one
(SST: 2 classes, e.g. "very negative" given, "neutral" or better suggested) and, for SST and
Quora, the probe's probability of the given label below `max_label_quality`.

Inputs:  data/clean/<task>/train.parquet (the training split only: dev and test are never read)
Outputs: data/audit/issues.parquet      every suspect row: task, id, text, class, given and
                                        suggested label, confidence, label quality
         data/audit/summary.json        per task: rows audited, suspects and quarantined rows
                                        per class, the probe's cross-validated score
         data/audit/quarantine.parquet  mode `quarantine`: the suspect rows in the quarantine
                                        schema (reason label_issue); mode `report`: no rows.
`balance` drops the rows of quarantine.parquet from training. The file has no rows in report
mode, so changing the audit's params there reruns only the audit and the report.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from minbert.course_io import QUARANTINE_COLUMNS
from minbert.outputs import OutputError, StageOutputs
from minbert.params import load_section
from minbert.paths import AUDIT_DIR, CLEAN_DIR
from minbert.tasks import TASKS, class_names, class_of

log = logging.getLogger(__name__)
REASON = "label_issue"
ISSUE_COLUMNS = ["task", "id", "sentence", "sentence1", "sentence2", "class", "given_label",
                 "suggested_label", "confidence", "label_quality"]
Embed = Callable[[list[str]], np.ndarray]  # (N,) texts -> (N, H) sentence embeddings


@dataclass(frozen=True)
class AuditEncoderParams:
    backbone: str
    max_length: int
    batch_size: int


@dataclass(frozen=True)
class AuditParams:
    mode: Literal["report", "quarantine"]
    tasks: tuple[str, ...]
    folds: int
    probe_c: float
    ridge_alpha: float
    filter_by: Literal["prune_by_noise_rate", "prune_by_class", "both", "confident_learning",
                       "predicted_neq_given", "low_self_confidence", "low_normalized_margin"]
    max_label_quality: float  # SST, Quora: a suspect's P(given label) is also below this
    min_distance: dict[str, float]  # per task: |suggested - given label| of a suspect, at least
    seed: int
    encoder: AuditEncoderParams


def probe_features(task: str, df: pd.DataFrame, embed: Embed) -> np.ndarray:
    """SST: the sentence embedding u (N, H); pairs: (u, v, |u-v|, u*v) (N, 4H)."""
    if not TASKS[task].is_pair:
        return embed(df["sentence"].astype(str).tolist())
    u = embed(df["sentence1"].astype(str).tolist())
    v = embed(df["sentence2"].astype(str).tolist())
    return np.concatenate([u, v, np.abs(u - v), u * v], axis=1)


def classification_issues(features: np.ndarray, labels: np.ndarray, n_classes: int,
                          params: AuditParams, folds: int) -> tuple[pd.DataFrame, float]:
    """Cross-validated logistic-regression probabilities -> cleanlab's label issues.

    Returns (per row: is_issue, suggested_label, confidence = P(suggested), label_quality =
    P(given)) and the probe's cross-validated accuracy.
    """
    from cleanlab.filter import find_label_issues
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    probe = LogisticRegression(C=params.probe_c, max_iter=2000)
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=params.seed)
    probs = cross_val_predict(probe, features, labels, cv=cv, method="predict_proba")
    probs = probs[:, :n_classes]  # (N, K): every class is present (checked by the caller)
    issues = find_label_issues(labels, probs, filter_by=params.filter_by, n_jobs=1)
    issues &= probs[np.arange(len(labels)), labels] < params.max_label_quality
    suggested = probs.argmax(1)
    rows = pd.DataFrame({
        "is_issue": issues, "suggested_label": suggested.astype(float),
        "confidence": probs[np.arange(len(labels)), suggested],
        "label_quality": probs[np.arange(len(labels)), labels],
    })
    return rows, float((suggested == labels).mean())


def regression_issues(features: np.ndarray, scores: np.ndarray, params: AuditParams,
                      folds: int) -> tuple[pd.DataFrame, float]:
    """cleanlab's CleanLearning around a ridge regression -> label issues of a 0-5 score.

    Returns (per row: is_issue, suggested_label = the cross-validated prediction, confidence
    NaN, label_quality) and the Pearson correlation of the predictions with the labels.
    """
    from cleanlab.regression.learn import CleanLearning
    from sklearn.linear_model import Ridge

    learner = CleanLearning(Ridge(alpha=params.ridge_alpha), cv_n_folds=folds,
                            seed=params.seed)
    found = learner.find_label_issues(features, scores)
    predicted = found["predicted_label"].to_numpy(dtype=float)
    rows = pd.DataFrame({
        "is_issue": found["is_label_issue"].to_numpy(dtype=bool),
        "suggested_label": predicted, "confidence": np.nan,
        "label_quality": found["label_quality"].to_numpy(dtype=float),
    })
    return rows, float(np.corrcoef(predicted, scores)[0, 1])


def usable_folds(task: str, labels: pd.Series, folds: int) -> int:
    """k for k-fold: at most the smallest class (SST/Quora need every class in every fold);
    0 when a class has fewer than 2 rows (the task cannot be audited)."""
    if TASKS[task].label_kind == "float":
        return min(folds, len(labels) // 2) if len(labels) >= 4 else 0
    counts = labels.astype(int).value_counts().reindex(range(len(class_names(task))), fill_value=0)
    return min(folds, int(counts.min())) if counts.min() >= 2 else 0


def audit_task(task: str, train: pd.DataFrame, embed: Embed,
               params: AuditParams) -> tuple[pd.DataFrame, dict]:
    """The suspect rows of one training table (ISSUE_COLUMNS, worst first) and its summary."""
    classes = class_of(task, train["label"]).reset_index(drop=True)
    folds = usable_folds(task, train["label"], params.folds)
    summary = {"rows": len(train), "folds": folds, "skipped": None}
    if folds < 2:
        summary["skipped"] = "a class has fewer than 2 rows (too few to cross-validate)"
        return pd.DataFrame(columns=ISSUE_COLUMNS), _counts(summary, classes, classes.iloc[:0])
    features = probe_features(task, train, embed)
    if TASKS[task].label_kind == "float":
        rows, score = regression_issues(features, train["label"].to_numpy(float), params, folds)
        summary["probe_pearson"] = round(score, 4)
    else:
        labels = train["label"].to_numpy(dtype=int)
        rows, score = classification_issues(features, labels, len(class_names(task)), params,
                                            folds)
        summary["probe_accuracy"] = round(score, 4)
    table = train.reset_index(drop=True)
    distance = (rows["suggested_label"] - table["label"].astype(float)).abs()
    rows["is_issue"] &= distance >= params.min_distance.get(task, 0.0)
    suspects = pd.DataFrame({"task": task, "id": table["id"].astype(str), "class": classes,
                             "given_label": table["label"].astype(float)})
    for column in TASKS[task].text_columns:
        suspects[column] = table[column].astype(str)
    suspects = pd.concat([suspects, rows.drop(columns="is_issue")], axis=1)[rows["is_issue"]]
    suspects = suspects.reindex(columns=ISSUE_COLUMNS).sort_values("label_quality", kind="stable")
    return suspects.reset_index(drop=True), _counts(summary, classes, suspects["class"])


def _counts(summary: dict, classes: pd.Series, suspect_classes: pd.Series) -> dict:
    per_class = suspect_classes.value_counts()
    rows = classes.value_counts()
    summary["suspects"] = len(suspect_classes)
    summary["classes"] = {c: {"rows": int(rows.get(c, 0)), "suspects": int(per_class.get(c, 0))}
                          for c in sorted(rows.index)}
    return summary


def quarantine_rows(suspects: pd.DataFrame) -> pd.DataFrame:
    """Suspect rows in the quarantine schema (reason label_issue, training split only)."""
    if suspects.empty:
        return pd.DataFrame(columns=QUARANTINE_COLUMNS).astype({"label": float})
    text = suspects[["sentence", "sentence1", "sentence2"]].apply(
        lambda r: "\t".join(v for v in r if isinstance(v, str)), axis=1)
    detail = [f"probe suggests {s:g} (confidence {c:.2f}, label quality {q:.2f})"
              if pd.notna(c) else f"probe predicts {s:.2f} (label quality {q:.2f})"
              for s, c, q in zip(suspects["suggested_label"], suspects["confidence"],
                                 suspects["label_quality"], strict=True)]
    return pd.DataFrame({
        "task": suspects["task"], "split": "train",
        "file": [TASKS[t].files["train"] for t in suspects["task"]], "line": pd.NA,
        "id": suspects["id"], "label": suspects["given_label"].astype(float),
        "reason": REASON, "detail": detail,
        "raw": suspects["id"] + "\t" + text + "\t" + suspects["given_label"].map("{:g}".format),
    }, columns=QUARANTINE_COLUMNS)


def sentence_embedder(encoder: AuditEncoderParams) -> Embed:
    """Frozen, mean-pooled, normalised embeddings; every distinct text is embedded once."""
    from minbert.encoder import SentenceEncoder

    model = SentenceEncoder(encoder.backbone, encoder.max_length, encoder.batch_size)
    cache: dict[str, np.ndarray] = {}

    def embed(texts: list[str]) -> np.ndarray:
        new = list(dict.fromkeys(t for t in texts if t not in cache))
        if new:
            cache.update(zip(new, model.encode(new).numpy(), strict=True))
        return np.stack([cache[t] for t in texts])

    return embed


def run(params: AuditParams, embed: Embed, clean_dir: Path = CLEAN_DIR,
        out_dir: Path = AUDIT_DIR) -> dict:
    """Audit every task in `params.tasks`; write the three outputs as one transaction."""
    unknown = sorted((set(params.tasks) | set(params.min_distance)) - set(TASKS))
    if unknown:
        raise ValueError(f"audit.tasks / audit.min_distance: unknown task(s) {unknown} "
                         f"(known: {sorted(TASKS)})")
    summary, issues = {"mode": params.mode, "tasks": {}}, []
    for task in params.tasks:
        train = pd.read_parquet(clean_dir / task / "train.parquet")
        suspects, summary["tasks"][task] = audit_task(task, train, embed, params)
        quarantined = suspects["class"] if params.mode == "quarantine" else suspects["class"][:0]
        entry = summary["tasks"][task]
        entry["quarantined"] = len(quarantined)
        for cls, counts in entry["classes"].items():
            counts["quarantined"] = int((quarantined == cls).sum())
        issues.append(suspects)
        log.info("%s: %d of %d rows suspect (%s), %d quarantined", task, len(suspects),
                 len(train), {c: v["suspects"] for c, v in entry["classes"].items()},
                 len(quarantined))
    issues = pd.concat(issues, ignore_index=True) if issues else pd.DataFrame(
        columns=ISSUE_COLUMNS)
    quarantine = quarantine_rows(issues if params.mode == "quarantine" else issues.iloc[:0])
    with StageOutputs() as outputs:
        staging = outputs.stage(out_dir)
        issues.astype({c: "string" for c in ISSUE_COLUMNS[:6]}).to_parquet(
            staging / "issues.parquet", index=False)
        quarantine.to_parquet(staging / "quarantine.parquet", index=False)
        (staging / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    params = load_section("audit", AuditParams)
    log.info("params: %s", params)
    try:
        run(params, sentence_embedder(params.encoder))
    except (OutputError, ValueError) as error:
        log.error("%s", error)
        sys.exit(1)


if __name__ == "__main__":
    main()
