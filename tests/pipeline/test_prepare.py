import json
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from minbert.course_io import InputError
from minbert.tasks import TASKS
from pipeline.accounting import audit
from pipeline.prepare import PrepareParams, prepare_task, run

PARAMS = PrepareParams(raw_dir="data/raw", normalize_whitespace=True, unescape_treebank=True,
                       quarantine_empty=True, deduplicate=True, quarantine_label_conflicts=True,
                       remove_leakage=True, max_chars=2000, max_quarantined_share=0.5)


def add_lines(path: Path, *lines: str) -> None:
    path.write_text(path.read_text() + "\n".join(lines) + "\n")


def test_every_row_is_accounted_for(course_dir, tmp_path):
    train = course_dir / "ids-sst-train.csv"
    first = train.read_text().splitlines()[1].split("\t")
    dev_sentence = (course_dir / "ids-sst-dev.csv").read_text().splitlines()[1].split("\t")[2]
    add_lines(train,
              f"900\tdup1\t{first[2]}\t{first[3]}",      # exact duplicate
              "901\tcon1\t Same text .\t1", "902\tcon2\t same  TEXT .\t3",  # label conflict
              f"903\tleak1\t{dev_sentence}\t2",           # leakage into dev
              "904\tbad1\t ok .\tnine")                   # invalid label
    results = run(replace(PARAMS, raw_dir=str(course_dir)), out_dir=tmp_path / "clean")
    counts = results["sst"].summary["ids-sst-train.csv"]
    assert counts["rows_in"] == 30 + 5
    assert counts["deduplicated"] == 1 and counts["leaked"] == 1
    assert counts["quarantined"] == {"invalid_label": 1, "label_conflict": 2}
    assert counts["kept"] + counts["quarantined_total"] + counts["deduplicated"] + \
        counts["leaked"] == counts["rows_in"]
    summary = json.loads((tmp_path / "clean" / "summary.json").read_text())
    assert summary["files"]["ids-sst-train.csv"] == counts
    assert counts["lines"] == len(train.read_text().splitlines()) - 1  # counted in the file
    assert audit(course_dir, tmp_path / "clean") == []  # the written tables explain every line
    q = pd.read_parquet(tmp_path / "clean" / "quarantine.parquet")
    assert set(q["reason"]) == {"invalid_label", "label_conflict"}
    removed = pd.read_parquet(tmp_path / "clean" / "removed.parquet")
    assert sorted(removed["reason"]) == ["duplicate", "leakage"]


def test_outputs_have_the_stable_schema(course_dir, tmp_path):
    run(replace(PARAMS, raw_dir=str(course_dir)), out_dir=tmp_path / "clean")
    for task, spec in TASKS.items():
        for split in spec.files:
            table = pd.read_parquet(tmp_path / "clean" / task / f"{split}.parquet")
            assert table.columns.tolist() == spec.columns(labeled=split != "test")
    assert str(pd.read_parquet(tmp_path / "clean/sts/train.parquet")["label"].dtype) == "float64"
    assert str(pd.read_parquet(tmp_path / "clean/para/dev.parquet")["label"].dtype) == "int64"


def test_switches_turn_rules_off(course_dir):
    train = course_dir / "ids-sst-train.csv"
    first = train.read_text().splitlines()[1].split("\t")
    add_lines(train, f"900\tdup1\t{first[2]}\t{first[3]}")
    on = prepare_task(TASKS["sst"], replace(PARAMS, raw_dir=str(course_dir)))
    off = prepare_task(TASKS["sst"], replace(PARAMS, raw_dir=str(course_dir), deduplicate=False))
    assert on.summary["ids-sst-train.csv"]["deduplicated"] == 1
    assert off.summary["ids-sst-train.csv"]["deduplicated"] == 0
    assert len(off.tables["train"]) == len(on.tables["train"]) + 1


def test_a_bad_file_writes_nothing(course_dir, tmp_path):
    (course_dir / "sts-dev.csv").write_text(",id,sentence1,sentence2,similarity\n0,a,b,c,1\n")
    out = tmp_path / "clean"
    with pytest.raises(InputError, match="sts-dev.csv.*not tab-separated"):
        run(replace(PARAMS, raw_dir=str(course_dir)), out_dir=out)
    assert not out.exists()


REAL = Path("data/raw/quora-train.csv")


@pytest.mark.skipif(not REAL.exists(), reason="real data not pulled (dvc pull)")
def test_real_data(tmp_path):
    results = run(PARAMS, out_dir=tmp_path / "clean")
    q = results["para"].quarantine
    row = q[q["raw"].str.startswith("65479\t")]
    assert row["reason"].tolist() == ["missing_label"]
    for result in results.values():
        for name, c in result.summary.items():
            assert c["rows_in"] == c["kept"] + c["quarantined_total"] + c["deduplicated"] + \
                c["leaked"], name
    assert results["sst"].summary["ids-sst-train.csv"]["rows_in"] == 8544
    assert results["para"].summary["quora-train.csv"]["rows_in"] == 14075
    assert results["sts"].summary["sts-train.csv"]["leaked"] > 0  # the course splits share pairs
