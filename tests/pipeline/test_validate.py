"""The `validate` stage: suites, computed checks, results.json, Data Docs and the exit status."""

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from pipeline import validate as stage
from pipeline.expectations import (
    LEAK_COLUMN,
    TextBounds,
    class_table,
    clean_split_suite,
    leaked_text,
    training_suite,
    unknown_source_ids,
)
from pipeline.gx_runner import MAX_EXAMPLE_CHARS, run_suites
from pipeline.validate import ContractError, failure_summary, task_jobs
from tests.pipeline.validate_data import (
    augmented_table,
    clean_split,
    dirs_for,
    params_for,
    write_tables,
)

BOUNDS = TextBounds(1, 2000)


def types_of(suite):
    return [e.type for e in suite.expectations]


def strict_json(path):
    """Parse like a strict JSON reader would: NaN / Infinity are errors."""
    def reject(name):
        raise ValueError(f"{path}: non-JSON constant {name}")
    return json.loads(path.read_text(encoding="utf-8"), parse_constant=reject)


# --- suites as data ---------------------------------------------------------------------------

def test_test_split_suite_requires_the_columns_without_label():
    suite = clean_split_suite("sst", "test", BOUNDS)
    schema = next(e for e in suite.expectations if e.type == "ExpectTableColumnsToMatchOrderedList")
    assert schema.kwargs["column_list"] == ["id", "sentence"]
    assert not [e for e in suite.expectations if e.kwargs.get("column") == "label"]


@pytest.mark.parametrize("task,check", [
    ("sst", ("ExpectColumnValuesToBeInSet", "value_set", [0, 1, 2, 3, 4])),
    ("para", ("ExpectColumnValuesToBeInSet", "value_set", [0, 1])),
    ("sts", ("ExpectColumnValuesToBeBetween", "max_value", 5.0)),
])
def test_label_ranges_follow_the_task(task, check):
    suite = clean_split_suite(task, "dev", BOUNDS)
    found = [e for e in suite.expectations if e.type == check[0]]
    assert [e.kwargs[check[1]] for e in found] == [check[2]]


def test_provenance_and_balance_apply_only_to_augmented_tables():
    plain = training_suite("sst", BOUNDS, augmented=False, max_class_ratio=1.1,
                           synthetic_share=(0, 0.99))
    augmented = training_suite("sst", BOUNDS, augmented=True, max_class_ratio=1.1,
                               synthetic_share=(0, 0.99))
    no_balance = training_suite("sst", BOUNDS, augmented=True, max_class_ratio=None,
                                synthetic_share=(0, 0.99))
    assert "ExpectColumnMaxToBeBetween" not in types_of(plain)
    assert not any(e.when for e in plain.expectations)
    assert {e.when for e in augmented.expectations if e.when} == {
        ("origin", "real"), ("origin", "synthetic")}
    assert types_of(augmented).count("ExpectColumnMaxToBeBetween") == 2  # ratio, share
    assert types_of(no_balance).count("ExpectColumnMaxToBeBetween") == 1  # share only


# --- computed checks --------------------------------------------------------------------------

def test_leakage_uses_normalized_text_and_unordered_pairs():
    train = pd.DataFrame({"id": ["a", "b", "c"], "sentence1": ["Is it -LRB- ok -RRB- ?", "x", "y"],
                          "sentence2": ["Sure", "Another", "z"]})
    dev = pd.DataFrame({"id": ["d"], "sentence1": ["sure"], "sentence2": ["is it  ( OK ) ?"]})
    test = pd.DataFrame({"id": ["e"], "sentence1": ["y"], "sentence2": ["z"]})
    leaks = leaked_text(train, {"dev": dev, "test": test}, "para")
    assert leaks.tolist() == ["dev: Is it -LRB- ok -RRB- ? | Sure", None, "test: y | z"]


def test_leakage_ignores_rows_without_text():
    train = pd.DataFrame({"id": ["a", "b"], "sentence": [None, "fine ."]})
    dev = pd.DataFrame({"id": ["d"], "sentence": ["Fine ."]})
    assert leaked_text(train, {"dev": dev}, "sst").tolist() == [None, "dev: fine ."]


def test_unknown_source_ids_flag_synthetic_rows_without_a_real_source():
    table = pd.DataFrame({"id": ["r1", "syn-1", "syn-2", "syn-3"],
                          "origin": ["real", "synthetic", "synthetic", "synthetic"],
                          "source_id": ["r1", "r1", "gone", None]})
    assert unknown_source_ids(table).tolist() == [None, None, "gone", None]


