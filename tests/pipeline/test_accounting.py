"""prepare's row accounting against an independent line count, and its transactional outputs."""

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from minbert import course_io
from minbert.params import load_section
from pipeline import prepare
from pipeline.accounting import AccountingError, audit, count_lines
from tests.course_data import write_course_files

ROOT = Path(__file__).resolve().parents[2]
SST_TRAIN = "ids-sst-train.csv"


def params_for(raw: Path) -> prepare.PrepareParams:
    params = load_section("prepare", prepare.PrepareParams, ROOT / "params.yaml")
    return replace(params, raw_dir=str(raw))


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


@pytest.fixture
def prepared(tmp_path):
    """(raw dir, clean dir) after a good prepare run."""
    raw, out = write_course_files(tmp_path / "raw"), tmp_path / "clean"
    prepare.run(params_for(raw), out)
    return raw, out


def test_count_lines_reads_the_raw_bytes(tmp_path):
    path = tmp_path / "f.csv"
    path.write_bytes(b"h\na\n\n \t\r\n\r\nb")  # no final line break after b
    assert count_lines(path) == (5, 2)


def test_a_good_run_accounts_for_every_line(prepared):
    raw, out = prepared
    assert audit(raw, out) == []
    summary = json.loads((out / "summary.json").read_text())["files"][SST_TRAIN]
    assert summary["lines"] == summary["rows_in"] == 30 and summary["blank_lines"] == 0


def test_the_check_fails_when_a_row_goes_missing_from_the_outputs(prepared):
    raw, out = prepared
    table = pd.read_parquet(out / "sst/dev.parquet")
    table.iloc[1:].to_parquet(out / "sst/dev.parquet", index=False)
    assert audit(raw, out) == [
        "ids-sst-dev.csv: 10 lines after the header, but the outputs account for 9 "
        "(9 kept + 0 quarantined + 0 removed + 0 blank)"]


def test_the_check_fails_when_a_tab_only_line_is_not_in_the_outputs(prepared):
    raw, out = prepared
    with (raw / SST_TRAIN).open("ab") as f:
        f.write(b"\t\t\t\n")
    assert audit(raw, out) == [
        f"{SST_TRAIN}: 31 lines after the header, but the outputs account for 30 "
        "(30 kept + 0 quarantined + 0 removed + 0 blank)"]


def test_the_check_fails_when_empty_lines_are_miscounted(prepared):
    raw, out = prepared
    summary = json.loads((out / "summary.json").read_text())
    summary["files"][SST_TRAIN]["blank_lines"] = 1
    (out / "summary.json").write_text(json.dumps(summary))
    problems = audit(raw, out)
    assert f"{SST_TRAIN}: 0 empty lines, summary.json says 1" in problems


def test_empty_lines_are_counted_as_blank_and_tab_lines_quarantined(tmp_path):
    raw = write_course_files(tmp_path / "raw")
    lines = (raw / SST_TRAIN).read_bytes().split(b"\n")
    lines[3:3] = [b"", b"\t\t\t", b"", b"  "]
    (raw / SST_TRAIN).write_bytes(b"\n".join(lines))
    prepare.run(params_for(raw), tmp_path / "clean")
    summary = json.loads((tmp_path / "clean/summary.json").read_text())["files"][SST_TRAIN]
    assert (summary["lines"], summary["blank_lines"], summary["rows_in"]) == (34, 2, 32)
    assert summary["quarantined"] == {"whitespace_line": 2} and summary["kept"] == 30


def test_control_characters_are_counted_and_gone_from_the_clean_table(tmp_path):
    raw = write_course_files(tmp_path / "raw")
    data = (raw / SST_TRAIN).read_bytes().split(b"\n")
    data[2] = data[2].replace(b" .\t", b"\x7f .\t")
    (raw / SST_TRAIN).write_bytes(b"\n".join(data))
    results = prepare.run(params_for(raw), tmp_path / "clean")
    assert results["sst"].summary[SST_TRAIN]["controls_removed"] == 1
    sentences = pd.read_parquet(tmp_path / "clean/sst/train.parquet")["sentence"]
    assert not sentences.str.contains(course_io.CONTROL_CHARACTERS).any()


def test_a_reader_losing_a_line_stops_prepare_and_keeps_the_last_good_outputs(
        prepared, monkeypatch):
    raw, out = prepared
    before = snapshot(out)
    with (raw / SST_TRAIN).open("ab") as f:
        f.write(b" \t \n")
    real = course_io.physical_lines  # the old reader: a line of spaces and tabs vanished
    monkeypatch.setattr(course_io, "physical_lines",
                        lambda text: [line for line in real(text) if line.strip() or not line])
    with pytest.raises(AccountingError, match=f"{SST_TRAIN}: 31 lines after the header"):
        prepare.run(params_for(raw), out)
    assert snapshot(out) == before


def test_prepare_failing_half_way_keeps_the_last_good_outputs(prepared, monkeypatch):
    raw, out = prepared
    before = snapshot(out)
    (raw / SST_TRAIN).write_bytes((raw / SST_TRAIN).read_bytes() + b"999\tnew\t New row .\t2\n")
    real, calls = pd.DataFrame.to_parquet, []

    def to_parquet(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 5:
            raise OSError(28, "No space left on device")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_parquet", to_parquet)
    with pytest.raises(OSError, match="No space left"):
        prepare.run(params_for(raw), out)
    assert snapshot(out) == before
    assert sorted(p.name for p in out.iterdir()) == [
        "para", "quarantine.parquet", "removed.parquet", "sst", "sts", "summary.json"]


@pytest.mark.slow
def test_prepare_command_says_in_one_line_why_it_cannot_write(tmp_path):
    raw = write_course_files(tmp_path / "raw")
    params = (ROOT / "params.yaml").read_text().replace("raw_dir: data/raw", f"raw_dir: {raw}")
    (tmp_path / "params.yaml").write_text(params)
    (tmp_path / "data").mkdir()
    (tmp_path / "data/clean").write_text("a file where the output folder should be")
    result = subprocess.run([sys.executable, "-m", "pipeline.prepare"], cwd=tmp_path,
                            capture_output=True, text=True,
                            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 1 and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR")]
    assert errors == ["ERROR __main__: cannot write outputs in data/clean: it is a file, "
                      "not a folder"]
