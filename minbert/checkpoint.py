"""Hugging Face checkpoint files: read the weights safely, normalise the key names.

A BERT checkpoint directory holds config.json and ``model.safetensors`` or ``pytorch_model.bin``
(read with ``torch.load(weights_only=True)``: tensors only, no pickled code). Keys may carry the
``bert.`` (or ``mpnet.``) prefix of task models; heads (``cls.*`` ...) and old buffers are set
aside and reported. MPNet checkpoints name the attention weights differently from BERT
(``attention.attn.q`` for ``attention.self.query`` ...): ``bert_to_mpnet_names`` and
``mpnet_to_bert_names`` translate between the two (used by ``minbert/bert.py``'s MPNet switch).
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
TASK_MODEL_PREFIXES = ("bert.", "mpnet.")
# transformers' MPNet names -> our (BERT) module names, inside every encoder layer
MPNET_TO_BERT = (("attention.attn.q.", "attention.self.query."),
                 ("attention.attn.k.", "attention.self.key."),
                 ("attention.attn.v.", "attention.self.value."),
                 ("attention.attn.o.", "attention.output.dense."),
                 ("attention.LayerNorm.", "attention.output.LayerNorm."))


class CheckpointError(ValueError):
    """A backbone directory or checkpoint that cannot be used (names the file and the reason)."""


@dataclass(frozen=True)
class LoadReport:
    """What ``from_pretrained`` did with the checkpoint keys (HF names without ``bert.``)."""

    missing: tuple[str, ...]  # model weights absent from the checkpoint (kept at their init)
    unexpected: tuple[str, ...]  # checkpoint keys the encoder has no place for
    ignored: tuple[str, ...]  # heads (cls.*, ...) and buffers skipped on purpose


def normalize_checkpoint_keys(state_dict: dict[str, torch.Tensor]) -> tuple[dict, list[str]]:
    """Strip ``bert.``/``mpnet.``, map old TF ``gamma``/``beta`` names; split off heads and
    buffers."""
    state, ignored = {}, []
    for key, tensor in state_dict.items():
        name = next((key.removeprefix(p) for p in TASK_MODEL_PREFIXES if key.startswith(p)), key)
        name = name.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta",
                                                                          "LayerNorm.bias")
        if name.startswith(IGNORED_PREFIXES) or name in IGNORED_KEYS:
            ignored.append(key)
        else:
            state[name] = tensor
    return state, ignored


def _rename(state_dict: dict, prefix: str, pairs: tuple[tuple[str, str], ...]) -> dict:
    """Keys under ``prefix`` with the first matching ``(old, new)`` part renamed; order kept."""
    renamed = {}
    for key, tensor in state_dict.items():
        if key.startswith(prefix):
            for old, new in pairs:
                if f".{old}" in key:
                    key = key.replace(f".{old}", f".{new}", 1)
                    break
        renamed[key] = tensor
    return renamed


def mpnet_to_bert_names(state_dict: dict, prefix: str = "") -> dict:
    """``encoder.layer.0.attention.attn.q.weight`` -> ``encoder.layer.0.attention.self.query
    .weight`` (and k, v, o, the attention LayerNorm); other keys unchanged."""
    return _rename(state_dict, prefix, MPNET_TO_BERT)


def bert_to_mpnet_names(state_dict: dict, prefix: str = "") -> dict:
    """The inverse of ``mpnet_to_bert_names``."""
    return _rename(state_dict, prefix, tuple((new, old) for old, new in MPNET_TO_BERT))


def read_checkpoint(directory: Path) -> dict[str, torch.Tensor]:
    """Weights of a checkpoint directory: model.safetensors, else pytorch_model.bin (safe load)."""
    path = next((directory / name for name in WEIGHT_FILES if (directory / name).is_file()), None)
    if path is None:
        raise CheckpointError(
            f"{directory}: no weights file (expected one of {list(WEIGHT_FILES)})")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # corrupt/truncated files: say which file, in one line
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise CheckpointError(
            f"{directory}: cannot read {path.name}, truncated or corrupt? ({reason})") from error
