"""The predictions files match the course submission format byte for byte."""

import numpy as np
import pytest

from eval.submission import (
    SubmissionError,
    format_value,
    read_submission,
    submission_lines,
    write_submission,
)


def test_sst_file_is_byte_identical_to_course_output(tmp_path):
    path = write_submission(tmp_path / "sst.csv", "sst", ["a7d5", "33cf"], np.array([4, 2]))
    assert path.read_bytes() == b"id \t Predicted_Sentiment \na7d5 , 4 \n33cf , 2 \n"


def test_para_values_are_written_as_rounded_floats(tmp_path):
    path = write_submission(tmp_path / "p.csv", "para", ["x", "y"], [0, 1])
    assert path.read_bytes() == b"id \t Predicted_Is_Paraphrase \nx , 0.0 \ny , 1.0 \n"


def test_sts_keeps_full_float_repr_and_course_header_spelling():
    lines = submission_lines("sts", ["876d"], np.array([0.46074217557907104], dtype=np.float32))
    assert lines == ["id \t Predicted_Similiary \n", "876d , 0.46074217557907104 \n"]


def test_format_value_rejects_unknown_task():
    with pytest.raises(ValueError, match="unknown task 'nli'"):
        format_value("nli", 1)


def test_length_mismatch_is_an_error():
    with pytest.raises(ValueError, match="2 ids but 1 predictions"):
        submission_lines("sst", ["a", "b"], [1])


def test_read_back_round_trips(tmp_path):
    path = write_submission(tmp_path / "s.csv", "sts", ["a", "b"], [1.5, 4.25])
    df = read_submission(path)
    assert df["id"].tolist() == ["a", "b"]
    assert df["prediction"].tolist() == [1.5, 4.25]


def test_read_rejects_a_file_without_the_header(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("id,label\na,1\n")
    with pytest.raises(SubmissionError, match="line 1"):
        read_submission(path)
