"""`python -m eval.predict`: input reading and one-line errors with exit code 2."""

import subprocess
import sys
from pathlib import Path

import pytest

from eval import predict

ROOT = Path(__file__).resolve().parents[2]


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def args(tmp_path: Path, input_path: Path, task: str = "sst", *extra: str) -> list[str]:
    return ["--model", str(tmp_path / "no-model"), "--task", task, "--input", str(input_path),
            "--output", str(tmp_path / "out.csv"), *extra]


@pytest.fixture
def sst_labeled(tmp_path):
    return write(tmp_path / "sst.csv", [
        "\tid\tsentence\tsentiment",
        "0\taaa\t A -LRB- fine -RRB- film .\t3",
        "1\tbbb\t   \t2",                       # empty text: still predicted
        "2\tccc\tno label here\t",               # missing label: predicted, not scored
        "3\tddd\ttoo\tmany\tfields\t1",          # malformed: cannot be predicted
    ])


def test_read_input_keeps_every_predictable_row_and_normalizes_text(sst_labeled):
    rows, unreadable = predict.read_input(sst_labeled, "sst")
    assert rows["id"].tolist() == ["aaa", "bbb", "ccc"]
    assert rows["sentence"].tolist()[0] == "A ( fine ) film ."  # treebank escapes undone
    assert rows["label"].tolist()[0] == 3 and rows["label"].isna().tolist()[1:] == [False, True]
    assert unreadable["reason"].tolist() == ["malformed_row"]
    assert predict.describe_unreadable(unreadable) == [
        "sst.csv:5: malformed_row (6 fields, header has 4): no prediction"]


def test_read_input_reads_the_unlabeled_test_student_layout(tmp_path):
    path = write(tmp_path / "test.csv", ["0\t\tid\tsentence", "1\t0.0\txyz\t Good ."])
    rows, unreadable = predict.read_input(path, "sst")
    assert rows["id"].tolist() == ["xyz"] and "label" not in rows and unreadable.empty


def test_score_line_uses_only_labeled_rows():
    import numpy as np
    import pandas as pd
    line = predict.score_line("sst", np.array([1, 2, 0]), pd.Series([1.0, 2.0, None]))
    assert line == "accuracy 1.0000 on 2 labeled rows"


@pytest.mark.parametrize("case, message", [
    ("missing", "file not found"),
    ("comma", "not tab-separated"),
    ("no_column", "missing column(s) ['sentence']"),
    ("empty", "file is empty"),
])
def test_bad_input_is_one_line_error_with_exit_code_2(tmp_path, capsys, case, message):
    path = tmp_path / f"{case}.csv"
    if case == "comma":
        write(path, [",id,sentence,sentiment", "0,aaa,Fine .,3"])
    elif case == "no_column":
        write(path, ["\tid\ttext", "0\taaa\tFine ."])
    elif case == "empty":
        path.write_text("")
    assert predict.main(args(tmp_path, path)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0]
    assert not (tmp_path / "out.csv").exists()


def test_missing_model_directory_is_a_clear_error(tmp_path, capsys, sst_labeled):
    assert predict.main(args(tmp_path, sst_labeled)) == 2
    err = capsys.readouterr().err
    assert "error: " in err and "no-model: model directory not found" in err


def test_strict_refuses_rows_that_cannot_be_predicted(tmp_path, capsys, sst_labeled):
    assert predict.main(args(tmp_path, sst_labeled, "sst", "--strict")) == 2
    captured = capsys.readouterr()
    assert "1 row(s) cannot be predicted" in captured.err


@pytest.mark.slow
def test_command_line_prints_no_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "eval.predict", *args(tmp_path, tmp_path / "absent.csv")],
        cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().endswith("absent.csv: file not found")


def _bytes_case(case: str) -> bytes:
    import gzip

    good = "\tid\tsentence\tsentiment\n0\taaa\tFine .\t3\n"
    return {
        "utf16": good.encode("utf-16"),
        "gzip": gzip.compress(good.encode()),
        "binary": bytes(range(256)) * 16,
        "cr_only": good.replace("\n", "\r").encode(),
        "semicolon": good.replace("\t", ";").encode(),
        "all_unreadable": b"\tid\tsentence\tsentiment\n0\taaa\ttoo\tmany\t3\n1\t\tno id\t3\n",
    }[case]


@pytest.mark.parametrize("case, message", [
    ("utf16", "is UTF-16 text"),
    ("gzip", "looks like a gzip-compressed file"),
    ("binary", "looks like a binary file"),
    ("cr_only", "lines end with a bare carriage return"),
    ("semicolon", "header is not tab-separated (found semicolons"),
    ("all_unreadable", "no row can be predicted (all 2 rows unreadable: malformed_row 1, "
                       "missing_id 1)"),
])
def test_input_that_cannot_be_read_is_one_line_error_with_exit_code_2(tmp_path, capsys, case,
                                                                      message):
    path = tmp_path / f"{case}.csv"
    path.write_bytes(_bytes_case(case))
    assert predict.main(args(tmp_path, path)) == 2
    err = [line for line in capsys.readouterr().err.strip().splitlines()
           if line.startswith("error: ")]
    assert len(err) == 1 and message in err[0]
    assert not (tmp_path / "out.csv").exists()


def test_csv_level_oddities_are_read_not_fatal(tmp_path):
    long = "word " * 30_000  # a field longer than the csv module's default limit
    path = tmp_path / "odd.csv"
    path.write_bytes(b"\xef\xbb\xbf\tid\tsentence\tsentiment\r\n"  # BOM, CRLF
                     + f"0\taaa\t{long}\t3\r\n1\tbbb\t Good\rfilm .\t2\r\n\r\n".encode())
    rows, unreadable = predict.read_input(path, "sst")
    assert rows["id"].tolist() == ["aaa", "bbb"] and unreadable.empty
    assert rows["sentence"].tolist()[1] == "Good film ." and rows["label"].tolist() == [3, 2]


def test_output_that_cannot_be_written_is_reported_before_the_model_runs(tmp_path, capsys,
                                                                         sst_labeled):
    (tmp_path / "blocked").write_text("a file, not a folder")
    argv = args(tmp_path, sst_labeled)
    argv[argv.index("--output") + 1] = str(tmp_path / "blocked" / "out.csv")
    assert predict.main(argv) == 2  # the model is missing too: the output is checked first
    err = capsys.readouterr().err.strip().splitlines()[-1]
    blocked = tmp_path / "blocked"
    assert err == f"error: cannot write outputs in {blocked}: it is a file, not a folder"
