"""Row accounting of `prepare`, checked against an independent count of each raw file's lines.

The count reads the raw bytes, with no decoding and no csv parsing: every physical line after
the header is a record, except truly empty lines (blank). The written outputs must explain
every one of them:

    lines after the header = kept + quarantined + removed (duplicates, leakage) + blank

kept, quarantined and removed are counted in the written tables (data/clean/<task>/<split>.parquet,
quarantine.parquet, removed.parquet), blank in summary.json, and summary.json's blank count must
equal the empty lines counted here. A row lost anywhere between the raw file and the outputs,
or a line the reader skipped without a trace, makes the check fail.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from minbert.tasks import TASKS


class AccountingError(RuntimeError):
    """The outputs do not explain every line of the raw files (one line per file at fault)."""


def count_lines(path: Path) -> tuple[int, int]:
    """(physical lines after the header, how many of them are empty) in the raw bytes."""
    body = path.read_bytes().split(b"\n")[1:]
    if body and body[-1] == b"":
        body.pop()  # the line break that ends the last line
    return len(body), sum(1 for line in body if line in (b"", b"\r"))


def _rows_per_file(path: Path) -> pd.Series:
    return pd.read_parquet(path, columns=["file"])["file"].value_counts()


def audit(raw_dir: Path, out_dir: Path) -> list[str]:
    """One problem per course file whose lines the outputs in `out_dir` do not explain."""
    summary = json.loads((out_dir / "summary.json").read_text(encoding="utf-8"))["files"]
    quarantined = _rows_per_file(out_dir / "quarantine.parquet")
    removed = _rows_per_file(out_dir / "removed.parquet")
    problems = []
    for task, spec in TASKS.items():
        for split, name in spec.files.items():
            lines, empty = count_lines(Path(raw_dir) / name)
            kept = pq.read_metadata(out_dir / task / f"{split}.parquet").num_rows
            q, r = int(quarantined.get(name, 0)), int(removed.get(name, 0))
            blank = summary.get(name, {}).get("blank_lines", 0)
            if kept + q + r + blank != lines:
                problems.append(
                    f"{name}: {lines} lines after the header, but the outputs account for "
                    f"{kept + q + r + blank} ({kept} kept + {q} quarantined + {r} removed + "
                    f"{blank} blank)")
            if blank != empty:
                problems.append(f"{name}: {empty} empty lines, summary.json says {blank}")
    return problems


def check_accounting(raw_dir: Path, out_dir: Path) -> None:
    """Raise AccountingError when `audit` finds a problem."""
    problems = audit(raw_dir, out_dir)
    if problems:
        raise AccountingError("row accounting failed: " + "; ".join(problems))
