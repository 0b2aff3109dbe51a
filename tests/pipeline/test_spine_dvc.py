"""`dvc repro` of the data stages (prepare, balance) in a temporary copy of the project."""

import json

import pandas as pd
import pytest

from tests.dvc_project import dvc, make_project, update_params

pytestmark = pytest.mark.slow


@pytest.fixture
def project(course_dir, tmp_path):
    return make_project(tmp_path / "project", course_dir, {"balance.max_per_class": 4})


def test_repro_builds_clean_and_balanced_data(project):
    dvc(project, "repro", "balance")
    summary = json.loads((project / "data/clean/summary.json").read_text())
    for name, c in summary["files"].items():
        assert c["rows_in"] == c["kept"] + c["quarantined_total"] + c["deduplicated"] + \
            c["leaked"], name
    plan = json.loads((project / "data/balanced/plan.json").read_text())
    assert plan["sst"]["target"] == 4
    table = pd.read_parquet(project / "data/balanced/sst/train.parquet")
    assert table["label"].value_counts().to_dict() == {0: 4, 1: 4, 2: 4, 3: 4, 4: 4}

    again = dvc(project, "repro", "balance")
    assert "didn't change" in again.stdout and "Running stage" not in again.stdout

    update_params(project, {"balance.max_per_class": 3})
    rerun = dvc(project, "repro", "balance")
    assert "Running stage 'balance'" in rerun.stdout
    assert "Running stage 'prepare'" not in rerun.stdout
    assert json.loads((project / "data/balanced/plan.json").read_text())["sst"]["target"] == 3


def test_repro_fails_clearly_on_a_missing_raw_file(project):
    (project / "data/raw/quora-dev.csv").unlink()
    result = dvc(project, "repro", "prepare", check=False)
    assert result.returncode != 0
    assert "quora-dev.csv: file not found" in result.stdout + result.stderr
    assert not (project / "data/clean/summary.json").exists()
