"""Tiny balanced data, a deterministic fake generation backend, a fake similarity and a fake
embedding, shared by the augment tests (and by the subprocess of the kill -9 test)."""

from __future__ import annotations

import dataclasses
import json
import time
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from augment.engine import Completion
from augment.params import load_params
from minbert.tasks import TASKS, class_names

ROOT = Path(__file__).resolve().parents[2]
ADJECTIVES = ["gentle", "clumsy", "bright", "quiet", "bold", "odd", "warm", "grim"]
FILLERS = ["indeed", "truly", "frankly", "clearly", "plainly", "surely", "really", "simply"]

# real rows per class; the target of every class is 3
COUNTS = {"sst": [3, 2, 3, 1, 3], "para": [3, 2], "sts": [3, 1, 3, 2, 3]}
STS_LABELS = [0.5, 1.5, 2.5, 3.5, 4.5]


def _sentence(task: str, cls: int, i: int, side: int = 0) -> str:
    adj = ADJECTIVES[(cls * 3 + i + side) % len(ADJECTIVES)]
    return f"the {task} story number {i} of group {cls} side {side} felt {adj} to everyone"


def write_balanced(directory: Path, counts: dict[str, list[int]] = COUNTS) -> Path:
    """data/balanced-like tables and plan.json (target 3 for every class)."""
    plan = {}
    for task, per_class in counts.items():
        rows = []
        for c, n in enumerate(per_class):
            for i in range(n):
                label = STS_LABELS[c] if task == "sts" else c
                texts = [_sentence(task, c, i, s) for s in range(len(TASKS[task].text_columns))]
                rows.append([f"{task}{c}{i:02d}abc", *texts, label])
        table = pd.DataFrame(rows, columns=TASKS[task].columns())
        for col in ["id", *TASKS[task].text_columns]:
            table[col] = table[col].astype("string")
        (directory / task).mkdir(parents=True, exist_ok=True)
        table.to_parquet(directory / task / "train.parquet")
        plan[task] = {"target": 3, "classes": {
            name: {"clean": n, "real": n, "target": 3}
            for name, n in zip(class_names(task), per_class, strict=True)}}
    (directory / "plan.json").write_text(json.dumps(plan))
    return directory


def make_params(ratio: float, **changes):
    params = load_params(str(ROOT / "params.yaml"))
    prompts = dataclasses.replace(params.prompts,
                                  template_file=str(ROOT / "augment" / "templates.yaml"))
    return dataclasses.replace(params, ratio=ratio, **{"prompts": prompts, **changes})


class FakeBackend:
    """Deterministic completions from the source sentence and the seed.

    seed % 5 == 0 -> a bare preamble (rejected: empty); seed % 5 == 1 -> off-topic text
    (rejected: drift by `fake_similarity`); otherwise a valid paraphrase."""

    name = "fake"
    model = "echo-1"

    def __init__(self, chunk_size: int = 4, fail_after: int | None = None, delay: float = 0.0):
        self.chunk_size = chunk_size
        self.fail_after = fail_after
        self.delay = delay
        self.generated: list[tuple] = []  # (messages, seed) of every completion made

    def generate(self, requests, sampling, progress=None):
        out = []
        for r in requests:
            per = []
            for seed in r.seeds:
                if self.fail_after is not None and len(self.generated) >= self.fail_after:
                    raise RuntimeError("injected failure")
                time.sleep(self.delay)
                per.append(Completion(fake_text(r.messages, seed), 9, "stop"))
                self.generated.append((r.messages, seed))
            out.append(per)
            if progress:
                progress(len(per), 9 * len(per))
        return out


def fake_text(messages, seed: int) -> str:
    source = messages[-1][1].rsplit(": ", 1)[-1]
    if seed % 5 == 0:
        return "Here is the paraphrase:"
    if seed % 5 == 1:
        return "DRIFT completely unrelated words about cooking pasta at home tonight"
    return f"Paraphrase: {source} {FILLERS[seed % len(FILLERS)]} {seed % 1000}"


def fake_similarity(a, b) -> np.ndarray:
    return np.array([0.1 if "DRIFT" in y else 0.9 for y in b])


def fake_embed(texts) -> np.ndarray:
    """Bag-of-words unit vectors: each word a fixed random direction (seeded by its crc32)."""
    out = np.zeros((len(texts), 64))
    for i, text in enumerate(texts):
        for word in text.lower().split():
            out[i] += np.random.default_rng(zlib.crc32(word.encode())).normal(size=64)
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)
