"""The augment stage end to end on tiny tables, with a deterministic fake backend."""

import dataclasses
import json
import logging
import re

import numpy as np
import pandas as pd
import pytest

from augment.diversity import distinct_n
from augment.filters import REASONS
from augment.outputs import PROVENANCE_COLUMNS
from augment.prompts import TemplateError
from augment.requests import PlanError
from augment.stage import run
from minbert.tasks import TASKS, class_counts
from tests.augment.fakes import (
    FILLERS,
    FakeBackend,
    fake_embed,
    fake_similarity,
    make_params,
    write_balanced,
)


def _run(tmp_path, ratio, backend=None, **changes):
    balanced = tmp_path / "balanced"
    if not balanced.exists():
        write_balanced(balanced)
    backend = backend or FakeBackend()
    summary = run(make_params(ratio, **changes), balanced_dir=balanced,
                  out_dir=tmp_path / "augmented", cache_dir=tmp_path / "cache",
                  backend=backend, similarity=fake_similarity, embed=fake_embed)
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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_raising_the_ratio_generates_only_the_missing_rows(tmp_path):
    _, low = _run(tmp_path, 1)
    _, high = _run(tmp_path, 3)
    _, fresh = _run(tmp_path / "fresh", 3)
    assert low.generated and high.generated
    assert not set(low.generated) & set(high.generated)  # nothing generated twice
    assert set(high.generated) == set(fresh.generated) - set(low.generated)
    for task in TASKS:  # same result as a run straight at ratio 3
        pd.testing.assert_frame_equal(_table(tmp_path, task), _table(tmp_path / "fresh", task))


@pytest.mark.slow
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


def _drifting_embed(texts):
    """fake_embed, except that an STS paraphrase (a text with a filler word) points anywhere:
    its pair's similarity changes, so score_drift must reject it."""
    vectors = fake_embed(texts)
    for i, text in enumerate(texts):
        if text.startswith("the sts") and any(f in text.split() for f in FILLERS):
            vectors[i] = np.random.default_rng(len(text)).normal(size=vectors.shape[1])
            vectors[i] /= np.linalg.norm(vectors[i])
    return vectors


def _run_with(tmp_path, embed, **filter_changes):
    write_balanced(tmp_path / "balanced")
    params = make_params(2)
    params = dataclasses.replace(params, filters=dataclasses.replace(params.filters,
                                                                     **filter_changes))
    return run(params, balanced_dir=tmp_path / "balanced", out_dir=tmp_path / "augmented",
               cache_dir=tmp_path / "cache", backend=FakeBackend(), similarity=fake_similarity,
               embed=embed)


@pytest.mark.slow
def test_label_rules_reject_with_their_reason_and_can_be_switched_off(tmp_path):
    on = _run_with(tmp_path / "on", _drifting_embed)
    off = _run_with(tmp_path / "off", _drifting_embed, label_consistency=False)
    drift_on = sum(c["rejected_by_reason"]["score_drift"]
                   for c in on["tasks"]["sts"]["classes"].values())
    assert drift_on > 0
    rejected = pd.read_parquet(tmp_path / "on" / "augmented" / "rejected.parquet")
    drifted = rejected[rejected["reason"] == "score_drift"]
    assert len(drifted) == drift_on and (drifted["label_shift"] > 0.1).all()
    examples = json.loads((tmp_path / "on" / "augmented" / "examples.json").read_text())
    shown = [r for c in examples["sts"].values() for r in c["rejected"]]
    assert any(r["reason"] == "score_drift" and r["label_shift"] > 0.1 for r in shown)
    for task in TASKS:
        for cls in off["tasks"][task]["classes"].values():
            assert cls["accepted"] == cls["requested"]
            assert all(cls["rejected_by_reason"][r] == 0
                       for r in ("not_question", "label_flip", "score_drift", "near_duplicate"))
    off_rejected = pd.read_parquet(tmp_path / "off" / "augmented" / "rejected.parquet")
    assert off_rejected["label_shift"].isna().all()


