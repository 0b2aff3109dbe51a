"""Tables of the balance report, each a pure function of the pipeline's summaries.

Inputs are the parsed JSON summaries and small DataFrames the stages write (see
`pipeline/report.py` for the files); outputs are DataFrames ready to render. A missing input is
the caller's business: these functions are only called with data that exists.
"""

from __future__ import annotations

import pandas as pd

from minbert.tasks import TASKS, class_names, class_of

# Steps of a training set through the pipeline, in order. "synthetic" is the part of the
# augmented set that the LLM wrote (a subset of "augmented", not a further step).
STEPS = ("raw", "clean", "balanced", "augmented", "synthetic")
COUNT_COLUMNS = ["task", "class", "step", "count"]


def train_summaries(clean_summary: dict) -> dict[str, dict]:
    """Task -> the summary entry of its training file (`data/clean/summary.json`)."""
    out = {}
    for name, entry in clean_summary["files"].items():
        if entry.get("split") == "train":
            out[entry["task"]] = {**entry, "file": name}
    return out


def class_count_table(
    clean_summary: dict | None,
    plan: dict | None,
    augmented: dict[str, pd.DataFrame] | None,
) -> pd.DataFrame:
    """Long table (task, class, step, count) of the training set of every task at every step.

    raw/clean come from the prepare summary, balanced from the plan's real counts, augmented
    and synthetic from the augmented tables (columns label and origin). Steps whose input is
    None are left out: the table never shows a number that was not measured.
    """
    rows = []
    if clean_summary is not None:
        for task, entry in train_summaries(clean_summary).items():
            for step in ("raw", "clean"):
                for cls, n in entry[f"class_counts_{step}"].items():
                    rows.append((task, str(cls), step, int(n)))
    if plan is not None:
        for task, task_plan in plan.items():
            for cls, c in task_plan["classes"].items():
                rows.append((task, str(cls), "balanced", int(c["real"])))
    for task, table in (augmented or {}).items():
        classes = class_of(task, table["label"])
        synthetic = table["origin"] == "synthetic"
        for cls in class_names(task):
            in_class = classes == cls
            rows.append((task, cls, "augmented", int(in_class.sum())))
            rows.append((task, cls, "synthetic", int((in_class & synthetic).sum())))
    frame = pd.DataFrame(rows, columns=COUNT_COLUMNS)
    order = {task: i for i, task in enumerate(TASKS)}
    step_order = {s: i for i, s in enumerate(STEPS)}
    return frame.sort_values(
        ["task", "step", "class"],
        key=lambda col: col.map(order) if col.name == "task"
        else col.map(step_order) if col.name == "step" else col,
        kind="stable",
    ).reset_index(drop=True)


def class_count_wide(counts: pd.DataFrame, task: str) -> pd.DataFrame:
    """One row per class of `task`, one column per step present, plus the synthetic share."""
    sub = counts[counts["task"] == task]
    wide = sub.pivot(index="class", columns="step", values="count")
    steps = [s for s in STEPS if s in wide.columns]
    wide = wide.reindex(index=list(class_names(task)), columns=steps).reset_index()
    wide.columns.name = None
    if {"augmented", "synthetic"} <= set(steps):
        share = wide["synthetic"] / wide["augmented"].where(wide["augmented"] > 0)
        wide["synthetic share"] = share.fillna(0.0)
    return wide


def cleaning_table(clean_summary: dict) -> pd.DataFrame:
    """Per course file: rows in, kept, quarantined, deduplicated, leaked."""
    rows = [
        {
            "file": name, "task": e["task"], "split": e["split"], "rows in": e["rows_in"],
            "kept": e["kept"], "quarantined": e["quarantined_total"],
            "deduplicated": e["deduplicated"], "leaked": e["leaked"],
        }
        for name, e in clean_summary["files"].items()
    ]
    return pd.DataFrame(rows)


def quarantine_reason_table(clean_summary: dict) -> pd.DataFrame:
    """(file, reason, rows) for every quarantine reason that occurred."""
    rows = [
        {"file": name, "reason": reason, "rows": int(n)}
        for name, e in clean_summary["files"].items()
        for reason, n in sorted(e["quarantined"].items())
    ]
    return pd.DataFrame(rows, columns=["file", "reason", "rows"])


def removed_table(removed: pd.DataFrame) -> pd.DataFrame:
    """Training rows removed by deduplication and leakage, by file and where they leaked to.

    `removed` is `data/clean/removed.parquet` (columns file, reason, detail ...): a leaked row's
    detail says which split it was also found in ("also in dev").
    """
    if removed.empty:
        return pd.DataFrame(columns=["file", "reason", "where", "rows"])
    where = removed["detail"].where(removed["reason"] == "leakage", "")
    where = where.str.replace("also in ", "", regex=False)
    table = removed.assign(where=where).groupby(["file", "reason", "where"]).size()
    return table.rename("rows").reset_index()


def quarantine_examples(quarantine: pd.DataFrame, per_reason: int, width: int = 110):
    """The first `per_reason` quarantined rows of every (file, reason), raw text shortened."""
    if quarantine.empty:
        return pd.DataFrame(columns=["file", "line", "reason", "detail", "raw row"])
    first = quarantine.sort_values(["file", "line"]).groupby(["file", "reason"]).head(per_reason)
    return pd.DataFrame({
        "file": first["file"], "line": first["line"].astype(str), "reason": first["reason"],
        "detail": first["detail"], "raw row": first["raw"].map(lambda s: shorten(s, width)),
    }).reset_index(drop=True)


