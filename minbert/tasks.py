"""The three tasks, their course files and the table schema every stage shares.

Clean tables (`data/clean/<task>/<split>.parquet`) have the columns
    sst:  id, sentence, label (int 0-4)
    para: id, sentence1, sentence2, label (int 0/1)
    sts:  id, sentence1, sentence2, label (float 0-5)
and no `label` column for the test split.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

# Provenance columns of a training table after augmentation (empty for real rows but origin).
PROVENANCE_COLUMNS = ("origin", "source_id", "generator", "prompt_hash", "seed", "similarity")

# STS scores are binned into five classes for balancing and reporting: [0,1) ... [4,5].
STS_BIN_NAMES = ("0-1", "1-2", "2-3", "3-4", "4-5")


@dataclass(frozen=True)
class TaskSpec:
    name: str
    title: str
    files: dict  # split -> course file name under data/raw
    text_columns: tuple[str, ...]
    raw_label_column: str  # label column name in the course files
    label_kind: str  # "int" or "float"
    label_min: float
    label_max: float

    @property
    def is_pair(self) -> bool:
        return len(self.text_columns) == 2

    def columns(self, labeled: bool = True) -> list[str]:
        return ["id", *self.text_columns, *(["label"] if labeled else [])]


TASKS: dict[str, TaskSpec] = {
    "sst": TaskSpec(
        name="sst",
        title="SST-5 sentiment",
        files={
            "train": "ids-sst-train.csv",
            "dev": "ids-sst-dev.csv",
            "test": "ids-sst-test-student.csv",
        },
        text_columns=("sentence",),
        raw_label_column="sentiment",
        label_kind="int",
        label_min=0,
        label_max=4,
    ),
    "para": TaskSpec(
        name="para",
        title="Quora paraphrase",
        files={"train": "quora-train.csv", "dev": "quora-dev.csv"},
        text_columns=("sentence1", "sentence2"),
        raw_label_column="is_duplicate",
        label_kind="int",
        label_min=0,
        label_max=1,
    ),
    "sts": TaskSpec(
        name="sts",
        title="STS similarity",
        files={
            "train": "sts-train.csv",
            "dev": "sts-dev.csv",
            "test": "sts-test-student.csv",
        },
        text_columns=("sentence1", "sentence2"),
        raw_label_column="similarity",
        label_kind="float",
        label_min=0.0,
        label_max=5.0,
    ),
}

SST_CLASS_NAMES = ("0", "1", "2", "3", "4")
PARA_CLASS_NAMES = ("0", "1")


def class_names(task: str) -> tuple[str, ...]:
    return {"sst": SST_CLASS_NAMES, "para": PARA_CLASS_NAMES, "sts": STS_BIN_NAMES}[task]


def class_of(task: str, labels: pd.Series) -> pd.Series:
    """Class name of every label: the label itself for SST/Quora, the score bin for STS.

    STS bins are [0,1), [1,2), [2,3), [3,4), [4,5] (5.0 falls in the last bin).
    """
    if task == "sts":
        idx = np.clip(np.floor(labels.to_numpy(dtype=float)).astype(int), 0, 4)
        return pd.Series([STS_BIN_NAMES[i] for i in idx], index=labels.index, dtype=object)
    return labels.astype(int).astype(str)


def class_counts(task: str, labels: pd.Series) -> dict[str, int]:
    counts = class_of(task, labels).value_counts()
    return {name: int(counts.get(name, 0)) for name in class_names(task)}
