"""The bad-input matrix: every broken input ends in a clear error or a row with a reason.

`prepare` runs on a copy of tiny course files with one corruption each; every input row must be
kept, quarantined (with the expected reason and line), deduplicated or reported as leaked.
`validate` runs on tiny clean / training tables with one corruption each; it never drops rows:
it fails the named expectation and counts exactly the broken rows.
"""

import gzip
import json
import os
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from minbert.params import load_section
from pipeline import prepare
from pipeline import validate as stage
from tests.course_data import write_course_files
from tests.pipeline.validate_data import dirs_for, write_tables

ROOT = Path(__file__).resolve().parents[2]
QUORA_ROW_65479 = (ROOT / "tests/fixtures/validate/quora-train-row-65479.tsv").read_bytes()
SST_TRAIN = "ids-sst-train.csv"


# --- prepare ----------------------------------------------------------------------------------

def rows_of(raw: Path, name: str) -> list[bytes]:
    return (raw / name).read_bytes().split(b"\n")


def write_rows(raw: Path, name: str, lines: list[bytes]) -> None:
    (raw / name).write_bytes(b"\n".join(lines))


def set_field(raw: Path, name: str, row: int, column: int, value: bytes) -> None:
    """Replace field `column` of data row `row` (0-based, after the header)."""
    lines = rows_of(raw, name)
    fields = lines[row + 1].split(b"\t")
    fields[column] = value
    lines[row + 1] = b"\t".join(fields)
    write_rows(raw, name, lines)


def data_rows(raw: Path, name: str) -> int:
    """Rows in a course file: its lines after the header that are not empty (a line of spaces
    or tabs is a row, quarantined with its reason)."""
    return sum(1 for line in rows_of(raw, name)[1:] if line not in (b"", b"\r"))


def run_prepare(raw: Path, out: Path) -> dict:
    params = load_section("prepare", prepare.PrepareParams, ROOT / "params.yaml")
    prepare.run(replace(params, raw_dir=str(raw)), out)
    return json.loads((out / "summary.json").read_text())["files"]


def drop_column(raw, name, column):
    lines = [b"\t".join(f for i, f in enumerate(line.split(b"\t")) if i != column) if line else line
             for line in rows_of(raw, name)]
    write_rows(raw, name, lines)


FILE_ERRORS = {
    "missing file": (lambda raw: (raw / "ids-sst-dev.csv").unlink(),
                     "ids-sst-dev.csv: file not found"),
    "empty file": (lambda raw: (raw / SST_TRAIN).write_bytes(b""),
                   f"{SST_TRAIN}: file is empty"),
    "header only": (lambda raw: write_rows(raw, SST_TRAIN, rows_of(raw, SST_TRAIN)[:1]),
                    f"{SST_TRAIN}: has a header but no rows"),
    "missing column": (lambda raw: drop_column(raw, SST_TRAIN, 3),
                       f"{SST_TRAIN}: line 1: missing column(s) ['sentiment']"),
    "wrong delimiter (comma)": (
        lambda raw: (raw / SST_TRAIN).write_bytes((raw / SST_TRAIN).read_bytes().replace(
            b"\t", b",")),
        f"{SST_TRAIN}: line 1: header is not tab-separated"),
    "wrong delimiter (semicolon)": (
        lambda raw: recode(raw, SST_TRAIN, lambda d: d.replace(b"\t", b";")),
        f"{SST_TRAIN}: line 1: header is not tab-separated (found semicolons"),
    "UTF-16 (spreadsheet 'Unicode text')": (
        lambda raw: recode(raw, SST_TRAIN, lambda d: d.decode().encode("utf-16")),
        f"{SST_TRAIN}: is UTF-16 text"),
    "compressed file": (lambda raw: recode(raw, SST_TRAIN, gzip.compress),
                        f"{SST_TRAIN}: looks like a gzip-compressed file"),
    "binary file named .csv": (lambda raw: recode(raw, SST_TRAIN, lambda d: os.urandom(4096)),
                               f"{SST_TRAIN}: looks like a binary file"),
    "CR-only line endings": (lambda raw: recode(raw, SST_TRAIN, lambda d: d.replace(b"\n", b"\r")),
                             f"{SST_TRAIN}: lines end with a bare carriage return"),
    "every dev row malformed": (
        lambda raw: recode(raw, "ids-sst-dev.csv", lambda d: d.replace(b" .\t", b" .\t\t")),
        "ids-sst-dev.csv: 10 of 10 rows quarantined (100%, more than "
        "prepare.max_quarantined_share = 10%); main reasons: malformed_row 10"),
}


