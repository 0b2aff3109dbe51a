"""The label audit stage: planted wrong labels are found; quarantine keeps the accounting exact."""

import hashlib
import zlib
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from minbert.tasks import TASKS, class_counts
from pipeline import audit, balance
from pipeline.audit import AuditEncoderParams, AuditParams, audit_task

PARAMS = AuditParams(mode="report", tasks=("sst", "para", "sts"), folds=3, probe_c=1.0,
                     ridge_alpha=1.0, filter_by="prune_by_noise_rate", max_label_quality=1.0,
                     min_distance={"sst": 1, "para": 1, "sts": 0.0}, seed=0,
                     encoder=AuditEncoderParams(backbone="minilm", max_length=64, batch_size=32))


def topic_embed(texts: list[str]) -> np.ndarray:
    """A sentence -> the direction of its topic word ("topic3" -> axis 3) plus seeded noise:
    a probe learns the topics, so a row whose label is not its topic stands out."""
    out = np.zeros((len(texts), 8))
    for i, text in enumerate(texts):
        rng = np.random.default_rng(zlib.crc32(text.encode()))
        topic = int(text.split()[0].removeprefix("topic"))
        out[i, topic] = 1.0
        out[i] += rng.normal(0, 0.1, 8)
    return out


def sst_table(per_class: int = 12, planted: int = 7) -> pd.DataFrame:
    """SST rows whose label is their topic, except row `planted` (topic 4, labeled 0)."""
    rows = [{"id": f"r{c}-{k}", "sentence": f"topic{c} sentence {k}", "label": c}
            for c in range(5) for k in range(per_class)]
    rows[planted]["sentence"] = "topic4 sentence planted"
    return pd.DataFrame(rows)


def para_table(per_class: int = 15) -> pd.DataFrame:
    """Duplicates: both questions of one topic; non-duplicates: two topics. One duplicate
    labeled 0 is planted."""
    rows = []
    for k in range(per_class):
        rows.append({"id": f"d{k}", "sentence1": f"topic{k % 4} q {k}",
                     "sentence2": f"topic{k % 4} other {k}", "label": 1})
        rows.append({"id": f"n{k}", "sentence1": f"topic{k % 4} q {k}",
                     "sentence2": f"topic{(k + 1) % 4 + 4} other {k}", "label": 0})
    rows.append({"id": "planted", "sentence1": "topic2 q planted",
                 "sentence2": "topic2 other planted", "label": 0})
    return pd.DataFrame(rows)


def sts_table(n: int = 40) -> pd.DataFrame:
    """Score 5 when both sides share a topic, 0 otherwise; one same-topic pair scored 0."""
    rows = [{"id": f"s{k}", "sentence1": f"topic{k % 4} a {k}",
             "sentence2": f"topic{k % 4 if k % 2 else k % 4 + 4} b {k}",
             "label": 5.0 if k % 2 else 0.0} for k in range(n)]
    rows.append({"id": "planted", "sentence1": "topic1 a planted",
                 "sentence2": "topic1 b planted", "label": 0.0})
    return pd.DataFrame(rows)


def test_a_planted_wrong_sentiment_label_is_found():
    suspects, summary = audit_task("sst", sst_table(), topic_embed, PARAMS)
    assert suspects["id"].tolist()[:1] == ["r0-7"]  # the worst suspect
    top = suspects.iloc[0]
    assert (top["given_label"], top["suggested_label"], top["class"]) == (0.0, 4.0, "0")
    assert top["confidence"] > 0.5 and top["label_quality"] < 0.2
    assert summary["suspects"] == len(suspects) <= 3
    assert summary["classes"]["0"]["suspects"] >= 1 and summary["rows"] == 60
    assert summary["probe_accuracy"] > 0.9


def test_a_planted_wrong_duplicate_label_is_found():
    suspects, _ = audit_task("para", para_table(), topic_embed, PARAMS)
    assert "planted" in suspects["id"].tolist()[:2]
    planted = suspects.set_index("id").loc["planted"]
    assert (planted["given_label"], planted["suggested_label"]) == (0.0, 1.0)
    assert planted["sentence1"] == "topic2 q planted" and pd.isna(planted["sentence"])


def test_a_planted_wrong_similarity_score_is_found():
    suspects, summary = audit_task("sts", sts_table(), topic_embed, PARAMS)
    assert suspects["id"].iloc[0] == "planted"
    assert suspects["suggested_label"].iloc[0] > 3.0  # the probe expects a similar pair
    assert summary["probe_pearson"] > 0.8


def test_a_neighbouring_class_is_a_suspect_only_below_min_distance():
    table = sst_table()
    table.loc[7, "sentence"] = "topic1 sentence planted"  # labeled 0, reads as class 1
    near, _ = audit_task("sst", table, topic_embed, PARAMS)
    assert "r0-7" in set(near["id"])
    strict = replace(PARAMS, min_distance={"sst": 2})
    far, _ = audit_task("sst", table, topic_embed, strict)
    assert "r0-7" not in set(far["id"])
    assert "r0-7" in set(audit_task("sst", sst_table(), topic_embed, strict)[0]["id"])  # 0 vs 4


