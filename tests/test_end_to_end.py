"""The whole pipeline: `dvc repro` in a temporary copy of the project on tiny course files.

Every stage that dvc.yaml defines runs, on a few dozen rows per file, with a random 2-layer
BERT written by the test as the backbone and a handful of generated paraphrases; the test then
checks what each stage wrote, that `dvc status` is clean, that a second `dvc repro` does
nothing and that `dvc plots show` renders.
"""

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from eval.submission import HEADERS, read_submission
from minbert.tasks import TASKS
from tests.dvc_project import ROOT, dvc, make_project, update_params

pytestmark = pytest.mark.slow

TINY_WORDS = ("film movie story actor scene plot music great dull funny sad long short bright "
              "dark clever warm cold slow fast quiet loud . , ' s ?").split()


def write_tiny_backbone(directory: Path) -> Path:
    """A random 2-layer BERT (hidden 32) with a vocabulary covering the fixture words."""
    from minbert.bert import BertConfig, BertModel

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *TINY_WORDS]
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=64)
    BertModel(config).save_pretrained(directory)
    (directory / "vocab.txt").write_text("\n".join(vocab) + "\n")
    return directory


def write_tiny_mpnet(directory: Path) -> Path:
    """A random 2-layer MPNet (hidden 32, relative-position bias), MPNet's special tokens."""
    from minbert.bert import BertConfig, BertModel

    vocab = ["<s>", "<pad>", "</s>", "<unk>", "[UNK]", *TINY_WORDS, "<mask>"]
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=80,
                        pad_token_id=1, layer_norm_eps=1e-5, model_type="mpnet")
    BertModel(config).save_pretrained(directory)
    (directory / "vocab.txt").write_text("\n".join(vocab) + "\n")
    return directory


def tiny_params(backbone: Path) -> dict:
    """Overrides for the sections params.yaml has: tiny targets, few paraphrases, 1 epoch."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    wanted = {
        "balance.max_per_class": 4,
        "augment.ratio": 1.25,  # T = 4 -> 5 rows per class: one paraphrase per class
        "augment.max_rounds": 2,  # few LLM calls: at most 2 per needed paraphrase
        "augment.max_requests_factor": 2.0,
        # plumbing, not LLM quality: a class one paraphrase short must not stop the run
        "validate.max_class_ratio": 1.5,
        "train.backbone": str(backbone),
        "train.epochs": 1,
        "evaluate.batch_size": 16,
        "report.examples_per_class": 1,
    }
    missing = [k for k in wanted if k.split(".")[1] not in params.get(k.split(".")[0], {})]
    assert not missing, f"params.yaml has no {missing}"  # a renamed key must not go unnoticed
    return wanted


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    from tests.course_data import write_course_files

    tmp = tmp_path_factory.mktemp("e2e")
    raw = write_course_files(tmp / "raw", rows_per_class=6)
    backbone = write_tiny_backbone(tmp / "backbone")
    project = make_project(tmp / "project", raw, tiny_params(backbone))
    dvc(project, "repro")
    return project


def test_prepare_accounts_for_every_row(project):
    summary = json.loads((project / "data/clean/summary.json").read_text())
    assert len(summary["files"]) == 8
    for name, c in summary["files"].items():
        assert c["rows_in"] == c["kept"] + c["quarantined_total"] + c["deduplicated"] + \
            c["leaked"], name


def test_balance_caps_every_class(project):
    plan = json.loads((project / "data/balanced/plan.json").read_text())
    for task in TASKS:
        assert plan[task]["target"] == 4
        assert all(c["real"] <= 4 for c in plan[task]["classes"].values())


def test_augment_adds_paraphrases_with_provenance(project):
    summary = json.loads((project / "data/augmented/summary.json").read_text())["tasks"]
    total = 0
    for task in TASKS:
        table = pd.read_parquet(project / f"data/augmented/{task}/train.parquet")
        synthetic = table[table["origin"] == "synthetic"]
        assert summary[task]["requested"] > 0, task
        assert len(synthetic) == summary[task]["accepted"], task
        assert synthetic["id"].str.startswith("syn-").all()
        assert set(synthetic["source_id"]) <= set(table.loc[table["origin"] == "real", "id"])
        total += len(synthetic)
    assert total > 0  # the LLM wrote at least some usable paraphrases


def test_evaluate_writes_metrics_and_course_format_predictions(project):
    metrics = json.loads((project / "reports/eval/metrics.json").read_text())
    for key in ("overall", "sst_accuracy", "para_accuracy", "sts_pearson"):
        assert -1.0 <= metrics[key] <= 1.0, key
    for (task, split) in (("sst", "dev"), ("sst", "test"), ("para", "dev"), ("sts", "dev"),
                          ("sts", "test")):
        path = project / f"predictions/{task}-{split}-output.csv"
        assert path.read_text().startswith(f"id \t {HEADERS[task]} \n")
        clean = pd.read_parquet(project / f"data/clean/{task}/{split}.parquet")
        assert read_submission(path)["id"].tolist() == clean["id"].tolist()


def test_report_shows_every_step_that_ran(project):
    counts = pd.read_csv(project / "reports/class_counts.csv")
    steps = set(counts["step"])
    assert {"raw", "clean", "balanced", "augmented", "synthetic"} <= steps
    html = (project / "reports/balance.html").read_text()
    assert html.count("data:image/png;base64,") >= 3


def test_pipeline_is_up_to_date_and_plots_render(project):
    status = dvc(project, "status")
    assert "up to date" in status.stdout, status.stdout
    again = dvc(project, "repro")
    assert "Running stage" not in again.stdout
    dvc(project, "plots", "show", "-o", "plots_out")
    assert (project / "plots_out" / "index.html").exists()


def test_an_mpnet_backbone_reruns_only_training_and_what_follows(project, tmp_path):
    """`train.backbone: <MPNet dir>` on a copy of the reproduced project: train, evaluate and
    report run again (the data stages are up to date), the saved model is an MPNet, and
    evaluate scores it."""
    copy = shutil.copytree(project, tmp_path / "project", symlinks=True)
    update_params(copy, {"train.backbone": str(write_tiny_mpnet(tmp_path / "mpnet"))})
    out = dvc(copy, "repro").stdout
    ran = {line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage")}
    assert ran == {"train", "evaluate", "report"}, out
    config = json.loads((copy / "models/multitask/config.json").read_text())
    assert config["model_type"] == "mpnet"
    metrics = json.loads((copy / "reports/eval/metrics.json").read_text())
    before = json.loads((project / "reports/eval/metrics.json").read_text())
    assert metrics != before  # another model's scores
    assert -1.0 <= metrics["overall"] <= 1.0
    assert "up to date" in dvc(copy, "status").stdout