def recode(raw: Path, name: str, change) -> None:
    (raw / name).write_bytes(change((raw / name).read_bytes()))


@pytest.mark.parametrize("case", FILE_ERRORS)
def test_prepare_file_level_problem_is_a_clear_error(case, tmp_path):
    corrupt, message = FILE_ERRORS[case]
    raw = write_course_files(tmp_path / "raw")
    corrupt(raw)
    with pytest.raises(prepare.InputError) as err:
        run_prepare(raw, tmp_path / "clean")
    assert message in str(err.value) and str(raw) in str(err.value)
    assert not (tmp_path / "clean").exists()  # nothing half-written


def extra_column(raw):
    lines = rows_of(raw, SST_TRAIN)
    write_rows(raw, SST_TRAIN, [line + (b"\tsource" if i == 0 else b"\tweb") if line else line
                                for i, line in enumerate(lines)])


def append_row(raw, name, row: bytes):
    lines = [line for line in rows_of(raw, name) if line]
    write_rows(raw, name, [*lines, row.rstrip(b"\n"), b""])


def unterminated_quote(raw):
    lines = rows_of(raw, SST_TRAIN)
    fields = lines[3].split(b"\t")
    fields[2] = b'"' + fields[2]  # opening quote, never closed
    lines[3] = b"\t".join(fields)
    write_rows(raw, SST_TRAIN, lines)


def add_line(raw, name, row: int, line: bytes):
    lines = rows_of(raw, name)
    write_rows(raw, name, [*lines[:row + 1], line, *lines[row + 1:]])


def duplicate_id(raw):
    first_id = rows_of(raw, SST_TRAIN)[1].split(b"\t")[1]
    set_field(raw, SST_TRAIN, 4, 1, first_id)


