"""`python -m eval.sweep` on real queued experiments of a tiny copy of the project.

Two ratios x two training seeds run through the whole pipeline (tiny course files, a random
2-layer BERT, one epoch: the numbers mean nothing, the plumbing is what is tested), plus one
experiment that fails; the summary must group the four by ratio, read every run's dev
predictions from DVC's cache for the bootstrap, and list the failed one without averaging it.
"""

import json

import pytest

from tests.dvc_project import dvc, make_project, run
from tests.test_end_to_end import tiny_params, write_tiny_backbone

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    from tests.course_data import write_course_files

    tmp = tmp_path_factory.mktemp("sweep")
    raw = write_course_files(tmp / "raw", rows_per_class=6)
    project = make_project(tmp / "project", raw, tiny_params(write_tiny_backbone(tmp / "bert")))
    run(["git", "add", "-A"], project)
    run(["git", "-c", "user.name=test", "-c", "user.email=test@example.com", "commit", "-qm",
         "tiny project"], project)
    dvc(project, "exp", "run", "--queue", "-S", "augment.ratio=0,1.25", "-S", "train.seed=1,2")
    dvc(project, "exp", "run", "--queue", "-n", "broken", "-S", "train.batch_size=0")
    dvc(project, "exp", "run", "--run-all", check=False)  # the broken one fails
    run(["python", "-m", "eval.sweep", "--bootstrap", "200"], project)
    return project


def test_groups_by_ratio_with_both_intervals(swept):
    summary = json.loads((swept / "reports/sweep.json").read_text())
    assert summary["swept"] == ["augment.ratio"] and summary["baseline"] == "augment.ratio=0"
    rows = [r for r in summary["rows"] if r["metric"] == "overall"]
    assert [r["label"] for r in rows] == ["augment.ratio=0", "augment.ratio=1.25"]
    assert [sorted(s[0] for s in r["seeds"]) for r in rows] == [[1, 2], [1, 2]]
    ratio = rows[1]
    assert ratio["diff_ci"] is not None  # two seeds a side: a Welch interval
    assert ratio["boot_ci"] is not None  # dev predictions read back from DVC's cache
    assert ratio["boot_ci"][0] <= ratio["diff"] <= ratio["boot_ci"][1]
    assert ratio["verdict"] in ("helps", "no evidence", "hurts")


def test_failed_experiment_is_listed_not_averaged(swept):
    summary = json.loads((swept / "reports/sweep.json").read_text())
    listed = {r["name"]: r["status"] for r in summary["not_averaged"]}
    assert listed == {"broken": "failed"}
    assert all(r["runs"] == 2 for r in summary["rows"])
    text = (swept / "reports/sweep.md").read_text()
    assert "| broken | failed |" in text
    assert (swept / "reports/sweep.png").read_bytes()[:4] == b"\x89PNG"