def test_class_table_counts_shares_and_size_ratio():
    table = augmented_table(clean_split("sst", "train", per_class=3), "sst")  # 3 real + 1 syn
    table = table.drop(index=table.index[(table["label"] == 4) & (table["origin"] == "real")][:2])
    classes = class_table(table, "sst")
    assert classes.loc["0"].tolist() == [4, 3, 1, 0.25, 2.0]
    assert classes.loc["4", ["rows", "real", "synthetic"]].tolist() == [2, 1, 1]
    assert classes["size_ratio"].max() == 2.0


def test_an_empty_class_makes_the_size_ratio_infinite():
    table = clean_split("para", "train").query("label == 1")
    assert np.isinf(class_table(table, "para")["size_ratio"]).all()


# --- contract check for predict ----------------------------------------------------------------

def test_augment_ratio_is_read_from_params(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("augment:\n  ratio: 10\n")
    assert stage.augment_ratio(path) == 10.0
    path.write_text("augment:\n  seed: 1\n")
    with pytest.raises(stage.ParamsError, match="augment.ratio"):
        stage.augment_ratio(path)


def test_failure_summary_names_suite_expectation_rows_and_examples():
    document = {"suites_failed": 1, "failed": 1, "evaluated": 9, "data_docs": "docs/index.html",
                "suites": {"sst_training": {"table": "t.parquet", "failures": [{
                    "expectation": "expect_column_values_to_be_null", "column": LEAK_COLUMN,
                    "description": "no training text/pair occurs in dev or test", "rows": 2,
                    "examples": [{"id": "a", "value": "dev: Good ."}]}]}}}
    text = failure_summary(document)
    assert text.splitlines()[0] == "validation failed: 1 of 1 suites, 1 of 9 expectations"
    assert ("sst_training (t.parquet): no training text/pair occurs in dev or test "
            "[expect_column_values_to_be_null]: 2 rows, e.g. ") in text
    assert '"dev: Good ."' in text and text.endswith("details: docs/index.html")


# --- running the suites with Great Expectations ------------------------------------------------

@pytest.mark.slow
def test_valid_tables_pass_and_build_data_docs(tmp_path):
    params = write_tables(tmp_path / "data")
    document = stage.validate(params, 1.0, tmp_path / "results.json", tmp_path / "docs",
                              **dirs_for(tmp_path / "data"))
    assert document["success"] and document["failed"] == 0
    assert len(document["suites"]) == 11  # 8 clean splits + 3 training tables
    written = strict_json(tmp_path / "results.json")
    assert written["evaluated"] == written["passed"] > 100
    assert written["suites"]["sst_training"]["rows"] == 20  # 15 real + 5 synthetic
    index = (tmp_path / "docs" / "index.html").read_text()
    for name in ("sst_clean_test", "para_training", "sts_clean_dev"):
        assert f"expectations/{name}.html" in index
        assert (tmp_path / "docs" / "expectations" / f"{name}.html").exists()
    assert list((tmp_path / "docs" / "validations").glob("sts_training/**/*.html"))


def run_training_suite(train, task="sst", ratio=1.0, **params):
    tables = {s: clean_split(task, s) for s in ("train", "dev", "test")}
    paths = {s: f"{s}.parquet" for s in (*tables, "training")}
    params = params_for(Path("in-memory"), **params)  # the directories are not read here
    jobs = task_jobs(task, tables, train, paths, params, ratio)
    return run_suites(jobs[-1:], None, 5)[f"{task}_training"]


def failed(outcome):
    return {(f["expectation"], f["column"]): f for f in outcome["failures"]}


def test_a_short_class_breaks_the_balance_bound():
    table = augmented_table(clean_split("sst", "train"), "sst")
    table = table.drop(index=table.index[(table["label"] == 2) & (table["origin"] == "real")][-2:])
    outcome = run_training_suite(table)
    assert set(failed(outcome)) == {("expect_column_max_to_be_between",
                                     "check_class_size_ratio")}
    assert failed(outcome)[("expect_column_max_to_be_between",
                            "check_class_size_ratio")]["observed"] == 2.0


def test_balance_is_not_required_below_ratio_1_but_ratio_0_forbids_synthetic_rows():
    table = augmented_table(clean_split("sst", "train"), "sst")
    short = table.drop(index=table.index[(table["label"] == 2) & (table["origin"] == "real")][-2:])
    assert run_training_suite(short, ratio=0.5)["success"]
    outcome = run_training_suite(table, ratio=0.0)
    share = failed(outcome)[("expect_column_max_to_be_between", "check_class_synthetic_share")]
    assert share["observed"] == 0.25 and len(outcome["failures"]) == 1


def test_synthetic_share_upper_bound():
    table = augmented_table(clean_split("para", "train", per_class=1), "para",
                            synthetic_per_class=3)
    outcome = run_training_suite(table, task="para", synthetic_share=(0.0, 0.5))
    assert set(failed(outcome)) == {("expect_column_max_to_be_between",
                                     "check_class_synthetic_share")}


def test_a_table_without_provenance_is_checked_without_balance():
    train = clean_split("sts", "train").iloc[:-2]  # a short 4-5 bin: fine before augmentation
    outcome = run_training_suite(train, task="sts")
    # 21 = 19 + "has no control character" on sentence1 and sentence2
    assert outcome["success"] and outcome["evaluated"] == 21


def write_params(root, ratio=1):
    data = {"validate": {"min_chars": 1, "max_chars": 2000, "max_class_ratio": 1.1,
                         "synthetic_share": [0.0, 0.99], "examples": 5},
            "augment": {"ratio": ratio}}
    (root / "params.yaml").write_text(yaml.safe_dump(data))


@pytest.mark.slow
def test_main_passes_on_valid_data(tmp_path, monkeypatch):
    write_tables(tmp_path / "data")
    (tmp_path / "data" / "training").rename(tmp_path / "data" / "augmented")
    write_params(tmp_path)
    monkeypatch.chdir(tmp_path)
    stage.main()
    assert strict_json(tmp_path / "reports/validation/results.json")["success"] is True
    assert (tmp_path / "reports/validation/docs/index.html").exists()


@pytest.mark.slow
def test_main_fails_on_a_hand_broken_augmented_table(tmp_path, monkeypatch, caplog):
    write_tables(tmp_path / "data")
    (tmp_path / "data" / "training").rename(tmp_path / "data" / "augmented")
    path = tmp_path / "data/augmented/sst/train.parquet"
    table = pd.read_parquet(path)
    synthetic = table.index[table["origin"] == "synthetic"][0]
    table.loc[synthetic, "generator"] = None
    table.to_parquet(path)
    write_params(tmp_path)
    monkeypatch.chdir(tmp_path)
    with caplog.at_level(logging.ERROR, logger="pipeline.validate"), \
            pytest.raises(SystemExit) as exit_info:
        stage.main()
    assert exit_info.value.code == 1
    message = caplog.text
    assert "validation failed: 1 of 11 suites, 1 of" in message
    assert "sst_training (data/augmented/sst/train.parquet): a synthetic row names its generator"\
        in message and "1 row, e.g." in message
    results = strict_json(tmp_path / "reports/validation/results.json")
    assert results["success"] is False and results["suites_failed"] == 1
    assert (tmp_path / "reports/validation/docs/index.html").exists()


def test_main_names_a_missing_table(tmp_path, monkeypatch, caplog):
    write_tables(tmp_path / "data")
    write_params(tmp_path)  # augment has not run: no data/augmented
    monkeypatch.chdir(tmp_path)
    with caplog.at_level(logging.ERROR), pytest.raises(SystemExit):
        stage.main()
    assert "data/augmented/sst/train.parquet: file not found" in caplog.text


def test_job_outcome_is_plain_json():
    table = augmented_table(clean_split("sst", "train"), "sst")
    table.loc[0, "sentence"] = "x" * 5000
    outcome = run_training_suite(table, max_chars=300)
    length = failed(outcome)[("expect_column_value_lengths_to_be_between", "sentence")]
    assert length["rows"] == 1 and length["examples"][0]["id"] == table.loc[0, "id"]
    assert len(length["examples"][0]["value"]) == MAX_EXAMPLE_CHARS + 3
    json.dumps(outcome, allow_nan=False)


def test_a_reserved_column_name_is_a_clear_error():
    train = clean_split("sst", "train").assign(check_leaked_text="x")
    tables = {s: clean_split("sst", s) for s in ("train", "dev", "test")}
    paths = {s: f"{s}.parquet" for s in (*tables, "training")}
    with pytest.raises(ContractError, match="training.parquet: has column.*check_leaked_text"):
        task_jobs("sst", tables, train, paths, params_for(Path("in-memory")), 1.0)


def test_failure_summary_is_cut_after_max_lines():
    failure = {"expectation": "e", "column": "c", "description": "d", "observed": 0}
    document = {"suites_failed": 1, "failed": 30, "evaluated": 40, "data_docs": None,
                "suites": {"s": {"table": "t", "failures": [failure] * 30}}}
    lines = failure_summary(document, max_lines=20).splitlines()
    assert len(lines) == 22 and lines[-1] == "  ... and 10 more (see results.json)"
    assert lines[1] == "  s (t): d [e]: observed 0"
