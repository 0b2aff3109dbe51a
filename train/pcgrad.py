"""PCGrad: gradient surgery for multitask learning (Yu et al. 2020, "Gradient Surgery for
Multi-Task Learning", NeurIPS).

For every task i, its gradient g_i on the shared parameters is projected, in a random order
of the other tasks j, onto the normal plane of each g_j it conflicts with (g_i . g_j < 0):

    g_i <- g_i - (g_i . g_j) / |g_j|^2 * g_j

and the update is the sum of the projected gradients. Non-conflicting gradients are left
alone, so then PCGrad equals the plain sum. Parameters that only one task uses (its head) get
that task's gradient unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch


def project_conflicting(
    grads: Sequence[torch.Tensor], generator: torch.Generator
) -> list[torch.Tensor]:
    """Per-task flat gradients (n,) -> the projected per-task gradients, same order."""
    projected = []
    for i, g in enumerate(grads):
        g_i = g.clone()
        order = torch.randperm(len(grads), generator=generator).tolist()
        for j in (j for j in order if j != i):
            dot = torch.dot(g_i, grads[j])
            norm_sq = torch.dot(grads[j], grads[j])
            if dot < 0 and norm_sq > 0:
                g_i = g_i - dot / norm_sq * grads[j]
        projected.append(g_i)
    return projected


def pcgrad_combine(grads: Sequence[torch.Tensor], generator: torch.Generator) -> torch.Tensor:
    """The PCGrad update direction: the sum of the projected per-task gradients."""
    return torch.stack(project_conflicting(grads, generator)).sum(0)


def _flat(grads: Sequence[torch.Tensor | None], params: Sequence[torch.Tensor]) -> torch.Tensor:
    """Concatenate gradients into one (n,) vector; an unused parameter contributes zeros."""
    parts = [
        (g if g is not None else torch.zeros_like(p)).reshape(-1).float()
        for g, p in zip(grads, params, strict=True)
    ]
    return torch.cat(parts) if parts else torch.zeros(0)


def _accumulate(flat: torch.Tensor, params: Sequence[torch.Tensor], used: Sequence[bool]) -> None:
    """Add a flat (n,) gradient into the `.grad` of the used `params` (keeps accumulation).

    A parameter no loss reached keeps `.grad` None, as after a plain backward, so the optimizer
    skips it (no weight decay on it either).
    """
    offset = 0
    for p, is_used in zip(params, used, strict=True):
        if is_used:
            g = flat[offset : offset + p.numel()].view_as(p).to(p.dtype)
            p.grad = g.clone() if p.grad is None else p.grad + g
        offset += p.numel()


def pcgrad_backward(
    losses: Sequence[torch.Tensor],
    shared: Sequence[torch.Tensor],
    task_specific: Sequence[torch.Tensor],
    generator: torch.Generator,
    reduce: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> None:
    """Backward pass with PCGrad on `shared` and plain summed gradients on `task_specific`.

    `losses` are the (already weighted) task losses of one step. `reduce` averages a flat
    gradient over data-parallel workers (an all-reduce) before the surgery, so every worker
    projects the same global task gradients and stays in sync.
    """
    params = [*shared, *task_specific]
    reduce = reduce or (lambda t: t)
    per_task = [
        torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True) for loss in losses
    ]
    used = [any(g[k] is not None for g in per_task) for k in range(len(params))]
    shared_grads = [reduce(_flat(g[: len(shared)], shared)) for g in per_task]
    _accumulate(pcgrad_combine(shared_grads, generator), shared, used[: len(shared)])
    head_grads = [_flat(g[len(shared) :], task_specific) for g in per_task]
    _accumulate(reduce(torch.stack(head_grads).sum(0)), task_specific, used[len(shared) :])
