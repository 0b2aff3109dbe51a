"""Stage outputs written as a transaction: all replaced together, or the previous ones kept."""

import os

import pytest

from minbert import outputs as outputs_module
from minbert.outputs import TMP_PREFIX, OutputError, StageOutputs


def previous_outputs(out):
    (out / "sst").mkdir(parents=True)
    (out / "sst" / "train.parquet").write_text("old sst")
    (out / "summary.json").write_text("old summary")
    (out / "other.txt").write_text("not an output of this stage")
    return out


def snapshot(root):
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*"))
            if p.is_file()}


def write_new(staging):
    (staging / "sst").mkdir()
    (staging / "sst" / "train.parquet").write_text("new sst")
    (staging / "summary.json").write_text("new summary")
    (staging / "plan.json").write_text("new plan")


def test_commit_replaces_every_written_entry_and_leaves_the_rest(tmp_path):
    out = previous_outputs(tmp_path / "clean")
    with StageOutputs() as outputs:
        staging = outputs.stage(out)
        assert staging.parent == out and staging.name.startswith(TMP_PREFIX)
        write_new(staging)
        assert snapshot(out)["summary.json"] == "old summary"  # nothing visible before the end
    assert snapshot(out) == {"sst/train.parquet": "new sst", "summary.json": "new summary",
                             "plan.json": "new plan", "other.txt": "not an output of this stage"}


def test_a_stage_failing_half_way_leaves_the_previous_outputs(tmp_path):
    out = previous_outputs(tmp_path / "clean")
    before = snapshot(out)
    with pytest.raises(RuntimeError, match="model diverged"):
        with StageOutputs() as outputs:
            write_new(outputs.stage(out))
            raise RuntimeError("model diverged")
    assert snapshot(out) == before
    assert not list(out.glob(TMP_PREFIX + "*"))  # no staging left behind


def test_a_swap_failing_half_way_is_rolled_back(tmp_path, monkeypatch):
    out = previous_outputs(tmp_path / "clean")
    before = snapshot(out)
    real_rename, calls = os.rename, []

    def rename(src, dst):
        calls.append(dst)
        if len(calls) == 4:  # plan, old sst -> backup, new sst -> place: old summary fails
            raise PermissionError(13, "Permission denied", str(dst))
        real_rename(src, dst)

    monkeypatch.setattr(outputs_module.os, "rename", rename)
    with pytest.raises(OutputError) as err:
        with StageOutputs() as outputs:
            write_new(outputs.stage(out))
    monkeypatch.undo()
    assert snapshot(out) == before and not list(out.glob(TMP_PREFIX + "*"))
    message = str(err.value)
    assert "\n" not in message and str(out) in message and "Permission denied" in message
    assert "previous outputs are unchanged" in message


def test_an_output_dir_that_cannot_be_created_is_one_line_error(tmp_path):
    (tmp_path / "data").write_text("a file where the data folder should be")
    with pytest.raises(OutputError) as err:
        with StageOutputs() as outputs:
            outputs.stage(tmp_path / "data" / "clean")
    assert str(err.value).startswith(f"cannot write outputs in {tmp_path / 'data' / 'clean'}: ")
    assert isinstance(err.value, OSError) and "\n" not in str(err.value)


def test_dirs_created_for_a_failed_transaction_are_removed(tmp_path):
    with pytest.raises(ValueError):
        with StageOutputs() as outputs:
            write_new(outputs.stage(tmp_path / "new" / "clean"))
            raise ValueError("bad input")
    assert not (tmp_path / "new").exists()


def test_several_output_dirs_commit_together(tmp_path):
    with StageOutputs() as outputs:
        (outputs.stage(tmp_path / "reports") / "metrics.json").write_text("{}")
        (outputs.stage(tmp_path / "predictions") / "sst-dev-output.csv").write_text("id")
        assert outputs.stage(tmp_path / "reports") == outputs.stage(tmp_path / "reports")
    assert snapshot(tmp_path) == {"reports/metrics.json": "{}",
                                  "predictions/sst-dev-output.csv": "id"}
