"""SMART: smoothness-inducing adversarial regularization (Jiang et al. 2020, "SMART: Robust
and Efficient Fine-Tuning for Pre-trained Natural Language Models through Principled
Regularized Optimization", ACL).

The embedding output x of the encoder is perturbed within an inf-norm ball of radius eps, and
the model is asked to give the same output there:

    R(theta) = max_{|x' - x|_inf <= eps} l_s(f(x'; theta), f(x; theta))
    loss     = task_loss + lambda * R(theta)

The max is approximated as in the paper: x' = x + noise (noise ~ N(0, sigma^2)), then K steps
of projected gradient ascent on l_s with step size eta, the step normalized by its inf-norm.
l_s is the symmetric KL divergence for classification (softmax over classes, or a Bernoulli
for a single logit) and the squared error for regression.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class SmartSettings:
    weight: float = 1.0  # lambda
    epsilon: float = 1e-5  # radius of the inf-norm ball
    step_size: float = 1e-3  # eta
    steps: int = 1  # K ascent steps
    noise_std: float = 1e-5  # sigma of the initial perturbation


def symmetric_kl(p_logits: torch.Tensor, q_logits: torch.Tensor) -> torch.Tensor:
    """KL(p||q) + KL(q||p), batch mean; (B, C) logits, or (B,) for one binary logit."""
    if p_logits.dim() == 1:  # Bernoulli: logits of [not y, y] = [0, z]
        p_logits = torch.stack([torch.zeros_like(p_logits), p_logits], dim=-1)
        q_logits = torch.stack([torch.zeros_like(q_logits), q_logits], dim=-1)
    p_log = F.log_softmax(p_logits.float(), dim=-1)
    q_log = F.log_softmax(q_logits.float(), dim=-1)
    kl_pq = F.kl_div(q_log, p_log, log_target=True, reduction="batchmean")  # KL(p||q)
    kl_qp = F.kl_div(p_log, q_log, log_target=True, reduction="batchmean")  # KL(q||p)
    return kl_pq + kl_qp


def divergence(kind: str, perturbed: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
    """l_s: symmetric KL for `classification`, mean squared error for `regression`."""
    if kind == "classification":
        return symmetric_kl(perturbed, clean)
    if kind == "regression":
        return F.mse_loss(perturbed.float(), clean.float())
    raise ValueError(f"unknown SMART output kind '{kind}' (known: classification, regression)")


def smart_regularizer(
    forward_from_embeddings: Callable[[torch.Tensor], torch.Tensor],
    embeddings: torch.Tensor,
    clean_output: torch.Tensor,
    kind: str,
    settings: SmartSettings,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """R(theta): the divergence at the adversarial point found by K projected ascent steps.

    `forward_from_embeddings` maps (B, T, H) embedding outputs to the head outputs;
    `clean_output` = forward_from_embeddings(embeddings), computed by the caller.
    """
    noise = torch.randn(
        embeddings.shape, generator=generator, device="cpu", dtype=torch.float32
    ).to(embeddings.device, embeddings.dtype)
    noise = noise * settings.noise_std
    target = clean_output.detach()
    for _ in range(settings.steps):
        noise.requires_grad_(True)
        adv = divergence(kind, forward_from_embeddings(embeddings.detach() + noise), target)
        (grad,) = torch.autograd.grad(adv, noise)
        step = grad / grad.abs().amax(dim=(-2, -1), keepdim=True).clamp(min=1e-12)
        noise = (noise.detach() + settings.step_size * step).clamp(
            -settings.epsilon, settings.epsilon
        )
    return divergence(kind, forward_from_embeddings(embeddings + noise.detach()), clean_output)


def with_smart(
    base_loss: torch.Tensor,
    forward_from_embeddings: Callable[[torch.Tensor], torch.Tensor],
    embeddings: torch.Tensor,
    clean_output: torch.Tensor,
    kind: str,
    settings: SmartSettings,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """base_loss + lambda * R; with lambda = 0 returns `base_loss` itself (no extra passes)."""
    if settings.weight == 0:
        return base_loss
    reg = smart_regularizer(
        forward_from_embeddings, embeddings, clean_output, kind, settings, generator
    )
    return base_loss + settings.weight * reg
