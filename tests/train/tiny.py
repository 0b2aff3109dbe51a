"""Tiny fixtures for the training tests: a 2-layer random BERT with a 60-word vocabulary,
small task tables in the clean schema, and the `train:` params with test-sized values."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

from minbert.bert import BertConfig, BertModel
from minbert.params import from_dict
from train.params import TrainParams, validate

WORDS = (
    "the a movie film story actor plot good bad great awful fine boring funny sad happy "
    "what how why is are do does can i you my to of and in best way learn python money make "
    "who was first man on moon dog cat runs sleeps fast slow big small red blue car house"
).split()
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def write_backbone(directory: Path, seed: int = 0) -> Path:
    """config.json + vocab.txt + model.safetensors of a random 2-layer BERT (hidden 32)."""
    directory.mkdir(parents=True, exist_ok=True)
    vocab = SPECIAL + sorted(set(WORDS))
    (directory / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    torch.manual_seed(seed)
    BertModel(config).save_pretrained(directory)
    return directory


def _sentence(rng: np.random.Generator) -> str:
    return " ".join(rng.choice(WORDS, size=int(rng.integers(3, 10))))


def task_tables(n: int, seed: int = 0) -> dict[str, pd.DataFrame]:
    """{task: table} with n rows each, clean schema, every class present."""
    rng = np.random.default_rng(seed)
    ids = [f"{seed}-{i:04x}" for i in range(n)]
    sst = pd.DataFrame(
        {"id": ids, "sentence": [_sentence(rng) for _ in range(n)], "label": np.arange(n) % 5}
    )
    first = [_sentence(rng) for _ in range(n)]
    dup = np.arange(n) % 2
    second = [s if d else _sentence(rng) for s, d in zip(first, dup, strict=True)]
    para = pd.DataFrame({"id": ids, "sentence1": first, "sentence2": second, "label": dup})
    sts = pd.DataFrame(
        {
            "id": ids,
            "sentence1": [_sentence(rng) for _ in range(n)],
            "sentence2": first,
            "label": np.round(rng.uniform(0, 5, n), 1),
        }
    )
    return {"sst": sst, "para": para, "sts": sts}


def write_tables(root: Path, split: str, n: int, seed: int = 0) -> Path:
    for task, df in task_tables(n, seed).items():
        (root / task).mkdir(parents=True, exist_ok=True)
        df.to_parquet(root / task / f"{split}.parquet", index=False)
    return root


def params_dict(backbone: str | Path, **overrides) -> dict:
    """The `train:` section with test-sized values; overrides use dotted keys."""
    base = yaml.safe_load((Path(__file__).resolve().parents[2] / "params.yaml").read_text())
    section = copy.deepcopy(base["train"])
    section.update(
        backbone=str(backbone),
        max_length=16,
        epochs=2,
        batch_size=8,
        eval_batch_size=16,
        device="cpu",
        grad_accum=1,
        max_train_rows={"sst": 0, "para": 0, "sts": 0},
        max_dev_rows={"sst": 0, "para": 0, "sts": 0},
    )
    section["heads"]["sst"]["hidden_sizes"] = [16]
    section["heads"]["para"]["hidden_sizes"] = [16]
    section["heads"]["sts"]["hidden_sizes"] = [16]
    for dotted, value in overrides.items():
        node = section
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node[key]
        node[leaf] = value
    return section


def make_params(backbone: str | Path, **overrides) -> TrainParams:
    params = from_dict(TrainParams, params_dict(backbone, **overrides), where="train")
    validate(params)
    return params
