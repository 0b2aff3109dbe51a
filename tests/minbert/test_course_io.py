"""Parsing of the course files: every row kept or quarantined with its reason."""

import pytest

from minbert.course_io import InputError, parse_label, read_course_file
from minbert.tasks import TASKS

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


# --- the reading layer: every csv / decoding problem is a row with a reason or one clear line --

def test_split_fields_reads_quotes_like_the_csv_module():
    import csv
    import random

    from minbert.course_io import split_fields

    rng = random.Random(0)
    lines = ["".join(rng.choice('ab"\t ') for _ in range(rng.randint(1, 14)))
             for _ in range(5000)]
    lines += ['65479\tq2\tC?\t"""D?"\t', 'a\t"b\tc"\td', 'a\t"unclosed\tx', '""\t"x""y"']
    for line in lines:
        assert split_fields(line) == next(csv.reader([line], delimiter="\t")), repr(line)


def test_split_fields_has_no_field_limit_and_keeps_a_bare_carriage_return():
    from minbert.course_io import split_fields

    assert split_fields("a\t" + "x" * 200_000 + "\tb")[1] == "x" * 200_000
    assert split_fields('a\tb\rc\t"d\re"') == ["a", "b\rc", "d\re"]


def test_field_longer_than_the_csv_limit_is_a_row_not_a_crash(tmp_path):
    long = "word " * 30_000  # 150,000 characters, more than csv's default field limit
    path = write(tmp_path, SST_HEADER + f"0\ta1\t{long}\t3\n1\ta2\t ok .\t2\n")
    rows, bad = read_course_file(path, "sst", labeled=True)
    assert rows["id"].tolist() == ["a2"] and bad["reason"].tolist() == ["too_long"]
    rows, bad = read_course_file(path, "sst", labeled=True, max_chars=10**9)
    assert rows["id"].tolist() == ["a1", "a2"] and bad.empty


def test_bare_carriage_return_inside_a_field_is_whitespace(tmp_path):
    path = write(tmp_path, SST_HEADER + "0\ta1\t Good\rfilm .\t3\r\n1\ta2\t ok .\t2\r\n")
    rows, bad = read_course_file(path, "sst", labeled=True)
    assert rows["sentence"].tolist() == ["Good film .", "ok ."] and bad.empty


def test_lines_of_spaces_or_tabs_are_quarantined_and_empty_lines_counted(tmp_path):
    from minbert.course_io import read_course_table

    body = "0\ta1\t x .\t3\n\n   \n\t\t\t\n\r\n1\ta2\t y .\t2\n"
    table = read_course_table(write(tmp_path, SST_HEADER + body), "sst", labeled=True)
    assert table.rows.index.tolist() == [2, 7]
    assert table.quarantine[["line", "reason"]].values.tolist() == [
        [4, "whitespace_line"], [5, "whitespace_line"]]
    assert table.blank_lines == 2  # lines 3 and 6 (an empty CRLF line)


def test_control_characters_are_removed_and_counted(tmp_path):
    from minbert.course_io import read_course_table

    body = ("0\ta1\t guilt\x7f?\t3\n1\ta2\tTreasury\x12s plan\t2\n"
            "2\ta3\t\x00\x01\t1\n3\ta4\t ok .\t0\n")
    table = read_course_table(write(tmp_path, SST_HEADER + body), "sst", labeled=True)
    assert table.rows["sentence"].tolist() == ["guilt?", "Treasurys plan", "ok ."]
    assert table.controls_removed == 2
    assert table.quarantine["reason"].tolist() == ["empty_text"]  # nothing visible was left


@pytest.mark.parametrize("text", ["\u200b\u200b", "\ufeff", " \u00a0\u2060 ", "\u200e\u200f"])
def test_text_with_no_visible_character_is_quarantined(tmp_path, text):
    path = write(tmp_path, SST_HEADER + f"0\ta1\t{text}\t3\n1\ta2\t ok .\t2\n")
    rows, bad = read_course_file(path, "sst", labeled=True)
    assert rows["id"].tolist() == ["a2"] and bad["reason"].tolist() == ["empty_text"]
    assert bad["detail"].tolist() == ["sentence is empty or has no visible character"]


def test_replacement_character_is_quarantined_as_invalid_utf8(tmp_path):
    path = write(tmp_path, SST_HEADER + "0\ta1\t caf\ufffd .\t3\n1\ta2\t ok .\t2\n")
    rows, bad = read_course_file(path, "sst", labeled=True)
    assert rows["id"].tolist() == ["a2"] and bad["reason"].tolist() == ["invalid_utf8"]


def test_utf8_byte_order_mark_is_ignored(tmp_path):
    path = write(tmp_path, b"\xef\xbb\xbf" + (SST_HEADER + "0\ta1\t x .\t3\n").encode())
    rows, bad = read_course_file(path, "sst", labeled=True)
    assert rows["id"].tolist() == ["a1"] and bad.empty


def _gzip(text: str) -> bytes:
    import gzip

    return gzip.compress(text.encode())


GOOD = SST_HEADER + "0\ta1\t x .\t3\n1\ta2\t y .\t2\n"
NOT_TEXT = {
    "UTF-16 with BOM": (GOOD.encode("utf-16"), "is UTF-16 text"),
    "UTF-16 without BOM": (GOOD.encode("utf-16-le"), "is UTF-16 text"),
    "gzip": (_gzip(GOOD), "looks like a gzip-compressed file"),
    "zip / xlsx": (b"PK\x03\x04" + bytes(range(256)) * 4, "looks like a zip archive"),
    "parquet": (b"PAR1" + bytes(200), "looks like a parquet table"),
    "binary": (bytes(range(256)) * 40, "looks like a binary file"),
    "CR-only line endings": (GOOD.replace("\n", "\r").encode(), "bare carriage return"),
    "semicolons": (b";id;sentence;sentiment\n0;a1;x .;3\n", "found semicolons"),
}


@pytest.mark.parametrize("case", NOT_TEXT)
def test_a_file_that_is_not_course_text_says_what_it_looks_like(tmp_path, case):
    data, message = NOT_TEXT[case]
    path = write(tmp_path, data, name="ids-sst-train.csv")
    with pytest.raises(InputError, match=message) as err:
        read_course_file(path, "sst", labeled=True)
    text = str(err.value)
    assert "\n" not in text and str(path) in text
    assert "expected" in text  # and what the product expects instead
