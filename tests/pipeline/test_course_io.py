"""Parsing of the course files: every row kept or quarantined with its reason."""

import pytest

from pipeline.course_io import InputError, parse_label, read_course_file
from pipeline.tasks import TASKS

SST_HEADER = "\tid\tsentence\tsentiment\n"
QUORA_HEADER = "\tid\tsentence1\tsentence2\tis_duplicate\n"


def write(tmp_path, text, name="f.csv", encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return path


def test_reads_sst_rows_with_normalized_text(tmp_path):
    path = write(tmp_path, SST_HEADER + "0\ta1\t -LRB- Good -RRB-  film .\t3\n1\ta2\t Bad .\t0\n")
    rows, bad = read_course_file(path, "sst", labeled=True)
    assert rows["sentence"].tolist() == ["( Good ) film .", "Bad ."]
    assert rows["label"].tolist() == [3, 0] and str(rows["label"].dtype) == "int64"
    assert rows.index.tolist() == [2, 3]  # line numbers
    assert bad.empty


def test_test_student_header_is_found_by_name(tmp_path):
    path = write(tmp_path, "0\t\tid\tsentence\n1\t0.0\tb75\t Effective biopic\n")
    rows, bad = read_course_file(path, "sst", labeled=False)
    assert rows.columns.tolist() == ["id", "sentence"]
    assert rows.iloc[0].tolist() == ["b75", "Effective biopic"]


def test_quora_float_labels_become_ints_and_missing_label_is_quarantined(tmp_path):
    path = write(tmp_path, QUORA_HEADER + '1\tq1\tA?\tB?\t1.0\n65479\tq2\tC?\t"""D?"\t\n')
    rows, bad = read_course_file(path, "para", labeled=True, split="train")
    assert rows["label"].tolist() == [1]
    assert bad["reason"].tolist() == ["missing_label"]
    assert bad["line"].tolist() == [3] and bad["raw"].iloc[0].startswith("65479\tq2")


@pytest.mark.parametrize(
    "value,reason",
    [("", "missing_label"), ("abc", "invalid_label"), ("7", "label_out_of_range"),
     ("2.5", "invalid_label"), ("-1", "label_out_of_range"), ("nan", "invalid_label")],
)
def test_bad_sst_labels(value, reason):
    assert parse_label(value, TASKS["sst"]) == (None, reason)


def test_sts_labels_are_floats_in_range():
    assert parse_label("4.6", TASKS["sts"]) == (4.6, None)
    assert parse_label("5.2", TASKS["sts"]) == (None, "label_out_of_range")


@pytest.mark.parametrize(
    "body,reason",
    [("0\ta1\t   \t3\n", "empty_text"), ("0\t\t x .\t3\n", "missing_id"),
     ("0\ta1\t x .\t3\textra\n", "malformed_row"), ("0\ta1\t" + "x" * 3000 + "\t3\n", "too_long")],
)
def test_bad_rows_are_quarantined_with_reason(tmp_path, body, reason):
    path = write(tmp_path, SST_HEADER + "9\tok\t fine .\t2\n" + body)
    rows, bad = read_course_file(path, "sst", labeled=True)
    assert rows["id"].tolist() == ["ok"]
    assert bad["reason"].tolist() == [reason]


def test_non_utf8_row_is_quarantined(tmp_path):
    data = SST_HEADER.encode() + b"0\ta1\t caf\xe9 .\t3\n1\ta2\t ok .\t2\n"
    rows, bad = read_course_file(write(tmp_path, data), "sst", labeled=True)
    assert rows["id"].tolist() == ["a2"]
    assert bad["reason"].tolist() == ["invalid_utf8"] and "\\xe9" in bad["raw"].iloc[0]


def test_duplicate_ids_quarantine_later_copies(tmp_path):
    path = write(tmp_path, SST_HEADER + "0\ta1\t x .\t3\n1\ta1\t y .\t2\n")
    rows, bad = read_course_file(path, "sst", labeled=True)
    assert rows["sentence"].tolist() == ["x ."] and bad["reason"].tolist() == ["duplicate_id"]


@pytest.mark.parametrize(
    "content,message",
    [(None, "file not found"), ("", "file is empty"), (SST_HEADER, "header but no rows"),
     (",id,sentence,sentiment\n0,a,b,1\n", "not tab-separated"),
     ("\tid\ttext\tsentiment\n0\ta\tb\t1\n", r"missing column\(s\) \['sentence'\]")],
)
def test_file_level_problems_raise_input_error_naming_the_file(tmp_path, content, message):
    path = tmp_path / "ids-sst-train.csv"
    if content is not None:
        path.write_text(content)
    with pytest.raises(InputError, match=message) as err:
        read_course_file(path, "sst", labeled=True)
    assert "ids-sst-train.csv" in str(err.value)
