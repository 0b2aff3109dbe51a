"""Stage `balance`: cap every class of the clean training sets and plan the augmentation.

    python -m pipeline.balance

Inputs:  data/clean/<task>/train.parquet, data/audit/quarantine.parquet (training rows the
         label audit quarantined: dropped here; no rows unless audit.mode is quarantine)
Outputs: data/balanced/<task>/train.parquet   real rows, every class down-sampled to at most T
         data/balanced/plan.json              per task and class: clean count, rows the audit
                                              quarantined (label_issue), real rows kept and
                                              the target T

T, the per-class target of a task, is min(largest class, balance.max_per_class). Classes larger
than T are down-sampled (seeded); smaller classes keep all their rows and are topped up later by
the augment stage to round(augment.ratio * T). The cap is one number for every task, or one per
task (`{sst: 100000, para: 32, sts: 32}`: all of SST, whose minority classes augment tops up to
the largest, and 32 rows per class of the others).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from minbert.outputs import OutputError, StageOutputs
from minbert.params import load_section
from minbert.paths import AUDIT_DIR, BALANCED_DIR, CLEAN_DIR
from minbert.tasks import TASKS, class_counts, class_names, class_of

log = logging.getLogger(__name__)
OUT_DIR = BALANCED_DIR


@dataclass(frozen=True)
class BalanceParams:
    max_per_class: int | dict[str, int]  # one cap for every task, or {sst: .., para: .., sts: ..}
    seed: int

    def __post_init__(self) -> None:
        if isinstance(self.max_per_class, Mapping) and set(self.max_per_class) != set(TASKS):
            raise ValueError(f"balance.max_per_class: a per-task cap names every task "
                             f"({', '.join(TASKS)}), got {', '.join(self.max_per_class) or 'none'}")

    def cap(self, task: str) -> int:
        """The cap of one task's classes."""
        if isinstance(self.max_per_class, Mapping):
            return self.max_per_class[task]
        return self.max_per_class


def class_target(counts: dict[str, int], max_per_class: int, task: str = "") -> int:
    """T = min(largest class, cap)."""
    if max_per_class < 1:
        key = f"balance.max_per_class{'.' + task if task else ''}"
        raise ValueError(f"{key} must be at least 1, got {max_per_class}")
    return min(max(counts.values(), default=0), max_per_class)


def balance_task(train: pd.DataFrame, task: str, max_per_class: int,
                 seed: int) -> tuple[pd.DataFrame, dict]:
    """Down-sample every class of one task to at most T rows; return (table, plan entry).

    Rows keep their original order, so the result does not depend on how pandas samples.
    """
    counts = class_counts(task, train["label"])
    target = class_target(counts, max_per_class, task)
    classes = class_of(task, train["label"])
    keep = []
    for i, name in enumerate(class_names(task)):
        members = train.index[classes == name]
        if len(members) > target:
            members = pd.Series(members).sample(n=target, random_state=seed + i).to_numpy()
        keep.extend(members)
    balanced = train.loc[sorted(keep)].reset_index(drop=True)
    kept = class_counts(task, balanced["label"])
    plan = {
        "target": target,
        "classes": {
            name: {"clean": counts[name], "real": kept[name], "target": target}
            for name in class_names(task)
        },
    }
    return balanced, plan


def drop_quarantined(train: pd.DataFrame, quarantine: pd.DataFrame,
                     task: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(kept, removed): the training rows without those the label audit quarantined.

    The rows must add up: as many rows leave the table as the quarantine lists for the task
    (an id the table lacks, or holds twice, is an error naming it).
    """
    listed = quarantine.loc[quarantine["task"] == task, "id"].astype(str)
    gone = train["id"].astype(str).isin(set(listed))
    if gone.sum() != len(listed):
        found = train.loc[gone, "id"].astype(str).value_counts()
        odd = [i for i in listed if found.get(i, 0) != 1][:3]
        raise ValueError(f"{task}: the audit quarantine lists {len(listed)} rows but "
                         f"{int(gone.sum())} training rows match (ids {odd})")
    return train[~gone].reset_index(drop=True), train[gone]


def read_quarantine(audit_dir: Path) -> pd.DataFrame:
    path = audit_dir / "quarantine.parquet"
    if not path.exists():
        log.info("%s absent: no training row is quarantined by the label audit", path)
        return pd.DataFrame(columns=["task", "id"])
    return pd.read_parquet(path)


def run(params: BalanceParams, clean_dir: Path = CLEAN_DIR, out_dir: Path = OUT_DIR,
        audit_dir: Path = AUDIT_DIR) -> dict:
    """Balance every task; the outputs replace the previous ones only if all were written."""
    plan, quarantine = {}, read_quarantine(audit_dir)
    with StageOutputs() as outputs:
        staging = outputs.stage(out_dir)
        for task in TASKS:
            train = pd.read_parquet(clean_dir / task / "train.parquet")
            train, removed = drop_quarantined(train, quarantine, task)
            balanced, plan[task] = balance_task(train, task, params.cap(task), params.seed)
            for cls, n in class_counts(task, removed["label"]).items():
                plan[task]["classes"][cls]["clean"] += n  # the clean count, quarantined included
                plan[task]["classes"][cls]["label_issue"] = n
            (staging / task).mkdir(parents=True, exist_ok=True)
            balanced.to_parquet(staging / task / "train.parquet", index=False)
            log.info("%s: T=%d, kept %d of %d rows %s", task, plan[task]["target"],
                     len(balanced), len(train),
                     {c: v["real"] for c, v in plan[task]["classes"].items()})
        (staging / "plan.json").write_text(json.dumps(plan, indent=2) + "\n")
    return plan


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        params = load_section("balance", BalanceParams)
        log.info("params: %s", params)
        run(params)
    except (OutputError, ValueError) as error:
        log.error("%s", error)
        sys.exit(1)


if __name__ == "__main__":
    main()
