"""Stage `prepare`: raw course CSVs -> clean parquet tables, quarantine and summary.

    python -m pipeline.prepare

Inputs:  data/raw/*.csv (the course files; names in minbert/tasks.py)
Outputs: data/clean/<task>/<split>.parquet   clean schema (see minbert/tasks.py)
         data/clean/quarantine.parquet       bad rows: file, line, raw row, reason
         data/clean/removed.parquet          training rows removed as duplicates or leakage
         data/clean/summary.json             per file: lines after the header, blank lines,
                                             rows in / kept / quarantined by reason /
                                             deduplicated / leaked, class counts
Every line of a raw file is accounted for, against an independent count of the file's lines
(pipeline/accounting.py): lines = kept + quarantined + deduplicated + leaked + blank, checked on
the written tables before they replace the previous outputs. A file that lost more than
`prepare.max_quarantined_share` of its rows to quarantine stops the stage (it is probably not
the file it should be). Outputs are written as a transaction (minbert/outputs.py): a failure
leaves the previous data/clean as it was. Every failure is one error line and exit status 1.
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from minbert.course_io import (
    QUARANTINE_COLUMNS,
    CourseTable,
    InputError,
    read_course_file,
    read_course_table,
)
from minbert.outputs import StageOutputs
from minbert.params import load_section
from minbert.paths import CLEAN_DIR
from minbert.tasks import TASKS, TaskSpec, class_counts
from pipeline.accounting import AccountingError, check_accounting, count_lines
from pipeline.cleaning import drop_exact_duplicates, find_label_conflicts, find_leakage

__all__ = ["InputError", "read_course_file", "PrepareParams", "prepare_task", "main"]

log = logging.getLogger(__name__)
OUT_DIR = CLEAN_DIR


@dataclass(frozen=True)
class PrepareParams:
    raw_dir: str
    normalize_whitespace: bool
    unescape_treebank: bool
    quarantine_empty: bool
    deduplicate: bool
    quarantine_label_conflicts: bool
    remove_leakage: bool
    max_chars: int
    max_quarantined_share: float  # a file losing more of its rows to quarantine stops the stage


@dataclass
class PreparedTask:
    tables: dict[str, pd.DataFrame]  # split -> clean table
    quarantine: pd.DataFrame
    removed: pd.DataFrame  # duplicates and leaked training rows
    summary: dict[str, dict]  # file name -> counts


def _read_split(spec: TaskSpec, split: str, params: PrepareParams) -> CourseTable:
    path = Path(params.raw_dir) / spec.files[split]
    return read_course_table(
        path, spec.name, labeled=split != "test", split=split,
        whitespace=params.normalize_whitespace, treebank=params.unescape_treebank,
        quarantine_empty=params.quarantine_empty, max_chars=params.max_chars,
    )


def clean_train(train: pd.DataFrame, others: dict[str, pd.DataFrame], spec: TaskSpec,
                params: PrepareParams) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Apply the training-set rules in order: label conflicts, duplicates, leakage.

    Returns (kept, conflicts, removed) where removed holds duplicates and leaked rows with
    `reason` and `detail`.
    """
    conflicts = train.iloc[0:0]
    if params.quarantine_label_conflicts:
        train, conflicts = find_label_conflicts(train, spec)
    removed = []
    if params.deduplicate:
        train, dups = drop_exact_duplicates(train, spec)
        removed.append(
            dups.assign(reason="duplicate", detail=[f"same as {i}" for i in dups["kept_id"]])
        )
    if params.remove_leakage:
        train, leaked = find_leakage(train, others, spec)
        removed.append(
            leaked.assign(reason="leakage", detail=[f"also in {s}" for s in leaked["leaked_into"]])
        )
    columns = [*spec.columns(), "reason", "detail"]
    removed_df = pd.concat([r[columns] for r in removed]) if removed else pd.DataFrame(
        columns=columns)
    return train, conflicts, removed_df


def _conflicts_to_quarantine(conflicts: pd.DataFrame, spec: TaskSpec) -> pd.DataFrame:
    raw = [
        "\t".join([row["id"], *(row[c] for c in spec.text_columns), str(row["label"])])
        for _, row in conflicts.iterrows()
    ]
    return pd.DataFrame({
        "task": spec.name, "split": "train", "file": spec.files["train"],
        "line": conflicts.index.to_numpy(),
        "id": conflicts["id"], "label": conflicts["label"].astype(float),
        "reason": "label_conflict", "detail": "same text appears with another label",
        "raw": raw,
    }, index=conflicts.index, columns=QUARANTINE_COLUMNS)


