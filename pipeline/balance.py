"""Stage `balance`: cap every class of the clean training sets and plan the augmentation.

    python -m pipeline.balance

Inputs:  data/clean/<task>/train.parquet
Outputs: data/balanced/<task>/train.parquet   real rows, every class down-sampled to at most T
         data/balanced/plan.json              per task and class: clean count, real rows kept
                                              and the target T

T, the per-class target of a task, is min(largest class, balance.max_per_class). Classes larger
than T are down-sampled (seeded); smaller classes keep all their rows and are topped up later by
the augment stage to round(augment.ratio * T).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from pipeline.params import load_section
from pipeline.tasks import TASKS, class_counts, class_names, class_of

log = logging.getLogger(__name__)
CLEAN_DIR = Path("data/clean")
OUT_DIR = Path("data/balanced")


@dataclass(frozen=True)
class BalanceParams:
    max_per_class: int
    seed: int


def class_target(counts: dict[str, int], max_per_class: int) -> int:
    """T = min(largest class, cap)."""
    if max_per_class < 1:
        raise ValueError(f"balance.max_per_class must be at least 1, got {max_per_class}")
    return min(max(counts.values(), default=0), max_per_class)


def balance_task(train: pd.DataFrame, task: str, max_per_class: int,
                 seed: int) -> tuple[pd.DataFrame, dict]:
    """Down-sample every class of one task to at most T rows; return (table, plan entry).

    Rows keep their original order, so the result does not depend on how pandas samples.
    """
    counts = class_counts(task, train["label"])
    target = class_target(counts, max_per_class)
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


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    params = load_section("balance", BalanceParams)
    log.info("params: %s", asdict(params))
    plan = {}
    for task in TASKS:
        train = pd.read_parquet(CLEAN_DIR / task / "train.parquet")
        balanced, plan[task] = balance_task(train, task, params.max_per_class, params.seed)
        (OUT_DIR / task).mkdir(parents=True, exist_ok=True)
        balanced.to_parquet(OUT_DIR / task / "train.parquet", index=False)
        log.info("%s: T=%d, kept %d of %d rows %s", task, plan[task]["target"], len(balanced),
                 len(train), {c: v["real"] for c, v in plan[task]["classes"].items()})
    (OUT_DIR / "plan.json").write_text(json.dumps(plan, indent=2) + "\n")


if __name__ == "__main__":
    main()