# case: (corrupt, file, reason or None, line of the quarantined row)
ROW_CASES = {
    "extra column": (extra_column, SST_TRAIN, None, None),
    "label out of range": (lambda raw: set_field(raw, SST_TRAIN, 2, 3, b"7"), SST_TRAIN,
                           "label_out_of_range", 4),
    "non-numeric label": (lambda raw: set_field(raw, SST_TRAIN, 2, 3, b"positive"), SST_TRAIN,
                          "invalid_label", 4),
    "empty sentence": (lambda raw: set_field(raw, SST_TRAIN, 5, 2, b""), SST_TRAIN,
                       "empty_text", 7),
    "whitespace-only sentence": (lambda raw: set_field(raw, SST_TRAIN, 5, 2, b" \xc2\xa0  "),
                                 SST_TRAIN, "empty_text", 7),
    "broken quoting (real Quora row 65479)": (
        lambda raw: append_row(raw, "quora-train.csv", QUORA_ROW_65479), "quora-train.csv",
        "missing_label", 14),
    "unterminated quote": (unterminated_quote, SST_TRAIN, "malformed_row", 4),
    "non-UTF-8 bytes": (lambda raw: set_field(raw, SST_TRAIN, 8, 2, b" caf\xe9 noir ."),
                        SST_TRAIN, "invalid_utf8", 10),
    "duplicate ids": (duplicate_id, SST_TRAIN, "duplicate_id", 6),
    "10,000-character sentence": (lambda raw: set_field(raw, SST_TRAIN, 9, 2, b"x" * 10_000),
                                  SST_TRAIN, "too_long", 11),
    "field longer than the csv module's limit": (
        lambda raw: set_field(raw, SST_TRAIN, 9, 2, b"word " * 30_000), SST_TRAIN, "too_long", 11),
    "bare carriage return inside a field (whitespace)": (
        lambda raw: set_field(raw, SST_TRAIN, 3, 2, b" Good\rfilm ."), SST_TRAIN, None, None),
    "control characters inside a word (removed)": (
        lambda raw: set_field(raw, SST_TRAIN, 3, 2, b" guilt\x7f\x00 ."), SST_TRAIN, None, None),
    "byte-order mark before the header (ignored)": (
        lambda raw: recode(raw, SST_TRAIN, lambda d: b"\xef\xbb\xbf" + d), SST_TRAIN, None, None),
    "CRLF line endings": (lambda raw: recode(raw, SST_TRAIN, lambda d: d.replace(b"\n", b"\r\n")),
                          SST_TRAIN, None, None),
    "line of spaces": (lambda raw: add_line(raw, SST_TRAIN, 4, b"    "), SST_TRAIN,
                       "whitespace_line", 6),
    "line of tabs only (no id)": (lambda raw: add_line(raw, SST_TRAIN, 4, b"\t\t\t"), SST_TRAIN,
                                  "whitespace_line", 6),
    "sentence of zero-width characters": (
        lambda raw: set_field(raw, SST_TRAIN, 5, 2, "\u200b\u2060".encode()), SST_TRAIN,
        "empty_text", 7),
    "control characters only": (lambda raw: set_field(raw, SST_TRAIN, 5, 2, b"\x01\x02"),
                                SST_TRAIN, "empty_text", 7),
}


@pytest.mark.parametrize("case", ROW_CASES)
def test_prepare_bad_row_is_quarantined_with_its_reason(case, tmp_path):
    corrupt, name, reason, line = ROW_CASES[case]
    raw = write_course_files(tmp_path / "raw")
    corrupt(raw)
    summary = run_prepare(raw, tmp_path / "clean")[name]
    quarantine = pd.read_parquet(tmp_path / "clean/quarantine.parquet")
    quarantine = quarantine[quarantine["file"] == name]
    accounted = (summary["kept"] + summary["quarantined_total"] + summary["deduplicated"]
                 + summary["leaked"])
    assert data_rows(raw, name) == summary["rows_in"] == accounted
    if reason is None:
        assert summary["kept"] == summary["rows_in"] and quarantine.empty
    else:
        assert summary["quarantined"] == {reason: 1}
        assert quarantine[["line", "reason"]].values.tolist() == [[line, reason]]


def test_prepare_training_row_copied_into_dev_is_removed_as_leakage(tmp_path):
    raw = write_course_files(tmp_path / "raw")
    train_row = rows_of(raw, SST_TRAIN)[3].split(b"\t")
    append_row(raw, "ids-sst-dev.csv", b"\t".join([b"999", b"f" * 25, *train_row[2:]]))
    files = run_prepare(raw, tmp_path / "clean")
    train, dev = files[SST_TRAIN], files["ids-sst-dev.csv"]
    assert train["rows_in"] == data_rows(raw, SST_TRAIN) == train["kept"] + train["leaked"]
    assert train["leaked"] == 1 and train["quarantined_total"] == 0
    assert dev["rows_in"] == data_rows(raw, "ids-sst-dev.csv") == dev["kept"]
    removed = pd.read_parquet(tmp_path / "clean/removed.parquet")
    assert removed[["id", "reason", "detail"]].values.tolist() == [
        [train_row[1].decode(), "leakage", "also in dev"]]


# --- validate ---------------------------------------------------------------------------------

def edit(root: Path, table: str, change) -> None:
    path = root / f"{table}.parquet"
    change(pd.read_parquet(path)).to_parquet(path)


