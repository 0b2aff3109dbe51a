"""The data contract of the pipeline, written as Great Expectations suites (plain data).

Each suite is built by one function and is a tuple of `Expect` records: the name of a Great
Expectations 1.x expectation class, its keyword arguments and a one-line description that
Data Docs shows. Keeping the suites as plain data keeps this module free of the (slow to import)
`great_expectations` package; `pipeline.gx_runner.run_suites` turns them into GX objects.

    clean_split_suite(task, split)   data/clean/<task>/<split>.parquet
    training_suite(task, ...)        the table `train` reads (data/augmented/<task>/train.parquet)

Checks that compare a row with other tables (leakage into dev/test, the real row a synthetic row
came from) or with its class (balance, synthetic share) are computed in pandas by
`annotate_training_table` into `check_*` columns, which the training suite asserts with standard
expectations. This is how GX 1.x expresses cross-table rules for pandas data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from minbert.course_io import CONTROL_CHARACTERS, NO_VISIBLE_TEXT, UNDECODABLE
from minbert.tasks import PROVENANCE_COLUMNS, TASKS, class_names, class_of
from pipeline.cleaning import row_keys

PROVENANCE_TYPES = {
    "origin": "str", "source_id": "str", "generator": "str", "prompt_hash": "str",
    "seed": "int64",  # nullable Int64 has the numpy scalar type int64
    "similarity": "float64",
}
SYNTHETIC_ID = r"^syn-[0-9a-f]{12}$"
LEAK_COLUMN = "check_leaked_text"
SOURCE_COLUMN = "check_unknown_source_id"
RATIO_COLUMN = "check_class_size_ratio"
SHARE_COLUMN = "check_class_synthetic_share"
CHECK_COLUMNS = (LEAK_COLUMN, SOURCE_COLUMN, RATIO_COLUMN, SHARE_COLUMN)


class ContractError(ValueError):
    """A table that cannot be checked at all: unreadable, missing columns, reserved names."""


@dataclass(frozen=True)
class Expect:
    """One expectation: GX class name, its kwargs, and an optional row filter."""

    type: str  # e.g. "ExpectColumnValuesToBeUnique" (gx.expectations.<type>)
    kwargs: dict[str, Any]
    description: str
    when: tuple[str, str] | None = None  # (column, value): only rows where column == value


@dataclass(frozen=True)
class SuiteSpec:
    name: str  # e.g. "sst_clean_train"; also the Data Docs page name
    expectations: tuple[Expect, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class TextBounds:
    min_chars: int
    max_chars: int


def schema_expectations(columns: list[str], types: dict[str, str]) -> list[Expect]:
    """Exact column list (in order), one type per column, at least one row."""
    found = [Expect("ExpectTableRowCountToBeBetween", {"min_value": 1}, "the table has rows")]
    found.append(Expect("ExpectTableColumnsToMatchOrderedList", {"column_list": columns},
                        f"columns are exactly: {', '.join(columns)}"))
    for col in columns:
        if col in types:
            kwargs = {"column": col, "type_": types[col]}
            found.append(Expect("ExpectColumnValuesToBeOfType", kwargs,
                                f"{col} is of type {types[col]}"))
    return found


def id_expectations() -> list[Expect]:
    return [
        Expect("ExpectColumnValuesToNotBeNull", {"column": "id"}, "every row has an id"),
        Expect("ExpectColumnValuesToBeUnique", {"column": "id"}, "ids are unique"),
    ]


def text_expectations(columns: tuple[str, ...], bounds: TextBounds) -> list[Expect]:
    """Every sentence present, text (a visible character, no control character), and of a
    length within the params bounds. The two text patterns are the ones `prepare` applies
    (minbert/course_io.py)."""
    found = []
    for col in columns:
        found += [
            Expect("ExpectColumnValuesToNotBeNull", {"column": col}, f"{col} is present"),
            Expect("ExpectColumnValuesToNotMatchRegex", {"column": col, "regex": NO_VISIBLE_TEXT},
                   f"{col} has a visible character (not empty, whitespace or zero-width only)"),
            Expect("ExpectColumnValuesToNotMatchRegex",
                   {"column": col, "regex": CONTROL_CHARACTERS},
                   f"{col} has no control character"),
            Expect("ExpectColumnValuesToNotMatchRegex", {"column": col, "regex": UNDECODABLE},
                   f"{col} has no undecodable bytes (U+FFFD or escaped non-UTF-8 bytes)"),
            Expect("ExpectColumnValueLengthsToBeBetween",
                   {"column": col, "min_value": bounds.min_chars, "max_value": bounds.max_chars},
                   f"{col} has {bounds.min_chars} to {bounds.max_chars} characters"),
        ]
    return found


def label_expectations(task: str) -> list[Expect]:
    """SST labels in {0..4}, Quora labels in {0, 1}, STS scores in [0, 5]."""
    spec = TASKS[task]
    found = [Expect("ExpectColumnValuesToNotBeNull", {"column": "label"}, "every row has a label")]
    if spec.label_kind == "int":
        values = list(range(int(spec.label_min), int(spec.label_max) + 1))
        found.append(Expect("ExpectColumnValuesToBeInSet", {"column": "label", "value_set": values},
                            f"label is one of {values}"))
    else:
        found.append(Expect(
            "ExpectColumnValuesToBeBetween",
            {"column": "label", "min_value": spec.label_min, "max_value": spec.label_max},
            f"label is between {spec.label_min:g} and {spec.label_max:g}"))
    return found


def table_columns(task: str, labeled: bool) -> tuple[list[str], dict[str, str]]:
    """Columns of a clean table and their types (label int64 or float64; no label in test)."""
    spec = TASKS[task]
    columns = spec.columns(labeled)
    types = {c: "str" for c in ("id", *spec.text_columns)}
    if labeled:
        types["label"] = "int64" if spec.label_kind == "int" else "float64"
    return columns, types


def clean_split_suite(task: str, split: str, bounds: TextBounds) -> SuiteSpec:
    """Suite of one clean split: schema, ids, text; labels in range, or no labels for test."""
    labeled = split != "test"
    columns, types = table_columns(task, labeled)
    expectations = schema_expectations(columns, types) + id_expectations()
    expectations += text_expectations(TASKS[task].text_columns, bounds)
    if labeled:
        expectations += label_expectations(task)
    return SuiteSpec(f"{task}_clean_{split}", tuple(expectations))


def provenance_expectations() -> list[Expect]:
    """Every row says where it came from; every synthetic row names its generator and prompt."""
    real, synthetic = ("origin", "real"), ("origin", "synthetic")
    return [
        Expect("ExpectColumnValuesToBeInSet",
               {"column": "origin", "value_set": ["real", "synthetic"]},
               "origin is real or synthetic"),
        Expect("ExpectColumnValuesToNotBeNull", {"column": "origin"}, "every row has an origin"),
        Expect("ExpectColumnValuesToNotBeNull", {"column": "source_id"},
               "every row has a source_id"),
        Expect("ExpectColumnPairValuesToBeEqual", {"column_A": "id", "column_B": "source_id"},
               "a real row is its own source", when=real),
        Expect("ExpectColumnValuesToBeNull", {"column": "generator"},
               "a real row has no generator", when=real),
        Expect("ExpectColumnValuesToMatchRegex", {"column": "id", "regex": SYNTHETIC_ID},
               "a synthetic id is syn-<12 hex>", when=synthetic),
        Expect("ExpectColumnValuesToNotBeNull", {"column": "generator"},
               "a synthetic row names its generator (backend:model)", when=synthetic),
        Expect("ExpectColumnValuesToNotBeNull", {"column": "prompt_hash"},
               "a synthetic row has the hash of its prompt", when=synthetic),
        Expect("ExpectColumnValuesToBeNull", {"column": SOURCE_COLUMN},
               "the source_id of a synthetic row is a real row of the same table"),
    ]


def balance_expectations(max_class_ratio: float | None, share: tuple[float, float]) -> list[Expect]:
    """Classes within `max_class_ratio` of each other; synthetic share of each class in range."""
    found = []
    if max_class_ratio is not None:
        found.append(Expect("ExpectColumnMaxToBeBetween",
                            {"column": RATIO_COLUMN, "max_value": max_class_ratio},
                            f"largest class / smallest class <= {max_class_ratio:g}"))
    found += [
        Expect("ExpectColumnMinToBeBetween", {"column": SHARE_COLUMN, "min_value": share[0]},
               f"every class has a synthetic share >= {share[0]:g}"),
        Expect("ExpectColumnMaxToBeBetween", {"column": SHARE_COLUMN, "max_value": share[1]},
               f"every class has a synthetic share <= {share[1]:g}"),
    ]
    return found


def training_suite(
    task: str, bounds: TextBounds, *, augmented: bool,
    max_class_ratio: float | None, synthetic_share: tuple[float, float],
) -> SuiteSpec:
    """Suite of the table `train` reads, annotated by `annotate_training_table`.

    `augmented`: the table has provenance columns (then provenance and balance apply).
    `max_class_ratio`: None when balance is not expected (augment.ratio < 1).
    """
    columns, types = table_columns(task, labeled=True)
    if augmented:
        columns += list(PROVENANCE_COLUMNS)
        types.update(PROVENANCE_TYPES)
    columns += list(CHECK_COLUMNS if augmented else CHECK_COLUMNS[:1])
    expectations = schema_expectations(columns, types) + id_expectations()
    expectations += text_expectations(TASKS[task].text_columns, bounds)
    expectations += label_expectations(task)
    expectations.append(Expect("ExpectColumnValuesToBeNull", {"column": LEAK_COLUMN},
                               "no training text/pair occurs in dev or test"))
    if augmented:
        expectations += provenance_expectations()
        expectations += balance_expectations(max_class_ratio, synthetic_share)
    return SuiteSpec(f"{task}_training", tuple(expectations))


def _nulls(index: pd.Index) -> pd.Series:
    return pd.Series([None] * len(index), index=index, dtype=object)


def text_keys(df: pd.DataFrame, task: str) -> pd.Series:
    """Identity key of every row (`pipeline.cleaning.row_keys`); None where text is missing."""
    spec = TASKS[task]
    keys = _nulls(df.index)
    if not set(spec.text_columns) <= set(df.columns):
        return keys  # the schema expectations report the missing column
    columns = [df[c] for c in spec.text_columns]
    ok = pd.Series([all(isinstance(v, str) for v in row) for row in zip(*columns)],
                   index=df.index, dtype=bool)
    if ok.any():
        keys[ok] = row_keys(df[ok], spec)
    return keys


def leaked_text(train: pd.DataFrame, others: dict[str, pd.DataFrame], task: str) -> pd.Series:
    """'<split>: <text>' for every training row whose text/pair occurs in another split."""
    seen: dict[str, list[str]] = {}
    for split, table in others.items():
        for key in set(text_keys(table, task).dropna()):
            seen.setdefault(key, []).append(split)
    keys = text_keys(train, task)
    values = _nulls(train.index)
    for idx, key in keys.dropna().items():
        if key in seen:
            text = " | ".join(str(train.at[idx, c]) for c in TASKS[task].text_columns)
            values[idx] = f"{','.join(seen[key])}: {text}"
    return values


def unknown_source_ids(train: pd.DataFrame) -> pd.Series:
    """source_id of every synthetic row whose source is not a real row of the table."""
    if not {"id", "origin", "source_id"} <= set(train.columns):
        return _nulls(train.index)  # reported by the schema
    real_ids = set(train.loc[train["origin"] == "real", "id"])
    synthetic = (train["origin"] == "synthetic") & train["source_id"].notna()
    unknown = synthetic & ~train["source_id"].isin(real_ids)
    return train["source_id"].astype(object).where(unknown, None)


def class_table(train: pd.DataFrame, task: str) -> pd.DataFrame:
    """Per class: rows, real, synthetic, synthetic share, size / smallest class size.

    Rows whose label is missing or out of range belong to no class (the label expectations
    report them).
    """
    classes = _classes(train, task)
    synthetic = (train["origin"] if "origin" in train.columns else pd.Series("real", train.index))
    synthetic = synthetic.eq("synthetic")
    table = pd.DataFrame({"class": classes, "synthetic": synthetic}).dropna(subset=["class"])
    counts = table.groupby("class")["synthetic"].agg(rows="size", synthetic="sum")
    counts = counts.reindex(class_names(task), fill_value=0).astype("int64")
    counts["real"] = counts["rows"] - counts["synthetic"]
    rows = counts["rows"].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        counts["synthetic_share"] = np.where(rows > 0, counts["synthetic"] / rows, 0.0)
        counts["size_ratio"] = rows / rows.min() if rows.min() > 0 else np.inf
    return counts[["rows", "real", "synthetic", "synthetic_share", "size_ratio"]]


def _classes(train: pd.DataFrame, task: str) -> pd.Series:
    spec = TASKS[task]
    classes = _nulls(train.index)
    if "label" not in train.columns:
        return classes
    labels = pd.to_numeric(train["label"], errors="coerce")
    valid = labels.between(spec.label_min, spec.label_max)
    if spec.label_kind == "int":
        valid &= labels == labels.round()
    classes[valid] = class_of(task, labels[valid])
    return classes


def annotate_training_table(
    train: pd.DataFrame, others: dict[str, pd.DataFrame], task: str
) -> pd.DataFrame:
    """The training table plus the computed `check_*` columns its suite asserts."""
    out = train.copy()
    clash = [c for c in CHECK_COLUMNS if c in train.columns]
    if clash:
        raise ContractError(f"has column(s) {clash}, a name validate reserves for its checks")
    out[LEAK_COLUMN] = leaked_text(train, others, task)
    if "origin" not in train.columns:
        return out
    out[SOURCE_COLUMN] = unknown_source_ids(train)
    classes = _classes(train, task)
    per_class = class_table(train, task)
    out[RATIO_COLUMN] = classes.map(per_class["size_ratio"]).astype(float)
    out[SHARE_COLUMN] = classes.map(per_class["synthetic_share"]).astype(float)
    return out
