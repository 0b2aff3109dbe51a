"""The balance report: tables from tiny summaries, rendering with inputs present or absent."""

import json

import pandas as pd
import pytest

from pipeline import report, report_tables
from pipeline.report_render import markdown_table

PARAMS = report.ReportParams(examples_per_class=1, quarantine_examples=1, audit_examples=1)

CLEAN_SUMMARY = {"files": {
    "ids-sst-train.csv": {
        "task": "sst", "split": "train", "rows_in": 12, "kept": 9, "quarantined": {"empty_text": 1},
        "quarantined_total": 1, "deduplicated": 1, "leaked": 1,
        "class_counts_raw": {"0": 2, "1": 3, "2": 2, "3": 3, "4": 1},
        "class_counts_clean": {"0": 2, "1": 2, "2": 2, "3": 2, "4": 1},
    },
    "ids-sst-dev.csv": {
        "task": "sst", "split": "dev", "rows_in": 4, "kept": 4, "quarantined": {},
        "quarantined_total": 0, "deduplicated": 0, "leaked": 0,
        "class_counts_raw": {"0": 1, "1": 1, "2": 1, "3": 1, "4": 0},
        "class_counts_clean": {"0": 1, "1": 1, "2": 1, "3": 1, "4": 0},
    },
}}
PLAN = {"sst": {"target": 2, "classes": {
    c: {"clean": n, "real": min(n, 2), "target": 2}
    for c, n in {"0": 2, "1": 2, "2": 2, "3": 2, "4": 1}.items()}}}
AUGMENTED = {"sst": pd.DataFrame({
    "label": [0, 0, 1, 1, 2, 2, 3, 3, 4, 4],
    "origin": ["real"] * 9 + ["synthetic"],
})}
REMOVED = pd.DataFrame({
    "file": ["ids-sst-train.csv"] * 2, "reason": ["duplicate", "leakage"],
    "detail": ["same as abc", "also in dev"],
})
QUARANTINE = pd.DataFrame({
    "file": ["ids-sst-train.csv"], "line": [7], "reason": ["empty_text"],
    "detail": ["sentence is empty"], "raw": ["7\tid7\t   \t3"],
})
AUGMENT_SUMMARY = {"ratio": 1, "backend": "llamacpp", "model": "smollm2-135m", "tasks": {
    "sst": {"tokens_per_s": 55.0, "generation_seconds": 2.0, "classes": {
        "4": {"requested": 1, "generated": 4, "cache_hits": 1, "accepted": 1, "surplus": 1,
              "rejected_by_reason": {"too_similar": 1, "label_flip": 1, "empty": 0}},
        "0": {"requested": 0, "generated": 0, "cache_hits": 0, "accepted": 0, "surplus": 0,
              "rejected_by_reason": {"too_similar": 0, "label_flip": 0, "empty": 0}},
    }}}}
EXAMPLES = {"sst": {"4": {
    "accepted": [{"source": "Great fun .", "paraphrase": "Really great fun.", "side": "sentence",
                  "similarity": 0.91}],
    "rejected": [{"source": "Great fun .", "completion": "Great fun .", "paraphrase": "Great fun .",
                  "side": "sentence", "reason": "too_similar", "similarity": 1.0},
                 {"source": "Great fun .", "completion": "Sure! Here", "paraphrase": None,
                  "side": "sentence", "reason": "unparsable", "similarity": None}],
}}}
METRICS = {"overall": 0.5, "sst_accuracy": 0.4, "para_accuracy": 0.6, "sts_pearson": 0.0}
PER_CLASS = {"sst": {
    "classes": {str(k): {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 1}
                for k in range(5)},
    "confusion": [[1, 0, 0, 0, 0], [0, 1, 0, 0, 0], [0, 0, 0, 1, 0], [0, 0, 0, 1, 0],
                  [0, 0, 0, 0, 0]],
}}


def full_inputs() -> report.ReportInputs:
    return report.ReportInputs(
        clean_summary=CLEAN_SUMMARY, quarantine=QUARANTINE, removed=REMOVED, plan=PLAN,
        augment_summary=AUGMENT_SUMMARY, examples=EXAMPLES, augmented=AUGMENTED,
        metrics=METRICS, per_class=PER_CLASS,
    )


def test_class_count_table_has_every_step_of_the_training_set():
    counts = report_tables.class_count_table(CLEAN_SUMMARY, PLAN, AUGMENTED)
    assert list(counts.columns) == ["task", "class", "step", "count"]
    by = counts.set_index(["class", "step"])["count"]
    assert by[("1", "raw")] == 3 and by[("1", "clean")] == 2  # the train file, not dev
    assert by[("4", "balanced")] == 1
    assert by[("4", "augmented")] == 2 and by[("4", "synthetic")] == 1
    assert counts["step"].drop_duplicates().tolist() == list(report_tables.STEPS)


