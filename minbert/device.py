"""The torch device a stage runs on, from its `device` param or option (auto | cpu | cuda)."""

from __future__ import annotations

import torch

DEVICES = ("auto", "cpu", "cuda")


class DeviceError(ValueError):
    """The device asked for does not exist here."""


def resolve_device(name: str, index: int = 0) -> torch.device:
    """`auto` -> cuda:`index` when a GPU is there, else cpu; `cuda` without a GPU is an error."""
    if name not in DEVICES:
        raise DeviceError(f"unknown device '{name}' (use auto, cpu or cuda)")
    if name == "cuda" and not torch.cuda.is_available():
        raise DeviceError("device 'cuda' requested but no CUDA GPU is available (use cpu or auto)")
    if name == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", index)
