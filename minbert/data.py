"""Task tables -> token batches for the multitask model (training and prediction).

A task batch is `{"inputs": {input_ids, attention_mask, token_type_ids}, "labels": (B,)}`.
Sentence pairs are encoded in one of two layouts:

- bi-encoder (SBERT paraphrase head, both STS heads): the 2B sentences in one (2B, T) batch,
  first sentences then second sentences, so one encoder pass embeds both sides;
- cross-encoder (paraphrase `cross` head): B rows of [CLS] s1 [SEP] s2 [SEP].

Training tables written by the augment stage also carry provenance: `origin` (real /
synthetic) gives the per-row loss weight (`row_weights`), `source_id` the source row whose rows
must not be each other's in-batch negatives (`source_keys`, `simcse_sentences`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from tokenizers import Tokenizer

from minbert.backbone import encode_batch
from minbert.tasks import TASKS

TRAINING_PROVENANCE = ("origin", "source_id")  # provenance columns training reads when present


def is_cross(task: str, para_kind: str) -> bool:
    """True when the task's pairs are encoded together ([CLS] s1 [SEP] s2 [SEP])."""
    return task == "para" and para_kind == "cross"


def check_table(task: str, df: pd.DataFrame, source: str, labeled: bool = True) -> None:
    """Raise ValueError naming `source`, the column and a row when the table is unusable."""
    spec = TASKS[task]
    missing = [c for c in spec.columns(labeled) if c not in df.columns]
    if missing:
        raise ValueError(
            f"{source}: missing column(s) {missing} (expected {spec.columns(labeled)})"
        )
    if df.empty:
        raise ValueError(f"{source}: no rows")
    for column in spec.text_columns:
        bad = df[column].isna() | (df[column].astype(str).str.strip() == "")
        if bad.any():
            raise ValueError(f"{source}: empty {column} in row id {df.loc[bad, 'id'].iloc[0]!r}")
    if labeled:
        labels = pd.to_numeric(df["label"], errors="coerce")
        bad = labels.isna() | (labels < spec.label_min) | (labels > spec.label_max)
        if bad.any():
            row = df.loc[bad].iloc[0]
            raise ValueError(
                f"{source}: label {row['label']} of row id {row['id']!r} is not in "
                f"[{spec.label_min}, {spec.label_max}]"
            )


def limit_rows(df: pd.DataFrame, max_rows: int, seed: int) -> pd.DataFrame:
    """A seeded random sample of `max_rows` rows (all rows when max_rows is 0 or larger)."""
    if max_rows <= 0 or len(df) <= max_rows:
        return df.reset_index(drop=True)
    return df.sample(n=max_rows, random_state=seed).reset_index(drop=True)


def texts(task: str, df: pd.DataFrame) -> list[list[str]]:
    """The text columns of a task table as lists of str (one list per column)."""
    return [df[c].astype(str).tolist() for c in TASKS[task].text_columns]


def encode_rows(tokenizer: Tokenizer, task: str, df: pd.DataFrame, cross: bool) -> dict:
    """Rows of a task table -> model inputs in the task's pair layout (see module docstring)."""
    columns = texts(task, df)
    if len(columns) == 1:
        return encode_batch(tokenizer, columns[0])
    if cross:
        return encode_batch(tokenizer, columns[0], columns[1])
    return encode_batch(tokenizer, columns[0] + columns[1])


def encode_sentences(tokenizer: Tokenizer, sentences: Sequence[str]) -> dict:
    return encode_batch(tokenizer, list(sentences))


def task_batch(tokenizer: Tokenizer, task: str, df: pd.DataFrame, cross: bool) -> dict:
    """Rows (with labels) -> {"inputs": ..., "labels": (B,) float or long tensor}."""
    dtype = torch.float32 if TASKS[task].label_kind == "float" else torch.long
    labels = torch.tensor(df["label"].to_numpy(), dtype=dtype)
    return {"inputs": encode_rows(tokenizer, task, df, cross), "labels": labels}


def token_lengths(tokenizer: Tokenizer, task: str, df: pd.DataFrame, cross: bool) -> np.ndarray:
    """Tokens per row (truncated): the pair's length when cross-encoded, else the longer side."""
    columns = texts(task, df)
    if cross:
        encodings = tokenizer.encode_batch(list(zip(columns[0], columns[1], strict=True)))
        return np.array([sum(e.attention_mask) for e in encodings], dtype=np.int64)
    per_column = [
        [sum(e.attention_mask) for e in tokenizer.encode_batch(column)] for column in columns
    ]
    return np.max(np.array(per_column, dtype=np.int64), axis=0)


def to_device(batch: dict, device: torch.device) -> dict:
    """Move every tensor of a (nested) batch dict to `device`."""
    return {
        k: to_device(v, device) if isinstance(v, dict) else v.to(device, non_blocking=True)
        for k, v in batch.items()
    }


def row_weights(df: pd.DataFrame, synthetic_weight: float) -> np.ndarray | None:
    """(N,) loss weight per row: `synthetic_weight` for synthetic rows, 1 for real rows.

    None (plain, unweighted loss) when the weight is 1 or the table has no `origin` column, so
    that weight 1 is exactly the training without provenance.
    """
    if synthetic_weight == 1 or "origin" not in df.columns:
        return None
    synthetic = (df["origin"] == "synthetic").fillna(False).to_numpy(dtype=bool)
    return np.where(synthetic, synthetic_weight, 1.0).astype(np.float32)


def source_keys(df: pd.DataFrame) -> pd.Series:
    """The source row of every row: `source_id` (augmented tables) or the row's own id."""
    column = "source_id" if "source_id" in df.columns else "id"
    return df[column].astype(str).reset_index(drop=True)


def group_codes(keys: pd.Series) -> np.ndarray:
    """(N,) int64 code per key: equal keys, equal codes (the `groups` of a contrastive batch)."""
    return pd.factorize(keys)[0].astype(np.int64)


def simcse_sentences(sst: pd.DataFrame, sts: pd.DataFrame) -> pd.DataFrame:
    """SST sentences and both sides of the STS pairs, each once, with its source `group` key.

    A paraphrase shares its source's key (an STS paraphrase replaces one side, so the key
    names the side): SimCSE never takes one as the other's negative.
    """
    parts = [pd.DataFrame({"sentence": sst["sentence"].to_numpy(),
                           "group": ("sst:" + source_keys(sst)).to_numpy()})]
    for column in ("sentence1", "sentence2"):
        parts.append(pd.DataFrame({"sentence": sts[column].to_numpy(),
                                   "group": ("sts:" + source_keys(sts) + f":{column}").to_numpy()}))
    return pd.concat(parts, ignore_index=True).drop_duplicates("sentence").reset_index(drop=True)
