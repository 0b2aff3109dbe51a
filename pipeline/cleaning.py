"""Cleaning rules applied to a task's training table, each a pure function on DataFrames.

Every rule returns the rows it keeps and the rows it takes out, so the caller can account for
every input row (rows in = kept + quarantined + deduplicated + leaked).
"""

from __future__ import annotations

import pandas as pd

from minbert.tasks import TaskSpec
from minbert.text import match_key, pair_key


def row_keys(df: pd.DataFrame, spec: TaskSpec) -> pd.Series:
    """Identity key of every row: normalized text (SST) or unordered normalized pair."""
    if df.empty:
        return pd.Series([], index=df.index, dtype=object)
    if spec.is_pair:
        a, b = spec.text_columns
        return pd.Series([pair_key(x, y) for x, y in zip(df[a], df[b])], index=df.index)
    return df[spec.text_columns[0]].map(match_key)


def find_label_conflicts(df: pd.DataFrame, spec: TaskSpec) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split off every copy of a text that appears with more than one label.

    Returns (kept, conflicts). Which label is right cannot be known, so all copies go to
    quarantine with reason `label_conflict`.
    """
    keys = row_keys(df, spec)
    n_labels = df.groupby(keys)["label"].transform("nunique")
    conflict = n_labels > 1
    return df[~conflict], df[conflict]


def drop_exact_duplicates(df: pd.DataFrame, spec: TaskSpec) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Keep the first of rows with the same normalized text/pair and the same label.

    Returns (kept, duplicates); each duplicate gets `kept_id`, the id of the row kept instead.
    """
    keys = row_keys(df, spec)
    dup = pd.Series(list(zip(keys, df["label"])), index=df.index).duplicated(keep="first")
    first_id = df.groupby([keys, df["label"]])["id"].transform("first")
    duplicates = df[dup].assign(kept_id=first_id[dup])
    return df[~dup], duplicates


def find_leakage(
    train: pd.DataFrame, others: dict[str, pd.DataFrame], spec: TaskSpec
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split off training rows whose text (SST) or unordered pair also occurs in dev/test.

    `others` maps split name -> table. Returns (kept, leaked); leaked rows get `leaked_into`
    (the split names) so the report can say where each one was seen.
    """
    train_keys = row_keys(train, spec)
    seen: dict[str, list[str]] = {}
    for split, table in others.items():
        for key in set(row_keys(table, spec)):
            seen.setdefault(key, []).append(split)
    leaked_mask = train_keys.isin(seen.keys())
    leaked = train[leaked_mask].assign(
        leaked_into=[",".join(seen[k]) for k in train_keys[leaked_mask]]
    )
    return train[~leaked_mask], leaked
