"""Hugging Face checkpoint files: read the weights safely, normalise the key names.

A BERT checkpoint directory holds config.json and ``model.safetensors`` or ``pytorch_model.bin``
(read with ``torch.load(weights_only=True)``: tensors only, no pickled code). Keys may carry the
``bert.`` prefix of task models; heads (``cls.*`` ...) and old buffers are set aside and reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
# Keys a checkpoint may carry that are not part of the encoder: task/pre-training heads and the
# position-id buffer old transformers versions saved. Skipped and reported, never loaded.
IGNORED_PREFIXES = ("cls.", "classifier.", "qa_outputs.", "lm_head.")
IGNORED_KEYS = ("embeddings.position_ids",)


class CheckpointError(ValueError):
    """A backbone directory or checkpoint that cannot be used (names the file and the reason)."""


@dataclass(frozen=True)
class LoadReport:
    """What ``from_pretrained`` did with the checkpoint keys (HF names without ``bert.``)."""

    missing: tuple[str, ...]  # model weights absent from the checkpoint (kept at their init)
    unexpected: tuple[str, ...]  # checkpoint keys the encoder has no place for
    ignored: tuple[str, ...]  # heads (cls.*, ...) and buffers skipped on purpose


def normalize_checkpoint_keys(state_dict: dict[str, torch.Tensor]) -> tuple[dict, list[str]]:
    """Strip ``bert.``, map old TF ``gamma``/``beta`` names; split off heads and buffers."""
    state, ignored = {}, []
    for key, tensor in state_dict.items():
        name = key.removeprefix("bert.")
        name = name.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta",
                                                                          "LayerNorm.bias")
        if name.startswith(IGNORED_PREFIXES) or name in IGNORED_KEYS:
            ignored.append(key)
        else:
            state[name] = tensor
    return state, ignored


def read_checkpoint(directory: Path) -> dict[str, torch.Tensor]:
    """Weights of a checkpoint directory: model.safetensors, else pytorch_model.bin (safe load)."""
    path = next((directory / name for name in WEIGHT_FILES if (directory / name).is_file()), None)
    if path is None:
        raise CheckpointError(f"no weights file (expected one of {list(WEIGHT_FILES)})")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # corrupt/truncated files: say which file
        raise CheckpointError(f"cannot read {path.name} ({error})") from error
