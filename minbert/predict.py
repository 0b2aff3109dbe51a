"""Batched prediction with a multitask model, shared by the per-epoch dev evaluation of the
`train` stage and by the `evaluate` stage.

    model = MultitaskModel.load("models/multitask", device)
    tokenizer = load_tokenizer("models/multitask", model.max_length)
    preds = predict_task(model, tokenizer, "sts", dev_df, batch_size=128, device=device)
    score_task("sts", preds, dev_df["label"].to_numpy())   # {"pearson": 0.81}

Rows are run longest first in length-sorted batches (little padding) and returned in the
table's order: sst -> class 0-4 (int64), para -> 0/1 (int64), sts -> score in [0, 5] (float64).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import pandas as pd
import torch
from tokenizers import Tokenizer
from tqdm import tqdm

from minbert import metrics
from minbert.bert import dynamic_shape_attention
from minbert.data import encode_rows, is_cross, to_device, token_lengths
from minbert.heads import predictions
from minbert.model import MultitaskModel

TASK_METRIC = {"sst": "accuracy", "para": "accuracy", "sts": "pearson"}


@contextlib.contextmanager
def forward_context(device: torch.device) -> Iterator[None]:
    """Forward passes on length-bucketed batches: on CUDA bf16 autocast and attention kernels
    that need no per-shape setup (``dynamic_shape_attention``); a no-op context elsewhere."""
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"), \
            dynamic_shape_attention(device):
        yield


@torch.inference_mode()
def predict_task(
    model: MultitaskModel,
    tokenizer: Tokenizer,
    task: str,
    df: pd.DataFrame,
    *,
    batch_size: int,
    device: str | torch.device,
    progress: bool = False,
) -> np.ndarray:
    """Predictions for every row of `df` (clean-schema text columns), in row order."""
    device = torch.device(device)
    was_training = model.training
    model.eval()
    cross = is_cross(task, model.heads.para.kind)
    order = np.argsort(-token_lengths(tokenizer, task, df, cross), kind="stable")
    dtype = np.float64 if task == "sts" else np.int64
    result = np.empty(len(df), dtype=dtype)
    starts = range(0, len(df), batch_size)
    for start in tqdm(starts, desc=f"predict {task}", disable=not progress):
        rows = order[start : start + batch_size]
        inputs = to_device(encode_rows(tokenizer, task, df.iloc[rows], cross), device)
        with forward_context(device):
            output, _ = model.task_output(task, inputs)
        result[rows] = predictions(task, output).float().cpu().numpy().astype(dtype)
    model.train(was_training)
    return result


def score_task(task: str, preds: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """{"accuracy": ...} for sst and para, {"pearson": ...} for sts."""
    if TASK_METRIC[task] == "accuracy":
        return {"accuracy": metrics.accuracy(preds, labels)}
    return {"pearson": metrics.pearson(preds, labels)}


def evaluate_dev(
    model: MultitaskModel,
    tokenizer: Tokenizer,
    dev_tables: dict[str, pd.DataFrame],
    *,
    batch_size: int,
    device: torch.device,
) -> dict[str, float]:
    """Dev metrics of all three tasks and the overall score, flat: sst_accuracy, ..., overall."""
    scores = {}
    for task, df in dev_tables.items():
        preds = predict_task(model, tokenizer, task, df, batch_size=batch_size, device=device)
        for name, value in score_task(task, preds, df["label"].to_numpy()).items():
            scores[f"{task}_{name}"] = value
    scores["overall"] = metrics.overall_score(
        scores["sst_accuracy"], scores["para_accuracy"], scores["sts_pearson"]
    )
    return scores
