"""Read the CS224N course CSV files into clean-schema tables, quarantining bad rows.

The course files are tab-separated, UTF-8, with a header, a leading unnamed index column and
CSV-style quoting. `ids-sst-test-student.csv` has an odd header (`0<TAB><TAB>id<TAB>sentence`)
and an extra float column: columns are therefore found by name, never by position.

This is the one reading layer of the product (`prepare` and `predict` use it):

- A file that cannot be read as a course file raises `InputError`, one line naming the file,
  what it looks like and what is expected: missing, empty, header only, compressed, binary,
  UTF-16, CR-only line endings, another delimiter, a missing column. A UTF-8 byte-order mark
  is not a problem: it is dropped.
- Every physical line after the header is one record (no field spans lines, so a stray quote,
  like Quora row 65479's, cannot swallow the lines after it). A truly empty line is counted as
  blank; every other line is a row or goes to the quarantine table with the file, its line
  number, the raw text and a reason. A row-level problem never raises.

Text that is not text: control characters are removed from every text field after the
normalization (which already turns the whitespace ones, such as a bare carriage return, into
spaces; the real course files hold three rows with a stray DEL or U+0012 inside a word), and
`CourseTable.controls_removed` counts the rows changed; a field with no visible character left
is quarantined (`empty_text`). The validate stage asserts the same two patterns,
`CONTROL_CHARACTERS` and `NO_VISIBLE_TEXT`, on every table.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from minbert.tasks import TASKS, TaskSpec
from minbert.text import normalize_text

log = logging.getLogger(__name__)

QUARANTINE_COLUMNS = [
    "task", "split", "file", "line", "id", "label", "reason", "detail", "raw",
]
# Every C0/C1 control character but the tab (plain ASCII escapes: Great Expectations reads these
# patterns too). Whitespace normalization turns the whitespace ones (CR, VT, FF, ...) into spaces.
CONTROL_CHARACTERS = r"[\x00-\x08\x0a-\x1f\x7f-\x9f]"
# Text made only of whitespace and invisible format characters (soft hyphen, zero-width
# space/joiners, direction marks, word joiner, byte-order mark ...).
NO_VISIBLE_TEXT = (r"^[\s\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f"
                   r"\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0]*$")
# Replacement character, or bytes kept as surrogates by a surrogateescape decode: text that
# was not valid UTF-8. Written with escapes so the suite itself stays plain ASCII.
UNDECODABLE = r"[\ufffd\udc80-\udcff]"
_CONTROL_RE = re.compile(CONTROL_CHARACTERS)
_NO_VISIBLE_RE = re.compile(NO_VISIBLE_TEXT)

# Leading bytes of files people save by mistake under a .csv name.
SIGNATURES = {
    b"\x1f\x8b": "a gzip-compressed file (decompress it first: gunzip)",
    b"PK\x03\x04": "a zip archive, e.g. an .xlsx workbook (export it as tab-separated text)",
    b"BZh": "a bzip2-compressed file (decompress it first: bunzip2)",
    b"\xfd7zXZ\x00": "an xz-compressed file (decompress it first: unxz)",
    b"\x28\xb5\x2f\xfd": "a zstd-compressed file (decompress it first: unzstd)",
    b"PAR1": "a parquet table (the course files are tab-separated text)",
    b"\xd0\xcf\x11\xe0": "an old Excel workbook (export it as tab-separated text)",
}
UTF8_BOM = b"\xef\xbb\xbf"
EXPECTED = "expected tab-separated UTF-8 text with a header line, like the course files"


class InputError(ValueError):
    """A raw file that cannot be read at all (the message names the file and the problem)."""


@dataclass
class CourseTable:
    """One course file read: its rows, its quarantined rows and its truly empty lines."""

    rows: pd.DataFrame  # clean schema, indexed by file line
    quarantine: pd.DataFrame  # QUARANTINE_COLUMNS
    blank_lines: int  # empty lines after the header (not records)
    controls_removed: int  # rows kept after control characters were removed from their text


def read_text(path: Path) -> str:
    """File contents as text; bytes that are not UTF-8 are kept as surrogates (quarantined later).

    Raises InputError for a file that is not tab-separated UTF-8 text at all.
    """
    if not path.exists():
        raise InputError(f"{path}: file not found")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, expected a tab-separated file")
    data = path.read_bytes()
    if not data.strip():
        raise InputError(f"{path}: file is empty (expected a header line and rows)")
    check_looks_like_text(data, path)
    if data.startswith(UTF8_BOM):
        log.info("%s: UTF-8 byte-order mark ignored", path)
        data = data[len(UTF8_BOM):]
    return data.decode("utf-8", errors="surrogateescape")


def check_looks_like_text(data: bytes, path: Path) -> None:
    """InputError saying what the file looks like, unless it looks like UTF-8 text lines."""
    for signature, what in SIGNATURES.items():
        if data.startswith(signature):
            raise InputError(f"{path}: looks like {what}; {EXPECTED}")
    head = data[:65536]
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or _looks_utf16(head):
        raise InputError(f"{path}: is UTF-16 text (what spreadsheet tools save as 'Unicode "
                         "text'); expected UTF-8: convert it, e.g. iconv -f UTF-16 -t UTF-8")
    binary = sum(1 for b in head if b < 32 and b not in b"\t\n\r\x0b\x0c") + \
        head.decode("utf-8", "replace").count("\ufffd")
    if b"\x00" in head.split(b"\n", 1)[0] or binary > 0.1 * len(head):
        raise InputError(f"{path}: looks like a binary file ({binary} of its first {len(head)} "
                         f"bytes are not text); {EXPECTED}")
    if b"\n" not in data and b"\r" in data:
        raise InputError(f"{path}: lines end with a bare carriage return (CR, old Mac style); "
                         "expected LF or CRLF line endings (convert it, e.g. tr '\\r' '\\n')")


def _looks_utf16(head: bytes) -> bool:
    """UTF-16 without a byte-order mark: most of the even or odd bytes are zero."""
    sample = head[:4096]
    half = max(len(sample) // 2, 1)
    return max(sample[0::2].count(0), sample[1::2].count(0)) > 0.4 * half


def physical_lines(text: str) -> list[str]:
    """Lines split at LF (the CR of a CRLF ending removed); the final line break ends a line."""
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()  # the line break after the last line
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def split_fields(line: str) -> list[str]:
    """Tab-separated fields of one line, quoting read like `csv.reader` (default dialect).

    Unlike the csv module this never raises: no field-size limit, and a carriage return
    inside a field stays part of the field. An unclosed quote runs to the end of the line.
    """
    if '"' not in line:
        return line.split("\t")
    fields, field, quoted, at_start, i = [], [], False, True, 0
    while i < len(line):
        char = line[i]
        if quoted and char == '"':
            if line[i + 1:i + 2] == '"':  # a doubled quote is one literal quote
                field.append('"')
                i += 1
            else:
                quoted = False  # what follows up to the next tab is kept as written
        elif quoted or char not in '\t"' or not at_start and char == '"':
            field.append(char)
        elif char == "\t":
            fields.append("".join(field))
            field, at_start, i = [], True, i + 1
            continue
        else:  # a quote opening a field
            quoted = True
        at_start = False
        i += 1
    fields.append("".join(field))
    return fields


DELIMITERS = {",": "commas", ";": "semicolons", "|": "vertical bars"}


def locate_columns(header: list[str], spec: TaskSpec, labeled: bool, path: Path) -> dict:
    """Index of every needed column in the header, or InputError naming what is missing."""
    names = [h.strip() for h in header]
    needed = ["id", *spec.text_columns] + ([spec.raw_label_column] if labeled else [])
    if len(names) == 1:
        for delimiter, word in DELIMITERS.items():
            if delimiter in names[0]:
                raise InputError(
                    f"{path}: line 1: header is not tab-separated (found {word}: "
                    f"{names[0][:80]!r}); expected tabs between the columns, like the course "
                    f"files ({', '.join(needed)})")
    missing = [c for c in needed if c not in names]
    if missing:
        raise InputError(
            f"{path}: line 1: missing column(s) {missing}; found {[n for n in names if n]} "
            f"(expected a tab-separated header naming {', '.join(needed)})"
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


def text_problem(text: str, column: str, opts: dict) -> tuple[str | None, str]:
    """(reason, detail) when a normalized text field must be quarantined, else (None, "")."""
    if opts["quarantine_empty"] and _NO_VISIBLE_RE.match(text):
        return "empty_text", f"{column} is empty or has no visible character"
    if len(text) > opts["max_chars"]:
        return "too_long", f"{column} has {len(text)} characters (max {opts['max_chars']})"
    return None, ""


def parse_row(fields, columns, spec, labeled, opts) -> tuple[dict | None, str | None, str]:
    """(record, None, "") for a good row, or (None, reason, detail) for a quarantined one."""
    if len(fields) != opts["n_columns"]:
        return None, "malformed_row", f"{len(fields)} fields, header has {opts['n_columns']}"
    if any(_has_bad_bytes(f) for f in fields):
        return None, "invalid_utf8", "bytes that are not UTF-8 (or U+FFFD from a bad decode)"
    record = {"id": fields[columns["id"]].strip()}
    if not record["id"]:
        return None, "missing_id", "empty id field"
    for col in spec.text_columns:
        text = normalize_text(
            fields[columns[col]], whitespace=opts["whitespace"], treebank=opts["treebank"]
        )
        if _CONTROL_RE.search(text):
            text = _CONTROL_RE.sub("", text)
            record["controls_removed"] = True
        reason, detail = text_problem(text, col, opts)
        if reason:
            return None, reason, detail
        record[col] = text
    if labeled:
        raw_label = fields[columns[spec.raw_label_column]]
        label, reason = parse_label(raw_label, spec)
        if reason:
            return None, reason, f"{spec.raw_label_column}={raw_label.strip()!r}"
        record["label"] = label
    return record, None, ""


def _has_bad_bytes(text: str) -> bool:
    return "\ufffd" in text or any("\udc80" <= ch <= "\udcff" for ch in text)


def read_course_table(
    path: str | Path,
    task: str,
    labeled: bool,
    *,
    split: str = "",
    whitespace: bool = True,
    treebank: bool = True,
    quarantine_empty: bool = True,
    max_chars: int = 2000,
) -> CourseTable:
    """Parse one course file: rows in the clean schema (indexed by their line number in the
    file), quarantined rows with reasons, and the number of truly empty lines."""
    path = Path(path)
    spec = TASKS[task]
    lines = physical_lines(read_text(path))
    header = split_fields(lines[0])
    columns = locate_columns(header, spec, labeled, path)
    opts = dict(
        n_columns=len(header), whitespace=whitespace, treebank=treebank,
        quarantine_empty=quarantine_empty, max_chars=max_chars,
    )
    rows, bad, seen_ids, lines_of_rows, blank = [], [], set(), [], 0
    for line_no, raw in enumerate(lines[1:], start=2):
        if not raw:
            blank += 1  # an empty line is not a record
            continue
        fields = split_fields(raw)
        if not raw.strip():
            record, reason, detail = None, "whitespace_line", "line has only spaces or tabs"
        else:
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
    controls = sum(1 for r in rows if r.pop("controls_removed", False))
    frame = _rows_frame(rows, spec, labeled)
    frame.index = pd.Index(lines_of_rows, name="line")  # the file line of every row
    return CourseTable(frame, pd.DataFrame(bad, columns=QUARANTINE_COLUMNS), blank, controls)


def read_course_file(path: str | Path, task: str, labeled: bool,
                     **options) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows, quarantined rows) of one course file; see `read_course_table` for the options."""
    table = read_course_table(path, task, labeled, **options)
    return table.rows, table.quarantine


def header_names(path: str | Path) -> list[str]:
    """Column names of a course file's header (InputError if the file is not readable)."""
    return [name.strip() for name in split_fields(physical_lines(read_text(Path(path)))[0])]


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
        "raw": _printable(raw),
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