def shorten(text: str, width: int) -> str:
    text = str(text).replace("\t", " ⇥ ").replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


def metrics_table(metrics: dict) -> pd.DataFrame:
    """The headline dev metrics of the run, in a fixed order (unknown keys after)."""
    names = {
        "overall": "overall score", "sst_accuracy": "SST accuracy", "sst_macro_f1": "SST macro F1",
        "para_accuracy": "Quora accuracy", "para_f1": "Quora F1 (duplicate class)",
        "sts_pearson": "STS Pearson", "sts_spearman": "STS Spearman", "sts_mse": "STS MSE",
        "sts_mae": "STS MAE",
    }
    keys = [k for k in names if k in metrics] + [k for k in metrics if k not in names]
    return pd.DataFrame({
        "metric": [names.get(k, k) for k in keys],
        "value": [float(metrics[k]) for k in keys],
    })


def per_class_table(per_class: dict) -> pd.DataFrame:
    """(class, precision, recall, F1, support) from `per_class_scores` output."""
    rows = [
        {"class": cls, "precision": s["precision"], "recall": s["recall"], "F1": s["f1"],
         "dev rows": int(s["support"])}
        for cls, s in per_class.items() if isinstance(s, dict)
    ]
    return pd.DataFrame(rows)


def funnel_table(task_summary: dict) -> tuple[pd.DataFrame, list[str]]:
    """Augmentation funnel of one task: per class requested, generated, accepted, rejected.

    `task_summary` is one task's entry of `data/augmented/summary.json` (`tasks.<task>`); its
    `classes` map class -> {requested, generated, cache_hits, accepted, surplus,
    rejected_by_reason: {reason: n}}. Returns the table, with one `rejected: <reason>` column
    per reason that occurred, and those reasons in column order.
    """
    classes = task_summary["classes"]
    reasons = sorted({r for c in classes.values()
                      for r, n in c.get("rejected_by_reason", {}).items() if n})
    rows = []
    for cls, c in classes.items():
        by_reason = c.get("rejected_by_reason", {})
        row = {"class": str(cls), "requested": int(c["requested"]),
               "generated": int(c["generated"]), "from cache": int(c.get("cache_hits", 0)),
               "accepted": int(c["accepted"]), "surplus": int(c.get("surplus", 0)),
               "rejected": int(sum(by_reason.values()))}
        row.update({f"rejected: {r}": int(by_reason.get(r, 0)) for r in reasons})
        rows.append(row)
    frame = pd.DataFrame(rows)
    # accepted + surplus passed the filters; surplus ones were not needed for the target
    passed = frame["accepted"] + frame["surplus"]
    frame["pass rate"] = passed / frame["generated"].where(frame["generated"] > 0)
    return frame, reasons


def example_table(task_examples: dict, per_class: int, width: int = 140) -> pd.DataFrame:
    """A few accepted and rejected paraphrases per class, each next to its source sentence.

    `task_examples` is one task of `data/augmented/examples.json`: class -> {"accepted": [...],
    "rejected": [...]}, items with source, paraphrase (rejected: also completion, the raw LLM
    output, shown when no paraphrase could be parsed from it) and reason.
    """
    rows = []
    for cls, by_status in task_examples.items():
        for status in ("accepted", "rejected"):
            for e in by_status.get(status, [])[:per_class]:
                text = e.get("paraphrase") or e.get("completion") or ""
                similarity = e.get("similarity")
                rows.append({
                    "class": str(cls), "status": status, "reason": e.get("reason") or "",
                    "source": shorten(e["source"], width), "paraphrase": shorten(text, width),
                    "similarity": float("nan") if similarity is None else float(similarity),
                })
    return pd.DataFrame(rows, columns=["class", "status", "reason", "source", "paraphrase",
                                       "similarity"])


def audit_count_table(audit_summary: dict) -> pd.DataFrame:
    """task, class, rows audited, suspect rows (and their share), rows quarantined."""
    rows = []
    for task, entry in audit_summary["tasks"].items():
        for cls, c in entry["classes"].items():
            share = c["suspects"] / c["rows"] if c["rows"] else 0.0
            rows.append((task, cls, c["rows"], c["suspects"], f"{share:.1%}", c["quarantined"]))
    return pd.DataFrame(rows, columns=["task", "class", "rows", "suspects", "share",
                                       "quarantined"])


def audit_examples(issues: pd.DataFrame, task: str, per_class: int,
                   width: int = 120) -> pd.DataFrame:
    """The `per_class` most suspect rows of every class of one task (lowest label quality)."""
    mine = issues[issues["task"] == task].sort_values("label_quality", kind="stable")
    mine = mine.groupby("class", sort=True).head(per_class).sort_values(["class", "label_quality"])
    columns = [c for c in TASKS[task].text_columns]
    text = mine[columns].astype(str).agg(" ⟂ ".join, axis=1).map(lambda t: shorten(t, width))
    return pd.DataFrame({
        "class": mine["class"], "text": text, "given label": mine["given_label"],
        "suggested label": mine["suggested_label"].round(2),
        "confidence": mine["confidence"].round(2), "label quality": mine["label_quality"].round(3),
    }).reset_index(drop=True)
