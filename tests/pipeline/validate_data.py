"""Tiny tables in the layout `validate` reads: clean splits and an augmented training table.

Every table satisfies the contract; tests break one thing at a time.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd

from minbert.tasks import TASKS, class_names
from pipeline.validate import ValidateParams

WORDS = "calm bright dusty early fierce gentle hollow icy jolly keen lucky misty".split()
STS_LABELS = {"0-1": 0.4, "1-2": 1.5, "2-3": 2.2, "3-4": 3.8, "4-5": 5.0}
GENERATOR = "llama_cpp:SmolLM2-135M-Instruct"


def sentence(task: str, split: str, i: int, side: int = 0) -> str:
    """A distinct sentence per task, split, row and side of the pair."""
    words = [WORDS[(i + k * (side + 1)) % len(WORDS)] for k in range(3)]
    return f"The {' '.join(words)} {task} {split} example {i}.{side} ."


def hex_id(*parts) -> str:
    return hashlib.sha1("/".join(map(str, parts)).encode()).hexdigest()[:25]


def label_of(task: str, cls: str):
    return STS_LABELS[cls] if task == "sts" else int(cls)


def clean_split(task: str, split: str, per_class: int = 3) -> pd.DataFrame:
    spec = TASKS[task]
    rows, i = [], 0
    for cls in class_names(task):
        for _ in range(per_class):
            row = {"id": hex_id(task, split, i)}
            for side, col in enumerate(spec.text_columns):
                row[col] = sentence(task, split, i, side)
            row["label"] = label_of(task, cls)
            rows.append(row)
            i += 1
    df = pd.DataFrame(rows, columns=spec.columns(labeled=True))
    df["label"] = df["label"].astype("int64" if spec.label_kind == "int" else "float64")
    return df if split != "test" else df.drop(columns="label")


def augmented_table(train: pd.DataFrame, task: str, synthetic_per_class: int = 1) -> pd.DataFrame:
    """Real rows of `train` plus `synthetic_per_class` paraphrase rows for every class."""
    spec = TASKS[task]
    real = train.assign(origin="real", source_id=train["id"], generator=None, prompt_hash=None,
                        seed=pd.array([pd.NA] * len(train), dtype="Int64"), similarity=float("nan"))
    synthetic = []
    for cls in class_names(task):
        sources = train[train["label"] == label_of(task, cls)]
        for k in range(synthetic_per_class):
            src = sources.iloc[k % len(sources)]
            row = {"id": "syn-" + hashlib.sha1(f"{src['id']}{k}".encode()).hexdigest()[:12]}
            for col in spec.text_columns:
                row[col] = f"In other words, {src[col]} (take {k})"
            row.update(label=src["label"], origin="synthetic", source_id=src["id"],
                       generator=GENERATOR, prompt_hash=hex_id("prompt", src["id"], k),
                       seed=k, similarity=0.91)
            synthetic.append(row)
    out = pd.concat([real, pd.DataFrame(synthetic)], ignore_index=True)
    out["seed"] = out["seed"].astype("Int64")
    # the dtypes augment writes (augment/outputs.py): pandas "string" with <NA> for nulls
    for col in ("id", *spec.text_columns, "origin", "source_id", "generator", "prompt_hash"):
        out[col] = out[col].astype("string")
    return out


def write_tables(root: Path, augmented: bool = True) -> ValidateParams:
    """Write clean splits and training tables of every task under `root`; return params."""
    for task, spec in TASKS.items():
        (root / "clean" / task).mkdir(parents=True, exist_ok=True)
        (root / "training" / task).mkdir(parents=True, exist_ok=True)
        for split in spec.files:
            clean_split(task, split).to_parquet(root / "clean" / task / f"{split}.parquet")
        train = clean_split(task, "train")
        table = augmented_table(train, task) if augmented else train
        table.to_parquet(root / "training" / task / "train.parquet")
    return params_for(root)


def dirs_for(root: Path) -> dict[str, Path]:
    """The table folders `write_tables(root)` fills, as `validate()` takes them."""
    return {"clean_dir": root / "clean", "training_dir": root / "training"}


def params_for(root: Path, **changes) -> ValidateParams:
    values = dict(min_chars=1, max_chars=2000, max_class_ratio=1.1,
                  synthetic_share=(0.0, 0.99), examples=5)
    values.update(changes)
    return ValidateParams(**values)
