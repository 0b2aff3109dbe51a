"""LoRA: low-rank adaptation of frozen linear layers (Hu et al. 2021, arXiv:2106.09685).

A frozen Linear ``y = x W^T + b`` gets a trainable low-rank update:

    y = x W^T + b + (alpha / r) * dropout(x) A^T B^T,   A: (r, in) kaiming-uniform, B: (out, r) = 0

so at initialisation the model is exactly the base model, and ``merge_lora`` folds
``W += (alpha / r) B A`` back in, leaving plain Linears. Targets are module-name suffixes
("query", "value", "attention.output.dense", "intermediate.dense", ...). Our BERT computes Q, K and
V with one fused Linear (``attention.self.qkv``) that names its row blocks in ``output_blocks``;
"query"/"key"/"value" then adapt just those rows, each with its own A and B.

    apply_lora(model, rank=8, alpha=16, dropout=0.1, targets=("query", "value"))
    ...train...
    merge_lora(model)  # same outputs, no adapters
"""

from __future__ import annotations

import logging
import math

import torch
import torch.nn.functional as F
from torch import nn

log = logging.getLogger(__name__)


class LoRALinear(nn.Linear):
    """A frozen Linear (same ``weight``/``bias`` objects and names) plus LoRA on row blocks."""

    def __init__(self, base: nn.Linear, *, rank: int, alpha: float, dropout: float,
                 blocks: dict[str, tuple[int, int]]):
        super().__init__(base.in_features, base.out_features, bias=base.bias is not None,
                         device="meta")
        self.weight, self.bias = base.weight, base.bias  # shared, so state_dict names stay
        if hasattr(base, "output_blocks"):
            self.output_blocks = base.output_blocks  # kept for merge_lora
        self.lora_blocks = dict(blocks)  # adapter name -> (first row, end row) of the output
        self.scale = alpha / rank
        self.lora_dropout = nn.Dropout(dropout)
        like = dict(device=base.weight.device, dtype=base.weight.dtype)
        self.lora_A = nn.ParameterDict({
            name: nn.Parameter(torch.empty(rank, base.in_features, **like)) for name in blocks})
        self.lora_B = nn.ParameterDict({
            name: nn.Parameter(torch.zeros(end - start, rank, **like))
            for name, (start, end) in blocks.items()})
        for a in self.lora_A.values():
            nn.init.kaiming_uniform_(a, a=math.sqrt(5))  # nn.Linear's init, as in the paper's code

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.linear(x, self.weight, self.bias)  # (..., out)
        h = self.lora_dropout(x)
        for name, (start, end) in self.lora_blocks.items():
            delta = F.linear(F.linear(h, self.lora_A[name]), self.lora_B[name]) * self.scale
            if (start, end) == (0, self.out_features):
                y = y + delta
            else:
                y[..., start:end] += delta  # (..., end - start) rows of a fused projection
        return y

    def delta_weight(self, name: str) -> torch.Tensor:
        """(end - start, in): the update of this adapter's rows, (alpha / r) B A."""
        return self.scale * self.lora_B[name] @ self.lora_A[name]

    def extra_repr(self) -> str:
        rank = next(iter(self.lora_A.values())).shape[0]
        return f"{super().extra_repr()}, rank={rank}, scale={self.scale:g}, " \
               f"blocks={list(self.lora_blocks)}"


def _matching_blocks(name: str, module: nn.Linear, targets: tuple[str, ...]) -> dict:
    """Adapter blocks of one Linear whose (block-)name ends with a target at a dot boundary."""
    def matches(full_name: str) -> bool:
        return any(full_name == t or full_name.endswith("." + t) for t in targets)

    if matches(name):  # the whole layer (also a fused qkv named directly)
        return {name.rsplit(".", 1)[-1]: (0, module.out_features)}
    parent = name.rsplit(".", 1)[0] if "." in name else ""
    blocks = getattr(module, "output_blocks", {})
    return {block: rows for block, rows in blocks.items()
            if matches(f"{parent}.{block}" if parent else block)}


def apply_lora(model: nn.Module, rank: int, alpha: float, dropout: float,
               targets: tuple[str, ...]) -> list[str]:
    """Freeze every parameter of ``model`` and put LoRA on the target Linears (in place).

    Returns the adapted module names. A target that matches no Linear is an error.
    """
    if rank < 1 or alpha <= 0 or not 0.0 <= dropout < 1.0:
        raise ValueError(f"LoRA needs rank >= 1, alpha > 0, 0 <= dropout < 1; "
                         f"got rank={rank}, alpha={alpha}, dropout={dropout}")
    linears = [(name, module) for name, module in model.named_modules()
               if type(module) is nn.Linear]
    unused = [t for t in targets if not any(_matching_blocks(n, m, (t,)) for n, m in linears)]
    if unused:
        raise ValueError(f"LoRA target(s) {unused} match no Linear layer of the model")
    plan = {name: blocks for name, module in linears
            if (blocks := _matching_blocks(name, module, targets))}
    for param in model.parameters():
        param.requires_grad_(False)
    for name, blocks in plan.items():
        base = model.get_submodule(name)
        _set_submodule(model, name, LoRALinear(base, rank=rank, alpha=alpha, dropout=dropout,
                                               blocks=blocks))
    log.info("LoRA r=%d alpha=%g on %d layers (%s)", rank, alpha, len(plan), ", ".join(targets))
    return sorted(plan)


@torch.no_grad()
def merge_lora(model: nn.Module) -> int:
    """Fold every adapter into its base weight and put plain Linears back; returns the count."""
    merged = [(name, module) for name, module in model.named_modules()
              if isinstance(module, LoRALinear)]
    for name, module in merged:
        for block, (start, end) in module.lora_blocks.items():
            module.weight[start:end] += module.delta_weight(block).to(module.weight.dtype)
        plain = nn.Linear(module.in_features, module.out_features, bias=module.bias is not None,
                          device="meta")
        plain.weight, plain.bias = module.weight, module.bias
        if hasattr(module, "output_blocks"):
            plain.output_blocks = module.output_blocks
        _set_submodule(model, name, plain)
    return len(merged)


def _set_submodule(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, child, module)
