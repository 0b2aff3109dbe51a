"""Tables and summaries written by the augment stage.

* `training_table`: real rows + accepted synthetic rows, with the provenance columns
  origin, source_id, generator, prompt_hash, seed, similarity on every row.
* `class_summary` / `task_summary`: the acceptance funnel per class (requested, generated,
  accepted, rejected by reason, surplus, shortfall, cache hits) and the speed per task.
* `class_examples`: a few accepted and rejected paraphrases per class, with their source.
"""

from __future__ import annotations

import pandas as pd

from augment.augmenter import HELD_BACK, TaskAugmentation
from augment.filters import REASONS
from augment.generate import GenerationStats
from minbert.tasks import PROVENANCE_COLUMNS, TASKS, class_of

REJECTED_COLUMNS = ["task", "class", "round", "j", "source_id", "side", "sample", "source_text",
                    "raw", "paraphrase", "reason", "similarity", "label_shift",
                    "sibling_similarity", "key"]


def synthetic_rows(task: str, real: pd.DataFrame, accepted: pd.DataFrame,
                   generator: str) -> pd.DataFrame:
    """One training row per accepted paraphrase: the source row with one side replaced."""
    spec = TASKS[task]
    by_id = real.assign(id=real["id"].astype(str)).set_index("id")
    rows = []
    for c in accepted.itertuples(index=False):
        source = by_id.loc[c.source_id]
        texts = {col: (c.paraphrase if col == c.side else source[col])
                 for col in spec.text_columns}
        rows.append({"id": f"syn-{c.key[:12]}", **texts, "label": source["label"],
                     "origin": "synthetic", "source_id": c.source_id, "generator": generator,
                     "prompt_hash": c.prompt_hash, "seed": c.seed,
                     "similarity": float(c.similarity)})
    return pd.DataFrame(rows, columns=[*spec.columns(), *PROVENANCE_COLUMNS])


def training_table(task: str, real: pd.DataFrame, result: TaskAugmentation,
                   generator: str) -> pd.DataFrame:
    """Real rows (their own provenance) followed by the accepted synthetic rows."""
    spec = TASKS[task]
    real_part = real[spec.columns()].assign(
        origin="real", source_id=real["id"].astype(str), generator=None, prompt_hash=None,
        seed=pd.NA, similarity=float("nan"))
    accepted = _with_status(result.candidates, "accepted")
    table = pd.concat([real_part, synthetic_rows(task, real, accepted, generator)],
                      ignore_index=True)
    for col in ["id", *spec.text_columns, "origin", "source_id", "generator", "prompt_hash"]:
        table[col] = table[col].astype("string")
    table["label"] = table["label"].astype(real["label"].dtype)
    table["seed"] = table["seed"].astype("Int64")
    table["similarity"] = table["similarity"].astype("float64")
    return table


def _with_status(candidates: pd.DataFrame, status: str) -> pd.DataFrame:
    if candidates.empty:
        return candidates.assign(prompt_hash=[], paraphrase=[], similarity=[], key=[])
    return candidates[candidates["status"] == status]


def class_summary(cls: str, plan_class: dict, need: int, candidates: pd.DataFrame) -> dict:
    mine = candidates[candidates["cls"] == cls] if not candidates.empty else candidates
    status = mine["status"].value_counts() if not mine.empty else pd.Series(dtype=int)
    reasons = mine["reason"].value_counts() if not mine.empty else pd.Series(dtype=int)
    accepted = int(status.get("accepted", 0))
    return {
        "real": plan_class["real"], "target": plan_class["target"], "requested": need,
        "generated": len(mine), "cache_hits": int(mine["cached"].sum()) if len(mine) else 0,
        "generated_tokens": int(mine["n_tokens"].sum()) if len(mine) else 0,
        "accepted": accepted, "rejected": int(status.get("rejected", 0)),
        "rejected_by_reason": {r: int(reasons.get(r, 0)) for r in REASONS},
        "surplus": int(status.get("surplus", 0)), "shortfall": need - accepted,
        # of the surplus: held back because another class ended short (augmenter.hold_balance)
        "held_back": int(reasons.get(HELD_BACK, 0)),
        # share of generations that passed every filter (accepted + surplus)
        "pass_rate": round(1 - int(status.get("rejected", 0)) / len(mine), 4)
        if len(mine) else None,
    }


def task_summary(task: str, plan_task: dict, result: TaskAugmentation, table: pd.DataFrame) -> dict:
    stats: GenerationStats = result.stats
    classes = {cls: class_summary(cls, plan_task["classes"][cls], need, result.candidates)
               for cls, need in result.needed.items()}
    counts = class_of(task, table["label"]).value_counts()
    for cls, summary in classes.items():
        summary["rows"] = int(counts.get(cls, 0))
    return {
        "requested": sum(c["requested"] for c in classes.values()),
        "generated": sum(c["generated"] for c in classes.values()),
        "accepted": sum(c["accepted"] for c in classes.values()),
        "rejected": sum(c["rejected"] for c in classes.values()),
        "surplus": sum(c["surplus"] for c in classes.values()),
        "cache_hits": stats.cache_hits, "generated_now": stats.generated,
        "generated_tokens_now": stats.tokens, "generation_seconds": round(stats.seconds, 2),
        "tokens_per_s": _round(stats.tokens_per_s), "rows_per_s": _round(stats.rows_per_s),
        "rows": len(table), "classes": classes,
    }


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 2)


def class_examples(candidates: pd.DataFrame, cls: str, n: int) -> dict:
    """Up to n accepted and n rejected paraphrases of the class (rejected: one per reason
    in turn, so that every reason shows up)."""
    if candidates.empty:
        return {"accepted": [], "rejected": []}
    mine = candidates[candidates["cls"] == cls]
    accepted = [
        {"source": r.source_text, "paraphrase": r.paraphrase, "side": r.side,
         "similarity": _rounded(r.similarity), "label_shift": _rounded(r.label_shift)}
        for r in mine[mine["status"] == "accepted"].head(n).itertuples()
    ]
    rejected = mine[mine["status"] == "rejected"]
    by_reason = [g for _, g in rejected.groupby("reason", sort=True)]
    picked = []
    for i in range(n):
        picked += [g.iloc[i] for g in by_reason if i < len(g)]
    return {"accepted": accepted, "rejected": [
        {"source": r["source_text"], "completion": r["raw"][:300], "paraphrase": r["paraphrase"],
         "side": r["side"], "reason": r["reason"], "similarity": _rounded(r["similarity"]),
         "label_shift": _rounded(r["label_shift"]),
         "sibling_similarity": _rounded(r["sibling_similarity"])}
        for r in picked[:n]
    ]}


def _rounded(x) -> float | None:
    """4 decimals; None for a value that was not measured (NaN)."""
    return None if pd.isna(x) else round(float(x), 4)


def rejected_table(task: str, candidates: pd.DataFrame) -> pd.DataFrame:
    """Every rejected paraphrase with its source and reason (never a silent drop)."""
    if candidates.empty:
        return pd.DataFrame(columns=REJECTED_COLUMNS)
    rejected = candidates[candidates["status"] == "rejected"]
    return rejected.assign(task=task).rename(columns={"cls": "class"})[REJECTED_COLUMNS]
