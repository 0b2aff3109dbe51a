"""How many synthetic rows each class needs, and which real rows they are paraphrased from.

Every class c of a task is topped up to round(ratio * T_c) rows, T_c being the per-class target
of the balance stage (`data/balanced/plan.json`); ratio 0 asks for nothing. Request j of a class
(j = 0, 1, 2, ...) paraphrases the real row at position j mod n of a seeded permutation of the
class's n real rows, as sample k = j div n of that row. Request j never depends on how many
requests there are, so raising the ratio only appends requests (and the generation cache serves
the old ones). For sentence pairs the paraphrased side alternates between rows and samples.

    >>> rows_needed({"classes": {"0": {"real": 90, "target": 100}}}, ratio=2)
    {'0': 110}
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pandas as pd

from minbert.tasks import TASKS

REQUEST_COLUMNS = ["j", "source_id", "sample", "side", "source_text", "label"]


class PlanError(ValueError):
    """plan.json does not have the shape the balance stage writes."""


def stable_seed(*parts: object) -> int:
    """A 32-bit seed from any values, stable across processes (unlike `hash`)."""
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()
    return int(digest[:8], 16)


def goal_rows(target: int, ratio: float) -> int:
    """round(ratio * target), halves rounded up (Python's `round` rounds 2.5 to 2)."""
    if ratio < 0:
        raise ValueError(f"augment.ratio must be >= 0, got {ratio}")
    return int(math.floor(ratio * target + 0.5))


def rows_needed(plan_task: dict, ratio: float, where: str = "plan") -> dict[str, int]:
    """Synthetic rows per class: round(ratio * target) - real, never below 0."""
    classes = plan_task.get("classes")
    if not isinstance(classes, dict):
        raise PlanError(f"{where}: missing 'classes' mapping")
    needed = {}
    for cls, counts in classes.items():
        for key in ("real", "target"):
            if not isinstance(counts, dict) or not isinstance(counts.get(key), int):
                raise PlanError(f"{where}: class '{cls}' has no integer '{key}'")
        needed[cls] = max(0, goal_rows(counts["target"], ratio) - counts["real"])
    return needed


def source_order(ids: pd.Series, seed: int, task: str, cls: str) -> list[str]:
    """The class's real row ids in a seeded order that depends only on the ids themselves."""
    ordered = sorted(map(str, ids))
    rng = np.random.default_rng(stable_seed(seed, task, cls))
    return [ordered[i] for i in rng.permutation(len(ordered))]


def paraphrase_requests(task: str, real: pd.DataFrame, order: list[str], start: int,
                        stop: int) -> pd.DataFrame:
    """Requests j in [start, stop) of one class (columns REQUEST_COLUMNS).

    `real` holds the class's real rows (id, text columns, label); `order` is `source_order`.
    SST paraphrases the sentence; pair tasks paraphrase sentence1 or sentence2, alternating.
    """
    n = len(order)
    if n == 0 or stop <= start:
        return pd.DataFrame(columns=REQUEST_COLUMNS)
    by_id = real.assign(id=real["id"].astype(str)).set_index("id")
    text_columns = TASKS[task].text_columns
    rows = []
    for j in range(start, stop):
        position, sample = j % n, j // n
        side = text_columns[(position + sample) % len(text_columns)]
        row = by_id.loc[order[position]]
        rows.append((j, order[position], sample, side, row[side], row["label"]))
    return pd.DataFrame(rows, columns=REQUEST_COLUMNS)
