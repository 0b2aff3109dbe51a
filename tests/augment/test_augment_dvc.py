"""`dvc repro augment` in a temporary copy of the project, with the embedded llama.cpp model."""

import json

import pandas as pd
import pytest

from tests.dvc_project import dvc, make_project, update_params

pytestmark = pytest.mark.slow


@pytest.fixture
def project(course_dir, tmp_path):
    # 2 real rows per class; ratio 1.5 -> 3 rows: one paraphrase per class (12 classes)
    return make_project(tmp_path / "project", course_dir, {
        "balance.max_per_class": 2, "augment.ratio": 1.5, "augment.max_rounds": 1,
        "augment.sampling.max_tokens": 32, "augment.prompts.n_shots": 1})


def _summary(project) -> dict:
    return json.loads((project / "data/augmented/summary.json").read_text())


def test_repro_augment_then_raise_the_ratio(project):
    dvc(project, "repro", "augment")
    summary = _summary(project)
    assert sum(t["generated"] for t in summary["tasks"].values()) == 12
    assert list((project.parent / "project-generations").glob("*.jsonl"))
    table = pd.read_parquet(project / "data/augmented/sst/train.parquet")
    assert {"origin", "source_id", "generator", "prompt_hash", "seed", "similarity"} <= set(
        table.columns)
    assert json.loads((project / "data/augmented/metrics.json").read_text())["sst"]["rows"] == \
        len(table)

    again = dvc(project, "repro", "augment")
    assert "didn't change" in again.stdout and "Running stage" not in again.stdout

    update_params(project, {"augment.ratio": 2})  # 4 rows per class: 2 paraphrases each
    rerun = dvc(project, "repro", "augment")
    assert "Running stage 'augment'" in rerun.stdout
    assert "Running stage 'balance'" not in rerun.stdout
    after = _summary(project)
    for task, t in after["tasks"].items():
        before = summary["tasks"][task]["generated"]
        assert t["cache_hits"] == before, task  # the ratio-1.5 generations were reused
        assert t["generated_now"] == t["generated"] - before, task
    assert len(list((project.parent / "project-generations").glob("*.jsonl"))) == 2