def test_max_label_quality_keeps_only_confident_suspects():
    _, summary = audit_task("sst", sst_table(), topic_embed, PARAMS)
    none, _ = audit_task("sst", sst_table(), topic_embed, replace(PARAMS, max_label_quality=0.0))
    assert summary["suspects"] >= 1 and none.empty


def test_the_report_lists_suspects_per_class_and_the_counts(tmp_path):
    from pipeline import report
    from pipeline.report_render import render_markdown

    clean = write_clean(tmp_path / "clean", tables())
    summary = audit.run(replace(PARAMS, mode="quarantine"), topic_embed, clean, tmp_path / "a")
    inputs = report.ReportInputs(audit_summary=summary,
                                 audit_issues=pd.read_parquet(tmp_path / "a" / "issues.parquet"))
    params = report.ReportParams(examples_per_class=1, quarantine_examples=1, audit_examples=2)
    text = render_markdown("r", [report.audit_section(inputs, params)])
    assert "Mode `quarantine`" in text and "topic4 sentence planted" in text
    assert "topic2 q planted ⟂ topic2 other planted" in text
    assert f"{summary['tasks']['sst']['suspects']} suspect rows of 60" in text
    absent = render_markdown("r", [report.audit_section(report.ReportInputs(), params)])
    assert "has not run" in absent


def test_a_clean_table_has_few_suspects():
    clean = sst_table().assign(sentence=[f"topic{c} sentence {k}" for c in range(5)
                                         for k in range(12)])
    suspects, _ = audit_task("sst", clean, topic_embed, PARAMS)
    assert len(suspects) <= 1


def test_a_class_too_small_to_cross_validate_is_skipped_and_said_so():
    tiny = sst_table(per_class=1, planted=0)
    suspects, summary = audit_task("sst", tiny, topic_embed, PARAMS)
    assert suspects.empty and "fewer than 2 rows" in summary["skipped"]


def write_clean(root, tables: dict[str, pd.DataFrame]):
    for task, df in tables.items():
        (root / task).mkdir(parents=True, exist_ok=True)
        df.to_parquet(root / task / "train.parquet", index=False)
    return root


def tables() -> dict[str, pd.DataFrame]:
    return {"sst": sst_table(), "para": para_table(), "sts": sts_table()}


def test_quarantined_label_issues_keep_the_accounting_exact(tmp_path):
    clean = write_clean(tmp_path / "clean", tables())
    summary = audit.run(replace(PARAMS, mode="quarantine"), topic_embed, clean, tmp_path / "audit")
    quarantine = pd.read_parquet(tmp_path / "audit" / "quarantine.parquet")
    issues = pd.read_parquet(tmp_path / "audit" / "issues.parquet")
    assert set(quarantine["reason"]) == {"label_issue"} and set(quarantine["split"]) == {"train"}
    assert sorted(quarantine["id"]) == sorted(issues["id"]) and "planted" in set(quarantine["id"])
    plan = balance.run(balance.BalanceParams(max_per_class=1000, seed=0), clean,
                       tmp_path / "balanced", tmp_path / "audit")
    for task, df in tables().items():
        kept = pd.read_parquet(tmp_path / "balanced" / task / "train.parquet")
        gone = quarantine[quarantine["task"] == task]
        # every clean row is either kept or quarantined, never both, never lost
        assert len(kept) + len(gone) == len(df)
        assert set(kept["id"]) | set(gone["id"]) == set(df["id"])
        assert not set(kept["id"]) & set(gone["id"])
        assert summary["tasks"][task]["quarantined"] == len(gone)
        label_issue = {c: v["label_issue"] for c, v in plan[task]["classes"].items()}
        assert label_issue == class_counts(task, gone["label"])
        assert {c: v["clean"] for c, v in plan[task]["classes"].items()} == \
            class_counts(task, df["label"])


def test_a_quarantine_that_does_not_match_the_table_stops_balance(tmp_path):
    train = sst_table()
    listed = pd.DataFrame({"task": ["sst", "sst"], "id": ["r0-1", "not-a-row"]})
    with pytest.raises(ValueError, match=r"lists 2 rows but 1 training rows match.*not-a-row"):
        balance.drop_quarantined(train, listed, "sst")
    twice = pd.concat([train, train.iloc[[3]]])
    with pytest.raises(ValueError, match="r0-3"):
        balance.drop_quarantined(twice, listed.iloc[[0]].assign(id="r0-3"), "sst")