def test_the_probe_never_sees_dev_or_test_rows(tmp_path):
    balanced = write_balanced(tmp_path / "balanced")
    for task, spec in TASKS.items():  # dev/test tables beside the training table: traps
        for split in ("dev", "test"):
            trap = pd.read_parquet(balanced / task / "train.parquet")
            for col in spec.text_columns:
                trap[col] = [f"held-out {split} row {i} of {task}" for i in range(len(trap))]
            trap.to_parquet(balanced / task / f"{split}.parquet")
    seen: list[str] = []

    def spy(texts):
        seen.extend(texts)
        return fake_embed(texts)

    run(make_params(2), balanced_dir=balanced, out_dir=tmp_path / "augmented",
        cache_dir=tmp_path / "cache", backend=FakeBackend(), similarity=fake_similarity,
        embed=spy)
    assert seen and not [t for t in seen if t.startswith("held-out")]
    train = {t for task, spec in TASKS.items() for col in spec.text_columns
             for t in pd.read_parquet(balanced / task / "train.parquet")[col]}
    # every embedded text is a training row's text or a paraphrase (fake ones carry a filler)
    assert {t for t in seen if not set(t.split()) & set(FILLERS)} <= train


def test_metrics_carry_the_diversity_of_the_synthetic_rows(tmp_path):
    _run(tmp_path, 2)
    metrics = json.loads((tmp_path / "augmented" / "metrics.json").read_text())
    sst = _table(tmp_path, "sst")
    synthetic = sst.loc[sst["origin"] == "synthetic", "sentence"]
    assert metrics["sst"]["distinct_2"] == round(distinct_n(list(synthetic), 2), 4)
    assert metrics["sst"]["real_distinct_2"] == round(
        distinct_n(list(sst.loc[sst["origin"] == "real", "sentence"]), 2), 4)
    for task in TASKS:
        assert 0 < metrics[task]["distinct_2"] <= 1
        assert -1 <= metrics[task]["mean_pairwise_cosine"] <= 1


class _NoParaphraseFor(FakeBackend):
    """The fake generator, except that every paraphrase of a source sentence matching
    `pattern` drifts off topic (the drift filter rejects it)."""

    def __init__(self, pattern: str):
        super().__init__()
        self.pattern = re.compile(pattern)

    def generate(self, requests, sampling, progress=None):
        out = super().generate(requests, sampling, progress)
        drift = "DRIFT completely unrelated words about cooking pasta at home tonight"
        return [[dataclasses.replace(c, text=drift)
                 if self.pattern.search(r.messages[-1][1].rsplit(": ", 1)[-1]) else c
                 for c in per] for r, per in zip(requests, out, strict=True)]


def test_a_class_that_cannot_be_filled_holds_the_others_back(tmp_path):
    # SST class 4's paraphrases all drift: it keeps its 3 real rows; the other classes (real
    # rows 3, 2, 3, 1, goal 6) keep at most floor(1.25 x 3) = 3 rows: their last paraphrases
    # are held back as surplus
    marker = r"the sst story number \d+ of group 4 side"  # fakes._sentence of class 4
    summary, _ = _run(tmp_path, 2, backend=_NoParaphraseFor(marker))
    sst = summary["tasks"]["sst"]
    counts = class_counts("sst", _table(tmp_path, "sst")["label"])
    assert counts == {"0": 3, "1": 3, "2": 3, "3": 3, "4": 3}
    assert sst["classes"]["4"]["accepted"] == 0 and sst["classes"]["4"]["shortfall"] == 3
    for cls, real in zip("0123", (3, 2, 3, 1), strict=True):
        c = sst["classes"][cls]
        assert c["accepted"] == 3 - real and c["held_back"] == 3 and c["surplus"] >= 3
        assert c["generated"] == c["accepted"] + c["rejected"] + c["surplus"]
    # other tasks are untouched: every class full
    assert set(class_counts("sts", _table(tmp_path, "sts")["label"]).values()) == {6}


def test_a_short_class_within_the_ratio_holds_nothing_back(tmp_path):
    marker = r"the sst story number \d+ of group 4 side"
    _run(tmp_path, 2, backend=_NoParaphraseFor(marker), max_class_ratio=0.0)  # 0 = never hold back
    counts = class_counts("sst", _table(tmp_path, "sst")["label"])
    assert counts == {"0": 6, "1": 6, "2": 6, "3": 6, "4": 3}  # fails validate's balance


def test_the_shipped_hold_back_ratio_passes_the_validate_check():
    import yaml

    from tests.augment.fakes import ROOT

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert 0 < params["augment"]["max_class_ratio"] <= params["validate"]["max_class_ratio"]
