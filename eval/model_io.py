"""Loading a trained multitask model and predicting a table with it, for `evaluate` and `predict`.

A thin layer over the shared model code: `minbert.model.MultitaskModel.load` restores the model
from `models/multitask/` and `minbert.predict.predict_task` runs it in batches. This module only
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


def load_model(model_dir: str | Path, device: torch.device):
    """(model in eval mode on `device`, tokenizer) from a directory written by `train`."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ModelLoadError(f"{model_dir}: model directory not found (run `dvc repro train` "
                             "or pass --model DIR)")
    from safetensors import SafetensorError

    from minbert.backbone import load_tokenizer
    from minbert.model import MultitaskModel

    try:
        model = MultitaskModel.load(model_dir, device)
        tokenizer = load_tokenizer(model_dir, model.max_length)
    except SafetensorError as error:  # a truncated or corrupt weights file
        raise ModelLoadError(
            f"{model_dir / 'model.safetensors'}: not a readable safetensors file, truncated or "
            f"corrupt ({_one_line(error)}); retrain with `dvc repro train` or restore the model"
        ) from error
    except (OSError, ValueError, KeyError, RuntimeError) as error:
        raise ModelLoadError(f"{model_dir}: cannot load the model: {_one_line(error)}") from error
    return model, tokenizer


def _one_line(error: Exception) -> str:
    """The first line of an error message (torch's state-dict errors span many lines)."""
    lines = str(error).strip().splitlines()
    return lines[0] + (f" ... ({len(lines) - 1} more lines)" if len(lines) > 1 else "") \
        if lines else type(error).__name__


def predict_frame(model, tokenizer, task: str, table: pd.DataFrame, *, batch_size: int,
                  device: torch.device, progress: bool = True) -> np.ndarray:
    """Predictions for every row of `table` (clean schema): SST 0-4, Quora 0/1, STS 0-5."""
    from minbert.predict import predict_task

    if table.empty:
        return np.zeros(0)
    return predict_task(model, tokenizer, task, table, batch_size=batch_size, device=device,
                        progress=progress)
