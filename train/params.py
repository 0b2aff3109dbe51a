"""The `train:` section of params.yaml as frozen dataclasses, and its validation.

`load_train_params()` reads the section (unknown or missing keys are errors naming the key);
`validate()` rejects combinations that make no sense before any model is built or trained.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from minbert.heads import HeadsParams
from minbert.params import ParamsError, load_section
from minbert.tasks import TASKS

SCHEDULES = ("round_robin", "sequential", "proportional", "annealed")


@dataclass(frozen=True)
class PcgradParams:
    enabled: bool


@dataclass(frozen=True)
class SmartParams:
    enabled: bool
    weight: float  # lambda
    epsilon: float  # inf-norm radius of the perturbation
    step_size: float
    steps: int
    noise_std: float
    tasks: tuple[str, ...]  # task losses that get the regularizer


@dataclass(frozen=True)
class LoraParams:
    enabled: bool
    rank: int
    alpha: float
    dropout: float
    targets: tuple[str, ...]  # names of the linear layers that get adapters


@dataclass(frozen=True)
class SimcseParams:
    enabled: bool
    weight: float
    temperature: float
    batch_size: int


@dataclass(frozen=True)
class MnrlParams:
    enabled: bool
    weight: float
    scale: float
    batch_size: int


@dataclass(frozen=True)
class TechniquesParams:
    pcgrad: PcgradParams
    smart: SmartParams
    lora: LoraParams
    simcse: SimcseParams
    mnrl: MnrlParams


@dataclass(frozen=True)
class TrainParams:
    backbone: str
    max_length: int
    finetune_backbone: bool
    heads: HeadsParams
    schedule: Literal["round_robin", "sequential", "proportional", "annealed"]
    task_order: tuple[str, ...]
    epochs: int
    batch_size: int
    eval_batch_size: int
    lr_backbone: float
    lr_heads: float
    weight_decay: float
    warmup_ratio: float
    grad_clip: float
    grad_accum: int
    bucket_multiplier: int
    task_weights: dict[str, float]
    synthetic_weight: float  # loss weight of a synthetic row (1 = like a real row)
    max_train_rows: dict[str, int]
    max_dev_rows: dict[str, int]
    seed: int
    device: Literal["auto", "cpu", "cuda"]
    techniques: TechniquesParams


def load_train_params(path: str | Path = "params.yaml") -> TrainParams:
    params = load_section("train", TrainParams, path)
    validate(params)
    return params


def _require(ok: bool, key: str, reason: str) -> None:
    if not ok:
        raise ParamsError(f"'train.{key}' {reason}")


def _check_task_keys(mapping: object, key: str) -> None:
    keys = set(mapping)  # type: ignore[call-overload]
    _require(
        keys == set(TASKS), key, f"must have exactly the keys {sorted(TASKS)}, got {sorted(keys)}"
    )


def validate(p: TrainParams) -> None:
    """Raise ParamsError naming the key for any value or combination that makes no sense."""
    lora = p.techniques.lora
    _require(
        p.finetune_backbone or lora.enabled,
        "finetune_backbone",
        "is false and techniques.lora.enabled is false: nothing in the backbone would train "
        "(turn one of them on)",
    )
    _require(
        not (p.finetune_backbone and lora.enabled),
        "finetune_backbone",
        "is true and techniques.lora.enabled is true: LoRA trains adapters on a frozen "
        "backbone (turn one of them off)",
    )
    _require(sorted(p.task_order) == sorted(TASKS), "task_order", f"must list {sorted(TASKS)}")
    _check_task_keys(p.task_weights, "task_weights")
    _check_task_keys(p.max_train_rows, "max_train_rows")
    _check_task_keys(p.max_dev_rows, "max_dev_rows")
    for task in TASKS:
        _require(p.task_weights[task] >= 0, f"task_weights.{task}", "must be >= 0")
        for key in ("max_train_rows", "max_dev_rows"):
            _require(getattr(p, key)[task] >= 0, f"{key}.{task}", "must be >= 0 (0 = all)")
    _require(any(p.task_weights[t] > 0 for t in TASKS), "task_weights", "are all 0")
    _require(p.synthetic_weight >= 0, "synthetic_weight", "must be >= 0 (1 = like real rows)")
    for key in ("max_length", "epochs", "batch_size", "eval_batch_size", "grad_accum"):
        _require(getattr(p, key) >= 1, key, "must be >= 1")
    _require(p.max_length <= 512, "max_length", "must be <= 512")
    _require(p.bucket_multiplier >= 1, "bucket_multiplier", "must be >= 1")
    _require(p.lr_backbone > 0 and p.lr_heads > 0, "lr_backbone", "and lr_heads must be > 0")
    _require(p.weight_decay >= 0, "weight_decay", "must be >= 0")
    _require(0 <= p.warmup_ratio < 1, "warmup_ratio", "must be in [0, 1)")
    _require(p.grad_clip >= 0, "grad_clip", "must be >= 0 (0 = no clipping)")
    _require(0 <= p.heads.dropout < 1, "heads.dropout", "must be in [0, 1)")
    _validate_techniques(p.techniques)


def _validate_techniques(t: TechniquesParams) -> None:
    key = "techniques"
    if t.smart.enabled:
        _require(t.smart.weight >= 0, f"{key}.smart.weight", "must be >= 0")
        _require(t.smart.steps >= 1, f"{key}.smart.steps", "must be >= 1")
        _require(t.smart.epsilon > 0, f"{key}.smart.epsilon", "must be > 0")
        _require(t.smart.step_size > 0, f"{key}.smart.step_size", "must be > 0")
        unknown = sorted(set(t.smart.tasks) - set(TASKS))
        _require(
            not unknown,
            f"{key}.smart.tasks",
            f"has unknown tasks {unknown} (known: {sorted(TASKS)})",
        )
        _require(len(t.smart.tasks) > 0, f"{key}.smart.tasks", "must name at least one task")
    if t.lora.enabled:
        _require(t.lora.rank >= 1, f"{key}.lora.rank", "must be >= 1")
        _require(len(t.lora.targets) > 0, f"{key}.lora.targets", "must name at least one layer")
        _require(0 <= t.lora.dropout < 1, f"{key}.lora.dropout", "must be in [0, 1)")
    if t.simcse.enabled:
        _require(t.simcse.temperature > 0, f"{key}.simcse.temperature", "must be > 0")
        _require(t.simcse.batch_size >= 2, f"{key}.simcse.batch_size", "must be >= 2")
        _require(t.simcse.weight >= 0, f"{key}.simcse.weight", "must be >= 0")
    if t.mnrl.enabled:
        _require(t.mnrl.scale > 0, f"{key}.mnrl.scale", "must be > 0")
        _require(t.mnrl.batch_size >= 2, f"{key}.mnrl.batch_size", "must be >= 2")
        _require(t.mnrl.weight >= 0, f"{key}.mnrl.weight", "must be >= 0")
