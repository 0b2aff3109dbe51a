"""Read the CS224N course CSV files into clean-schema tables, quarantining bad rows.

The course files are tab-separated, UTF-8, with a header, a leading unnamed index column and
CSV-style quoting. `ids-sst-test-student.csv` has an odd header (`0<TAB><TAB>id<TAB>sentence`)
and an extra float column: columns are therefore found by name, never by position.

A file-level problem (missing, empty, header only, wrong delimiter, missing column) raises
`InputError` naming the file. A row-level problem never raises: the row goes to the quarantine
table with the file, its line number, the raw text and a reason.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pandas as pd

from pipeline.tasks import TASKS, TaskSpec
from pipeline.text import normalize_text

QUARANTINE_COLUMNS = [
    "task", "split", "file", "line", "id", "label", "reason", "detail", "raw",
]


class InputError(ValueError):
    """A raw file that cannot be read at all (the message names the file and the problem)."""


def read_text(path: Path) -> str:
    """File contents; bytes that are not UTF-8 are kept as surrogates and quarantined later."""
    if not path.exists():
        raise InputError(f"{path}: file not found")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, expected a tab-separated file")
    data = path.read_bytes()
    if not data.strip():
        raise InputError(f"{path}: file is empty (expected a header line and rows)")
    return data.decode("utf-8", errors="surrogateescape")


def locate_columns(header: list[str], spec: TaskSpec, labeled: bool, path: Path) -> dict:
    """Index of every needed column in the header, or InputError naming what is missing."""
    names = [h.strip() for h in header]
    if len(names) == 1 and "," in names[0]:
        raise InputError(
            f"{path}: line 1: header is not tab-separated (found commas: {names[0][:80]!r}); "
            "the course files use tabs between columns"
        )
    needed = ["id", *spec.text_columns] + ([spec.raw_label_column] if labeled else [])
    missing = [c for c in needed if c not in names]
    if missing:
        raise InputError(
            f"{path}: line 1: missing column(s) {missing}; found {[n for n in names if n]}"
        )
    return {c: names.index(c) for c in needed}


def parse_label(value: str, spec: TaskSpec) -> tuple[float | int | None, str | None]:
    """(label, None) or (None, reason) for one raw label field."""
    value = value.strip()
    if not value:
        return None, "missing_label"
    try:
        number = float(value)
    except ValueError:
        return None, "invalid_label"
    if math.isnan(number) or math.isinf(number):
        return None, "invalid_label"
    if spec.label_kind == "int":
        if number != int(number):
            return None, "invalid_label"
        number = int(number)
    if not spec.label_min <= number <= spec.label_max:
        return None, "label_out_of_range"
    return number, None


def parse_row(fields, columns, spec, labeled, opts) -> tuple[dict | None, str | None, str]:
    """(record, None, "") for a good row, or (None, reason, detail) for a quarantined one."""
    if len(fields) != opts["n_columns"]:
        return None, "malformed_row", f"{len(fields)} fields, header has {opts['n_columns']}"
    if any(_has_bad_bytes(f) for f in fields):
        return None, "invalid_utf8", "bytes that are not UTF-8"
    record = {"id": fields[columns["id"]].strip()}
    if not record["id"]:
        return None, "missing_id", "empty id field"
    for col in spec.text_columns:
        text = normalize_text(
            fields[columns[col]], whitespace=opts["whitespace"], treebank=opts["treebank"]
        )
        if not text.strip():
            if opts["quarantine_empty"]:
                return None, "empty_text", f"{col} is empty"
        if len(text) > opts["max_chars"]:
            return None, "too_long", f"{col} has {len(text)} characters (max {opts['max_chars']})"
        record[col] = text
    if labeled:
        raw_label = fields[columns[spec.raw_label_column]]
        label, reason = parse_label(raw_label, spec)
        if reason:
            return None, reason, f"{spec.raw_label_column}={raw_label.strip()!r}"
        record["label"] = label
    return record, None, ""


def _has_bad_bytes(text: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in text)


def read_course_file(
    path: str | Path,
    task: str,
    labeled: bool,
    *,
    split: str = "",
    whitespace: bool = True,
    treebank: bool = True,
    quarantine_empty: bool = True,
    max_chars: int = 2000,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Parse one course file: (rows in the clean schema, quarantined rows with reasons).

    The returned rows are indexed by their line number in the file.
    """
    path = Path(path)
    spec = TASKS[task]
    lines = read_text(path).split("\n")
    # One record per physical line: the course files have no field spanning lines, and a stray
    # quote (like Quora row 65479) must not swallow the lines after it.
    header = next(csv.reader([lines[0].rstrip("\r")], delimiter="\t"))
    columns = locate_columns(header, spec, labeled, path)
    opts = dict(
        n_columns=len(header), whitespace=whitespace, treebank=treebank,
        quarantine_empty=quarantine_empty, max_chars=max_chars,
    )
    rows, bad, seen_ids, lines_of_rows = [], [], set(), []
    for line_no, raw in enumerate(lines[1:], start=2):
        raw = raw.rstrip("\r")
        if not raw.strip():
            continue  # a blank line (e.g. the final newline) is not a row
        fields = next(csv.reader([raw], delimiter="\t"))
        record, reason, detail = parse_row(fields, columns, spec, labeled, opts)
        if record is not None and record["id"] in seen_ids:
            record, reason, detail = None, "duplicate_id", f"id {record['id']} seen earlier"
        if record is None:
            bad.append(_quarantine_record(spec, split, path, line_no, fields, columns,
                                          reason, detail, raw))
            continue
        seen_ids.add(record["id"])
        rows.append(record)
        lines_of_rows.append(line_no)
    if not rows and not bad:
        raise InputError(f"{path}: has a header but no rows")
    frame = _rows_frame(rows, spec, labeled)
    frame.index = pd.Index(lines_of_rows, name="line")  # the file line of every row
    return frame, pd.DataFrame(bad, columns=QUARANTINE_COLUMNS)


def _quarantine_record(spec, split, path, line, fields, columns, reason, detail, raw) -> dict:
    def field(name: str) -> str:
        idx = columns.get(name)
        return fields[idx] if idx is not None and idx < len(fields) else ""

    label, _ = parse_label(field(spec.raw_label_column), spec)  # kept for the raw class counts
    return {
        "task": spec.name, "split": split, "file": path.name, "line": line,
        "id": _printable(field("id").strip()),
        "label": None if label is None else float(label),
        "reason": reason, "detail": detail,
        "raw": _printable(raw.rstrip("\n")),
    }


def _printable(text: str) -> str:
    """Text with the original non-UTF-8 bytes shown as \\xNN escapes."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _rows_frame(rows: list[dict], spec: TaskSpec, labeled: bool) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=spec.columns(labeled))
    for col in ("id", *spec.text_columns):
        frame[col] = frame[col].astype(str)
    if labeled:
        frame["label"] = frame["label"].astype("int64" if spec.label_kind == "int" else "float64")
    return frame