def set_cell(root, table, row, column, value):
    def change(df):
        if column == "label":  # room for a wrong value in the int64 column
            df = df.astype({column: object})
        df.loc[row, column] = value
        return df
    edit(root, table, change)


def copy_training_text_into_dev(root):
    text = pd.read_parquet(root / "training/sst/train.parquet").loc[2, "sentence"]
    edit(root, "clean/sst/dev", lambda df: pd.concat(
        [df, pd.DataFrame({"id": ["f" * 25], "sentence": [text], "label": [0]})],
        ignore_index=True))


def text_labels(root):
    def change(df):
        df["label"] = df["label"].astype(str)
        df.loc[3, "label"] = "positive"
        return df
    edit(root, "clean/sst/dev", change)


def strip_provenance(root):
    def change(df):
        row = df.index[df["origin"] == "synthetic"][0]
        df.loc[row, ["generator", "prompt_hash"]] = None
        return df
    edit(root, "training/sst/train", change)


def comma_table(root):
    df = pd.read_parquet(root / "clean/sst/test.parquet")
    merged = pd.DataFrame({"id,sentence": df["id"] + "," + df["sentence"]})
    merged.to_parquet(root / "clean/sst/test.parquet")


VALIDATE_ERRORS = {
    "missing file": (lambda root: (root / "clean/sst/dev.parquet").unlink(),
                     "clean/sst/dev.parquet: file not found"),
    "empty file": (lambda root: (root / "clean/sst/test.parquet").write_bytes(b""),
                   "clean/sst/test.parquet: not a readable parquet table"),
    "non-UTF-8 bytes (a file that is not parquet)": (
        lambda root: (root / "training/sst/train.parquet").write_bytes(b"\xff\xfe caf\xe9"),
        "training/sst/train.parquet: not a readable parquet table"),
}


@pytest.mark.parametrize("case", VALIDATE_ERRORS)
def test_validate_unreadable_table_is_a_clear_error(case, tmp_path):
    corrupt, message = VALIDATE_ERRORS[case]
    params = write_tables(tmp_path)
    corrupt(tmp_path)
    with pytest.raises(stage.ContractError, match=message):
        stage.validate(params, 1.0, tmp_path / "results.json", None, tasks=("sst",),
                       **dirs_for(tmp_path))


