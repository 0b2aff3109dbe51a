"""Loading a trained multitask model and predicting a table with it, for `evaluate` and `predict`.

A thin layer over the training package: `train.model.MultitaskModel.load` restores the model
from `models/multitask/` and `train.predict.predict_task` runs it in batches. This module only
chooses the device, builds the tokenizer saved next to the model and turns every failure to
load into one `ModelLoadError` with a message a user can act on.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch


class ModelLoadError(RuntimeError):
    """The model directory is missing or cannot be loaded."""


def resolve_device(name: str) -> torch.device:
    """`auto` -> cuda when available, else cpu; `cuda` without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError("device 'cuda' requested but no CUDA GPU is available "
                             "(use --device cpu or auto)")
    if name not in ("cpu", "cuda"):
        raise ModelLoadError(f"unknown device '{name}' (use auto, cpu or cuda)")
    return torch.device(name)


def load_model(model_dir: str | Path, device: torch.device):
    """(model in eval mode on `device`, tokenizer) from a directory written by `train`."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ModelLoadError(f"{model_dir}: model directory not found (run `dvc repro train` "
                             "or pass --model DIR)")
    from train.backbone import load_tokenizer
    from train.model import MultitaskModel

    try:
        model = MultitaskModel.load(model_dir, device)
        tokenizer = load_tokenizer(model_dir, model.max_length)
    except (OSError, ValueError, KeyError, RuntimeError) as error:
        raise ModelLoadError(f"cannot load the model: {error}") from error
    return model, tokenizer


def predict_frame(model, tokenizer, task: str, table: pd.DataFrame, *, batch_size: int,
                  device: torch.device, progress: bool = True) -> np.ndarray:
    """Predictions for every row of `table` (clean schema): SST 0-4, Quora 0/1, STS 0-5."""
    from train.predict import predict_task

    if table.empty:
        return np.zeros(0)
    return predict_task(model, tokenizer, task, table, batch_size=batch_size, device=device,
                        progress=progress)