def md5(path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_report_mode_quarantines_nothing_and_its_file_never_changes(tmp_path):
    """In report mode quarantine.parquet (balance's only audit input) has no rows and the same
    bytes whatever the audit's params: changing them does not rerun balance."""
    clean = write_clean(tmp_path / "clean", tables())
    first = audit.run(PARAMS, topic_embed, clean, tmp_path / "a")
    other = replace(PARAMS, folds=4, probe_c=0.1, tasks=("sst", "para"))
    audit.run(other, topic_embed, clean, tmp_path / "b")
    assert len(pd.read_parquet(tmp_path / "a" / "quarantine.parquet")) == 0
    assert md5(tmp_path / "a" / "quarantine.parquet") == md5(tmp_path / "b" / "quarantine.parquet")
    assert len(pd.read_parquet(tmp_path / "a" / "issues.parquet")) == sum(
        t["suspects"] for t in first["tasks"].values()) > 0


def test_the_audit_reads_the_training_split_only(tmp_path):
    clean = write_clean(tmp_path / "clean", tables())
    for task in TASKS:  # dev and test tables that would fail if read
        (clean / task / "dev.parquet").write_text("not parquet")
        (clean / task / "test.parquet").write_text("not parquet")
    audit.run(replace(PARAMS, mode="quarantine"), topic_embed, clean, tmp_path / "audit")
    assert set(pd.read_parquet(tmp_path / "audit" / "quarantine.parquet")["id"]) <= set(
        pd.concat(tables().values())["id"])


def test_unknown_task_is_a_one_line_error(tmp_path):
    with pytest.raises(ValueError, match=r"min_distance: unknown task\(s\) \['nli'\]"):
        audit.run(replace(PARAMS, tasks=("nli",)), topic_embed, tmp_path, tmp_path / "audit")


@pytest.mark.slow
def test_the_real_encoder_finds_a_flipped_sentiment():
    """Frozen MiniLM embeddings: a clearly positive review labeled very negative is found."""
    positive = ["A wonderful , moving film with superb acting .", "Brilliant and delightful .",
                "One of the best movies of the year .", "A joyous , funny and warm story .",
                "Gorgeous , thrilling and smart .", "I loved every minute of it .",
                "An uplifting triumph .", "Charming , clever and beautifully made .",
                "A masterpiece of warmth and wit .", "Great fun from start to finish ."]
    negative = ["A dull , tedious mess .", "Boring and painfully slow .",
                "One of the worst movies of the year .", "A lifeless , stupid script .",
                "Awful acting and an ugly plot .", "I hated every minute of it .",
                "A depressing failure .", "Clumsy , dreary and badly made .",
                "A disaster of noise and cliches .", "Tiresome from start to finish ."]
    rows = [(s, 4) for s in positive] + [(s, 0) for s in negative]
    rows[3] = (rows[3][0], 0)  # planted: "A joyous , funny and warm story ." labeled 0
    table = pd.DataFrame({"id": [f"r{i}" for i in range(len(rows))],
                          "sentence": [s for s, _ in rows], "label": [c for _, c in rows]})
    # only classes 0 and 4 occur: audit them as a two-class table
    table["label"] = table["label"].map({0: 0, 4: 1})
    embed = audit.sentence_embedder(PARAMS.encoder)
    features = audit.probe_features("sst", table, embed)
    rows, _ = audit.classification_issues(features, table["label"].to_numpy(), 2, PARAMS, 3)
    assert rows["is_issue"].tolist().index(True) == 3
    assert rows.loc[3, "suggested_label"] == 1.0 and rows.loc[3, "label_quality"] < 0.5


@pytest.mark.slow
def test_dvc_reruns_balance_only_when_the_audit_quarantines(course_dir, tmp_path):
    """`dvc repro balance`: in report mode a change of the audit's params reruns the audit but
    not balance; quarantine mode (rows to drop) reruns balance, which drops them."""
    import json

    from tests.dvc_project import dvc, make_project, update_params

    project = make_project(tmp_path / "project", course_dir,
                           {"audit.tasks": ["sst", "para", "sts"], "audit.min_distance.sts": 0.5})
    first = dvc(project, "repro", "balance")
    assert "Running stage 'audit'" in first.stdout
    update_params(project, {"audit.probe_c": 0.5})
    report_change = dvc(project, "repro", "balance")
    assert "Running stage 'audit'" in report_change.stdout
    assert "Running stage 'balance'" not in report_change.stdout
    update_params(project, {"audit.mode": "quarantine"})
    quarantine = dvc(project, "repro", "balance")
    assert "Running stage 'balance'" in quarantine.stdout
    dropped = pd.read_parquet(project / "data/audit/quarantine.parquet")
    assert len(dropped) > 0 and set(dropped["reason"]) == {"label_issue"}
    plan = json.loads((project / "data/balanced/plan.json").read_text())
    assert sum(c["label_issue"] for t in plan.values() for c in t["classes"].values()) == len(
        dropped)