def test_class_count_table_leaves_out_steps_that_did_not_run():
    counts = report_tables.class_count_table(CLEAN_SUMMARY, None, None)
    assert set(counts["step"]) == {"raw", "clean"}
    assert report_tables.class_count_table(None, None, None).empty


def test_wide_table_computes_synthetic_share():
    counts = report_tables.class_count_table(CLEAN_SUMMARY, PLAN, AUGMENTED)
    wide = report_tables.class_count_wide(counts, "sst").set_index("class")
    assert wide.loc["4", "synthetic share"] == pytest.approx(0.5)
    assert wide.loc["0", "synthetic share"] == 0.0


def test_removed_table_splits_leakage_by_where_it_was_found():
    table = report_tables.removed_table(REMOVED)
    assert table.to_dict("records") == [
        {"file": "ids-sst-train.csv", "reason": "duplicate", "where": "", "rows": 1},
        {"file": "ids-sst-train.csv", "reason": "leakage", "where": "dev", "rows": 1},
    ]


def test_funnel_table_has_one_column_per_rejection_reason():
    funnel, reasons = report_tables.funnel_table(AUGMENT_SUMMARY["tasks"]["sst"])
    assert reasons == ["label_flip", "too_similar"]  # reasons that never occurred are left out
    row = funnel.set_index("class").loc["4"]
    assert (row["requested"], row["generated"], row["accepted"], row["rejected"]) == (1, 4, 1, 2)
    assert row["pass rate"] == pytest.approx(2 / 4)  # accepted + surplus
    assert pd.isna(funnel.set_index("class").loc["0", "pass rate"])  # nothing generated


def test_example_table_shows_accepted_and_rejected_with_source():
    table = report_tables.example_table(EXAMPLES["sst"], per_class=2)
    assert table["status"].tolist() == ["accepted", "rejected", "rejected"]
    assert table["source"].tolist() == ["Great fun ."] * 3
    assert table["reason"].tolist() == ["", "too_similar", "unparsable"]
    assert table["paraphrase"].tolist()[2] == "Sure! Here"  # raw output when nothing parsed


def test_markdown_table_escapes_pipes_and_formats_counts():
    text = markdown_table(pd.DataFrame({"a": ["x|y"], "n": [12345]}))
    assert text.splitlines() == ["| a | n |", "| --- | ---: |", "| x\\|y | 12,345 |"]


def test_report_without_any_input_says_what_is_missing_and_shows_no_numbers():
    sections, counts = report.build_report(report.ReportInputs(), PARAMS)
    md = report.render_markdown(report.TITLE, sections)
    assert counts.empty
    assert "Stage `prepare` has not run" in md
    assert "Augmentation has not run" in md and "Not evaluated yet" in md
    assert not [line for line in md.splitlines() if line.startswith("|")]  # no table at all


def test_full_report_is_self_contained(tmp_path):
    sections, counts = report.build_report(full_inputs(), PARAMS)
    report.write_report(sections, counts, tmp_path)
    html = (tmp_path / "balance.html").read_text()
    md = (tmp_path / "balance.md").read_text()
    assert html.count("data:image/png;base64,") >= 3  # class bars, funnel, confusion
    assert "http://" not in html and "https://" not in html and "<script" not in html
    assert "Really great fun." in md and "too_similar" in md and "| leakage | dev | 1 |" in md
    assert "SST accuracy" in md and "ids-sst-train.csv" in md
    csv = pd.read_csv(tmp_path / "class_counts.csv", dtype={"class": str})
    assert list(csv.columns) == ["task", "class", "step", "count"] and len(csv) == 25


def test_main_reads_the_project_layout(tmp_path, monkeypatch):
    (tmp_path / "data/clean").mkdir(parents=True)
    (tmp_path / "data/clean/summary.json").write_text(json.dumps(CLEAN_SUMMARY))
    (tmp_path / "params.yaml").write_text(
        "report:\n  examples_per_class: 1\n  quarantine_examples: 1\n  audit_examples: 1\n")
    monkeypatch.chdir(tmp_path)
    report.main()
    md = (tmp_path / "reports/balance.md").read_text()
    assert "| 1 | 3 | 2 |" in md  # class 1: raw 3, clean 2
    assert "Augmentation has not run" in md
