"""`python -m train.stage` trains on the pipeline's tables only after `validate` passed."""

import json

import pytest

from train.stage import check_validated


def test_passed_validation_lets_training_start(tmp_path):
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"success": True}))
    check_validated(results)


def test_failed_validation_stops_training(tmp_path):
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"success": False}))
    with pytest.raises(SystemExit, match="failed validation"):
        check_validated(results)


def test_missing_results_stop_training(tmp_path):
    with pytest.raises(SystemExit, match="run `dvc repro validate` first"):
        check_validated(tmp_path / "results.json")
