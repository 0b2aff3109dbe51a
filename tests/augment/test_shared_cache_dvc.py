"""A queued experiment (`dvc exp run --queue`, run in a temporary copy of the project) is served
entirely from the generation cache that a workspace `dvc repro` filled."""

import json

import pytest

from augment.cache import CACHE_ENV
from tests.dvc_project import dvc, make_project, run

pytestmark = pytest.mark.slow


def _records(cache_dir) -> dict[str, int]:
    return {p.name: p.read_text().count("\n") for p in sorted(cache_dir.glob("*.jsonl"))}


def _experiment(project, name: str) -> dict:
    rows = json.loads(dvc(project, "exp", "show", "--json").stdout)
    for baseline in rows:
        for experiment in baseline.get("experiments") or []:
            if experiment.get("name") == name:
                return experiment
    raise AssertionError(f"experiment {name} not in `dvc exp show --json`")


def test_queued_experiment_is_served_from_the_workspace_cache(course_dir, tmp_path, monkeypatch):
    cache_dir = tmp_path / "shared-generations"
    monkeypatch.setenv(CACHE_ENV, str(cache_dir))  # inherited by dvc and its queue worker
    project = make_project(tmp_path / "project", course_dir, {
        "balance.max_per_class": 5, "augment.ratio": 1.2, "augment.max_rounds": 1,
        "augment.sampling.max_tokens": 32, "augment.prompts.n_shots": 1})
    dvc(project, "repro", "augment")
    filled = _records(cache_dir)
    assert sum(filled.values()) >= 12  # at least one paraphrase for each of the 12 classes
    assert not (project / "data/cache").exists()  # nothing is memoized inside the project
    run(["git", "add", "-A"], project)
    run(["git", "-c", "user.name=test", "-c", "user.email=test@example.com", "commit", "-qm",
         "workspace run"], project)

    # a param of the augment stage that no cache key contains: the stage runs again
    dvc(project, "exp", "run", "--queue", "-n", "served", "-S",
        "augment.examples_per_class=2", "augment")
    dvc(project, "exp", "run", "--run-all")

    experiment = _experiment(project, "served")
    assert experiment["executor"]["state"] == "success"
    data = experiment["revs"][0]["data"]
    used = data["metrics"]["data/augmented/metrics.json"]["data"]
    total = sum(filled.values())
    assert sum(t["generated"] for t in used.values()) == total  # every completion used ...
    assert _records(cache_dir) == filled  # ... none generated: no new shard, no new record
    logs = dvc(project, "queue", "logs", "served").stdout
    assert f"the generation cache served all {total} completions" in logs, logs
