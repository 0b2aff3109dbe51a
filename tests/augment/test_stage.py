"""The augment stage end to end on tiny tables, with a deterministic fake backend."""

import json
import logging

import pandas as pd
import pytest

from augment.filters import REASONS
from augment.outputs import PROVENANCE_COLUMNS
from augment.prompts import TemplateError
from augment.requests import PlanError
from augment.stage import run
from pipeline.tasks import TASKS, class_counts
from tests.augment.fakes import FakeBackend, fake_similarity, make_params, write_balanced


def _run(tmp_path, ratio, backend=None, **changes):
    balanced = tmp_path / "balanced"
    if not balanced.exists():
        write_balanced(balanced)
    backend = backend or FakeBackend()
    summary = run(make_params(ratio, **changes), balanced_dir=balanced,
                  out_dir=tmp_path / "augmented", cache_dir=tmp_path / "cache",
                  backend=backend, similarity=fake_similarity)
    return summary, backend


def _table(tmp_path, task):
    return pd.read_parquet(tmp_path / "augmented" / task / "train.parquet")


def test_ratio_zero_keeps_the_real_rows_only(tmp_path):
    summary, backend = _run(tmp_path, 0, backend=FakeBackend(fail_after=0))
    assert backend.generated == []
    for task in TASKS:
        table = _table(tmp_path, task)
        assert set(table["origin"]) == {"real"}
        assert (table["source_id"] == table["id"]).all()
        assert table["generator"].isna().all() and table["seed"].isna().all()
        assert summary["tasks"][task]["requested"] == 0


def test_every_class_is_topped_up_to_ratio_times_target(tmp_path):
    summary, _ = _run(tmp_path, 2)
    for task in TASKS:
        counts = class_counts(task, _table(tmp_path, task)["label"])
        assert set(counts.values()) == {6}, (task, counts)  # round(2 * 3)
        for cls in summary["tasks"][task]["classes"].values():
            assert cls["accepted"] == cls["requested"] and cls["shortfall"] == 0
            assert cls["generated"] == cls["accepted"] + cls["rejected"] + cls["surplus"]
            assert sum(cls["rejected_by_reason"].values()) == cls["rejected"]
            assert set(cls["rejected_by_reason"]) == set(REASONS)


def test_synthetic_rows_carry_provenance(tmp_path):
    _run(tmp_path, 2)
    real = pd.read_parquet(tmp_path / "balanced" / "sts" / "train.parquet").set_index("id")
    table = _table(tmp_path, "sts")
    assert list(table.columns) == [*TASKS["sts"].columns(), *PROVENANCE_COLUMNS]
    assert str(table["seed"].dtype) == "Int64" and table["similarity"].dtype == "float64"
    syn = table[table["origin"] == "synthetic"]
    assert syn["id"].str.fullmatch(r"syn-[0-9a-f]{12}").all() and syn["id"].is_unique
    assert (syn["generator"] == "fake:echo-1").all()
    assert syn["prompt_hash"].str.fullmatch(r"[0-9a-f]{12}").all()
    assert syn["seed"].notna().all() and syn["similarity"].between(0.6, 0.98).all()
    for row in syn.itertuples():
        source = real.loc[row.source_id]
        assert row.label == source["label"]
        changed = [c for c in ("sentence1", "sentence2") if getattr(row, c) != source[c]]
        assert len(changed) == 1  # exactly one side paraphrased


def test_rejections_are_kept_with_reasons_and_examples(tmp_path):
    summary, _ = _run(tmp_path, 2)
    rejected = pd.read_parquet(tmp_path / "augmented" / "rejected.parquet")
    assert set(rejected["reason"]) <= set(REASONS) and {"empty", "drift"} <= set(rejected["reason"])
    total = sum(t["rejected"] for t in summary["tasks"].values())
    assert len(rejected) == total
    examples = json.loads((tmp_path / "augmented" / "examples.json").read_text())
    sst0 = examples["sst"]["3"]
    assert sst0["accepted"] and {"source", "paraphrase", "similarity"} <= set(sst0["accepted"][0])
    assert {"source", "completion", "reason"} <= set(sst0["rejected"][0])
    metrics = json.loads((tmp_path / "augmented" / "metrics.json").read_text())
    assert metrics["sst"]["synthetic_rows"] == summary["tasks"]["sst"]["accepted"]


def test_second_run_is_served_by_the_cache(tmp_path, caplog):
    _run(tmp_path, 2)
    first = _table(tmp_path, "para")
    caplog.clear()
    caplog.set_level(logging.INFO)
    summary, backend = _run(tmp_path, 2, backend=FakeBackend(fail_after=0))
    assert backend.generated == []
    assert "served all" in caplog.text
    assert all(t["generated_now"] == 0 for t in summary["tasks"].values())
    pd.testing.assert_frame_equal(first, _table(tmp_path, "para"))


def test_raising_the_ratio_generates_only_the_missing_rows(tmp_path):
    _, low = _run(tmp_path, 1)
    _, high = _run(tmp_path, 3)
    _, fresh = _run(tmp_path / "fresh", 3)
    assert low.generated and high.generated
    assert not set(low.generated) & set(high.generated)  # nothing generated twice
    assert set(high.generated) == set(fresh.generated) - set(low.generated)
    for task in TASKS:  # same result as a run straight at ratio 3
        pd.testing.assert_frame_equal(_table(tmp_path, task), _table(tmp_path / "fresh", task))


def test_interrupted_run_resumes_without_regenerating(tmp_path):
    with pytest.raises(RuntimeError, match="injected"):
        _run(tmp_path, 2, backend=FakeBackend(chunk_size=2, fail_after=5))
    cached = {json.loads(line)["key"] for f in (tmp_path / "cache").glob("*.jsonl")
              for line in f.read_text().splitlines()}
    assert len(cached) == 4  # two chunks of 2 were written before the failure
    _, resumed = _run(tmp_path, 2)
    _, full = _run(tmp_path / "fresh", 2)
    assert len(resumed.generated) == len(full.generated) - 4
    for task in TASKS:
        pd.testing.assert_frame_equal(_table(tmp_path, task), _table(tmp_path / "fresh", task))


def test_missing_plan_is_a_clear_error(tmp_path):
    (tmp_path / "balanced").mkdir()
    with pytest.raises(PlanError, match="plan.json not found: run the balance stage"):
        _run(tmp_path, 1)


def test_template_file_without_a_task_is_a_clear_error(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text("sst:\n  system: s\n  user: 'x {text}'\n  example_line: '- {text}'\n"
                    "  labels: {}\n")
    params = make_params(1)
    prompts = type(params.prompts)(template_file=str(path), n_shots=2, max_example_chars=200)
    with pytest.raises(TemplateError, match="no template for task 'para'"):
        _run(tmp_path, 1, prompts=prompts)
