import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from minbert.bert import CheckpointError
from minbert.model import MultitaskModel
from minbert.params import ParamsError
from train.stage import main

from .tiny import params_dict, write_backbone, write_tables

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A tiny backbone plus training and dev tables in the pipeline layout."""
    root = tmp_path_factory.mktemp("project")
    write_backbone(root / "backbone")
    write_tables(root / "data" / "augmented", "train", 30)
    write_tables(root / "data" / "clean", "dev", 12, seed=4)
    return root


def write_params(root: Path, name: str = "params.yaml", backbone=None, **overrides) -> Path:
    section = params_dict(backbone or root / "backbone", **overrides)
    path = root / name
    path.write_text(yaml.safe_dump({"train": section}))
    return path


def args(root: Path, params: Path, out: str = "out") -> list[str]:
    return ["--params", str(params), "--data-dir", str(root / "data" / "augmented"),
            "--clean-dir", str(root / "data" / "clean"), "--model-dir", str(root / out / "model"),
            "--live-dir", str(root / out / "live")]


@pytest.mark.slow
def test_stage_writes_the_model_and_dvclive_logs(project):
    main(args(project, write_params(project, max_train_rows={"sst": 20, "para": 0, "sts": 0})))
    model_dir = project / "out" / "model"
    names = {p.name for p in model_dir.iterdir()}
    assert {"model.safetensors", "config.json", "vocab.txt", "heads.json", "params.json",
            "dev_scores.json"} <= names
    saved = json.loads((model_dir / "params.json").read_text())
    assert saved["max_train_rows"] == {"sst": 20, "para": 0, "sts": 0}
    assert saved["heads"]["sst"]["hidden_sizes"] == [16]
    scores = json.loads((model_dir / "dev_scores.json").read_text())
    metrics = json.loads((project / "out" / "live" / "metrics.json").read_text())
    assert metrics["dev"]["best_overall"] == pytest.approx(scores["overall"])
    assert MultitaskModel.load(model_dir).max_length == 16


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"finetune_backbone": False}, "'train.finetune_backbone' is false"),
        ({"techniques.lora.enabled": True}, "'train.finetune_backbone' is true"),
        ({"heads.para.kind": "siamese"}, "'train.heads.para.kind' must be one of"),
        ({"schedule": "random"}, "'train.schedule' must be one of"),
        ({"task_order": ["sst", "para"]}, "'train.task_order' must list"),
        ({"task_weights": {"sst": 1.0, "para": 1.0}}, "'train.task_weights' must have exactly"),
        ({"max_length": 1000}, "'train.max_length' must be <= 512"),
        ({"techniques.simcse.enabled": True, "techniques.simcse.temperature": 0},
         "'train.techniques.simcse.temperature' must be > 0"),
        ({"techniques.smart.enabled": True, "techniques.smart.steps": 0},
         "'train.techniques.smart.steps' must be >= 1"),
        ({"techniques.smart.enabled": True, "techniques.smart.tasks": ["sst", "nli"]},
         "'train.techniques.smart.tasks' has unknown tasks ['nli']"),
    ],
)
def test_bad_params_fail_before_training(project, overrides, message):
    params = write_params(project, "bad.yaml", **overrides)
    with pytest.raises(ParamsError, match=re.escape(message)):
        main(args(project, params, out="bad"))
    assert not (project / "bad").exists()


def test_unknown_key_is_named(project):
    section = params_dict(project / "backbone")
    section["techniques"]["pcgrad"]["strength"] = 2
    path = project / "unknown.yaml"
    path.write_text(yaml.safe_dump({"train": section}))
    with pytest.raises(ParamsError, match="unknown key 'train.techniques.pcgrad.strength'"):
        main(args(project, path, out="bad"))


def test_bad_backbone_directory_fails_before_training(project, tmp_path):
    params = write_params(project, "nobackbone.yaml", backbone=tmp_path / "nowhere")
    with pytest.raises(CheckpointError, match="does not exist"):
        main(args(project, params, out="bad"))
    (tmp_path / "empty").mkdir()
    params = write_params(project, "nobackbone.yaml", backbone=tmp_path / "empty")
    with pytest.raises(CheckpointError, match="missing config.json"):
        main(args(project, params, out="bad"))
    assert not (project / "bad").exists()


def test_max_length_beyond_the_backbone_positions_is_an_error(project):
    params = write_params(project, "long.yaml", max_length=100)  # tiny backbone has 64
    with pytest.raises(ParamsError, match="max_position_embeddings 64"):
        main(args(project, params, out="bad"))


def test_missing_training_table_names_the_file(project, tmp_path):
    params = write_params(project)
    argv = args(project, params, out="bad")
    argv[argv.index("--data-dir") + 1] = str(tmp_path / "augmented")
    with pytest.raises(FileNotFoundError, match=r"augmented/sst/train.parquet: missing"):
        main(argv)


@pytest.mark.slow
@pytest.mark.parametrize(
    "overrides",
    [{"grad_accum": 2, "techniques.mnrl.enabled": True, "techniques.mnrl.batch_size": 4},
     {"techniques.pcgrad.enabled": True, "techniques.smart.enabled": True}],
)
def test_torchrun_two_cpu_workers_train_and_save(project, overrides):
    """Plain DDP (with accumulation) and PCGrad's own gradient all-reduce; the loop checks
    at the end that both workers hold the same weights."""
    params = write_params(project, "ddp.yaml", **overrides)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "train.stage", *args(project, params, out="ddp")]
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    model_dir = project / "ddp" / "model"
    assert (model_dir / "model.safetensors").is_file()
    assert json.loads((model_dir / "dev_scores.json").read_text())["epoch"] in (1, 2)
    assert "2 workers" in result.stderr


@pytest.mark.slow
def test_embedded_minilm_backbone_trains(project):
    params = write_params(project, "minilm.yaml", backbone="minilm", epochs=1, max_length=32,
                          **{"heads.para.kind": "cross"})
    main(args(project, params, out="minilm"))
    loaded = MultitaskModel.load(project / "minilm" / "model")
    assert loaded.bert.config.hidden_size == 384 and loaded.bert.config.num_hidden_layers == 6


@pytest.mark.slow
def test_max_rows_sample_the_training_and_dev_tables(project, caplog):
    params = write_params(project, "rows.yaml", epochs=1,
                          max_train_rows={"sst": 10, "para": 0, "sts": 7},
                          max_dev_rows={"sst": 5, "para": 6, "sts": 0})
    with caplog.at_level("INFO"):
        main(args(project, params, out="rows"))
    assert "training rows {'sst': 10, 'para': 30, 'sts': 7}" in caplog.text
    assert "dev rows {'sst': 5, 'para': 6, 'sts': 12}" in caplog.text