# case: (corrupt, suite, {(expectation, column): offending rows, or None for table-level})
D, T = "sst_clean_dev", "sst_training"
VALIDATE_CASES = {
    "header only": (lambda root: edit(root, "training/sst/train", lambda df: df.iloc[0:0]), T,
                    {("expect_table_row_count_to_be_between", None): None,
                     **{(f"expect_column_{m}_to_be_between", c): None for m, c in (
                         ("max", "check_class_size_ratio"), ("min", "check_class_synthetic_share"),
                         ("max", "check_class_synthetic_share"))}}),
    "missing column": (lambda root: edit(root, "clean/sst/dev", lambda df: df.drop(
        columns="label")), D, {("expect_table_columns_to_match_ordered_list", None): None,
                                ("expect_column_values_to_be_of_type", "label"): None,
                                ("expect_column_values_to_not_be_null", "label"): None,
                                ("expect_column_values_to_be_in_set", "label"): None}),
    "extra column": (lambda root: edit(root, "clean/sst/dev", lambda df: df.assign(
        source="web")), D, {("expect_table_columns_to_match_ordered_list", None): None}),
    "wrong delimiter (comma)": (comma_table, "sst_clean_test", {
        ("expect_table_columns_to_match_ordered_list", None): None,
        **{(e, c): None for c in ("id", "sentence") for e in (
            "expect_column_values_to_be_of_type", "expect_column_values_to_not_be_null")},
        ("expect_column_values_to_be_unique", "id"): None,
        ("expect_column_values_to_not_match_regex", "sentence"): None,
        ("expect_column_value_lengths_to_be_between", "sentence"): None}),
    "label out of range": (lambda root: set_cell(root, "clean/sst/dev", 3, "label", 7), D,
                           {("expect_column_values_to_be_in_set", "label"): 1}),
    # a parquet column has one type: a non-numeric label makes the whole column text
    "non-numeric label": (text_labels, D, {("expect_column_values_to_be_of_type", "label"): None,
                                           ("expect_column_values_to_be_in_set", "label"): 15}),
    "empty sentence": (lambda root: set_cell(root, "clean/sst/dev", 4, "sentence", ""), D,
                       {("expect_column_values_to_not_match_regex", "sentence"): 1,
                        ("expect_column_value_lengths_to_be_between", "sentence"): 1}),
    "whitespace-only sentence": (lambda root: set_cell(root, "clean/sst/dev", 4, "sentence",
                                                       "  \t "), D,
                                 {("expect_column_values_to_not_match_regex", "sentence"): 1}),
    "broken quoting (label lost, as in Quora row 65479)": (
        lambda root: set_cell(root, "clean/sst/dev", 5, "label", None), D,
        {("expect_column_values_to_be_of_type", "label"): None,
         ("expect_column_values_to_not_be_null", "label"): 1}),
    "control character in a sentence": (
        lambda root: set_cell(root, "clean/sst/dev", 6, "sentence", "guilt\x7f ?"), D,
        {("expect_column_values_to_not_match_regex", "sentence"): 1}),
    "sentence of zero-width characters only": (
        lambda root: set_cell(root, "clean/sst/dev", 6, "sentence", "\u200b\ufeff"), D,
        {("expect_column_values_to_not_match_regex", "sentence"): 1}),
    "non-UTF-8 bytes (decoded as U+FFFD)": (
        lambda root: set_cell(root, "clean/sst/dev", 6, "sentence", "caf\ufffd noir ."), D,
        {("expect_column_values_to_not_match_regex", "sentence"): 1}),
    "duplicate ids": (lambda root: edit(root, "clean/sst/dev", lambda df: df.assign(
        id=[df["id"][0], *df["id"][1:-1], df["id"][0]])), D,
        {("expect_column_values_to_be_unique", "id"): 2}),
    "10,000-character sentence": (lambda root: set_cell(root, "clean/sst/dev", 7, "sentence",
                                                        "y" * 10_000), D,
                                  {("expect_column_value_lengths_to_be_between", "sentence"): 1}),
    "training row copied into dev (leakage)": (copy_training_text_into_dev, T, {
        ("expect_column_values_to_be_null", "check_leaked_text"): 1}),
    "synthetic row lacking provenance": (strip_provenance, T, {
        ("expect_column_values_to_not_be_null", "generator"): 1,
        ("expect_column_values_to_not_be_null", "prompt_hash"): 1}),
    "synthetic row with an unknown source": (lambda root: set_cell(
        root, "training/sst/train", 16, "source_id", "e" * 25), T,
        {("expect_column_values_to_be_null", "check_unknown_source_id"): 1}),
}


@pytest.mark.parametrize("case", VALIDATE_CASES)
def test_validate_names_the_broken_expectation_and_counts_rows(case, tmp_path):
    corrupt, suite, expected = VALIDATE_CASES[case]
    params = write_tables(tmp_path)
    corrupt(tmp_path)
    document = stage.validate(params, 1.0, tmp_path / "results.json", None, tasks=("sst",),
                       **dirs_for(tmp_path))
    assert not document["success"]
    assert [name for name, o in document["suites"].items() if not o["success"]] == [suite]
    outcome = document["suites"][suite]
    failures = {(f["expectation"], f["column"]): f for f in outcome["failures"]}
    assert set(failures) == set(expected)
    for key, rows in expected.items():
        if rows is not None:
            assert failures[key]["rows"] == rows
            assert len(failures[key]["examples"]) == min(rows, params.examples)
    table = outcome["table"].removeprefix(str(tmp_path) + "/")
    assert outcome["rows"] == len(pd.read_parquet(tmp_path / table))  # nothing dropped
    assert suite in stage.failure_summary(document)