def prepare_task(spec: TaskSpec, params: PrepareParams) -> PreparedTask:
    """Read, clean and account for every split of one task."""
    tables, quarantined, reads = {}, {}, {}
    for split in spec.files:
        reads[split] = _read_split(spec, split, params)
        tables[split], quarantined[split] = reads[split].rows, reads[split].quarantine
    raw_train = tables["train"]
    others = {s: t for s, t in tables.items() if s != "train"}
    tables["train"], conflicts, removed = clean_train(raw_train, others, spec, params)
    quarantined["train"] = pd.concat(
        [quarantined["train"], _conflicts_to_quarantine(conflicts, spec)], ignore_index=True
    )
    summary = {}
    for split, table in tables.items():
        q = quarantined[split]
        gone = removed if split == "train" else removed.iloc[0:0]
        lines, _ = count_lines(Path(params.raw_dir) / spec.files[split])
        summary[spec.files[split]] = _file_summary(spec, split, table, q, gone)
        blank = reads[split].blank_lines
        summary[spec.files[split]].update(lines=lines, blank_lines=blank, rows_in=lines - blank,
                                          controls_removed=reads[split].controls_removed)
    quarantine = pd.concat(quarantined.values(), ignore_index=True)
    removed = removed.assign(task=spec.name, split="train", file=spec.files["train"])
    return PreparedTask(tables=tables, quarantine=quarantine, removed=removed, summary=summary)


def _file_summary(spec, split, kept, quarantined, removed) -> dict:
    reasons = quarantined["reason"].value_counts().to_dict()
    counts = {
        "task": spec.name,
        "split": split,
        "kept": len(kept),
        "quarantined": {str(k): int(v) for k, v in sorted(reasons.items())},
        "quarantined_total": len(quarantined),
        "deduplicated": int((removed["reason"] == "duplicate").sum()),
        "leaked": int((removed["reason"] == "leakage").sum()),
    }
    if split != "test":
        raw_labels = pd.concat([kept["label"], removed["label"], quarantined["label"].dropna()])
        counts["class_counts_raw"] = class_counts(spec.name, raw_labels)
        counts["class_counts_clean"] = class_counts(spec.name, kept["label"])
    return counts


def check_quarantined_share(summary: dict[str, dict], params: PrepareParams) -> None:
    """InputError naming the file and its main reasons when too many of its rows are bad."""
    for name, c in summary.items():
        share = c["quarantined_total"] / max(c["rows_in"], 1)
        if share > params.max_quarantined_share:
            reasons = sorted(c["quarantined"].items(), key=lambda kv: -kv[1])[:3]
            raise InputError(
                f"{Path(params.raw_dir) / name}: {c['quarantined_total']} of {c['rows_in']} rows "
                f"quarantined ({share:.0%}, more than prepare.max_quarantined_share = "
                f"{params.max_quarantined_share:.0%}); main reasons: "
                f"{', '.join(f'{r} {n}' for r, n in reasons)}. Is it the right file? (to see "
                "the rows, raise the share and read data/clean/quarantine.parquet)")


def write_outputs(results: dict[str, PreparedTask], tmp: Path) -> None:
    """Write every output under `tmp` (the staging dir of the output transaction)."""
    for task, result in results.items():
        (tmp / task).mkdir(parents=True)
        for split, table in result.tables.items():
            table.to_parquet(tmp / task / f"{split}.parquet", index=False)
    pd.concat([r.quarantine for r in results.values()], ignore_index=True).to_parquet(
        tmp / "quarantine.parquet", index=False)
    pd.concat([r.removed for r in results.values()], ignore_index=True).astype(
        {"label": float}).to_parquet(tmp / "removed.parquet", index=False)
    summary = {"files": {k: v for r in results.values() for k, v in r.summary.items()}}
    (tmp / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")


def run(params: PrepareParams, out_dir: Path = OUT_DIR) -> dict[str, PreparedTask]:
    results = {}
    for name, spec in TASKS.items():
        results[name] = prepare_task(spec, params)
        check_quarantined_share(results[name].summary, params)
        for file, c in results[name].summary.items():
            log.info("%-26s in %6d  kept %6d  quarantined %4d  dedup %4d  leaked %4d", file,
                     c["rows_in"], c["kept"], c["quarantined_total"], c["deduplicated"],
                     c["leaked"])
    with StageOutputs() as outputs:  # a failure below leaves the previous outputs in place
        staging = outputs.stage(out_dir)
        write_outputs(results, staging)
        check_accounting(Path(params.raw_dir), staging)
    return results


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    params = load_section("prepare", PrepareParams)
    log.info("params: %s", asdict(params))
    try:
        run(params)
    except (InputError, AccountingError, OSError) as e:  # OSError: e.g. OutputError, disk full
        log.error("%s", e)
        sys.exit(1)


if __name__ == "__main__":
    main()
