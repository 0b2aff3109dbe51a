"""Task heads of the multitask model, on top of pooled sentence embeddings.

- SST-5 sentiment: dropout + MLP -> 5 logits, cross-entropy.
- Quora paraphrase: SBERT style (Reimers & Gurevych 2019) -- the shared encoder embeds each
  question, features (u, v, |u-v| [, u*v]) -> MLP -> 1 logit -- or a cross-encoder
  ([CLS] q1 [SEP] q2 [SEP] -> pooled -> MLP -> 1 logit); binary cross-entropy on the logit.
- STS: cosine similarity of the two embeddings mapped to 0-5 (`relu`: 5 * relu(cos);
  `affine`: a * cos + b with learnable a, b starting at 5, 0, i.e. 5 * cos -- sentence
  encoders put almost every pair at cos >= 0, so a start at 2.5 * (cos + 1) would force the
  encoder to push dissimilar pairs to negative cosines and cost ~0.14 dev Pearson),
  or a regression MLP on (u, v, |u-v|, u*v); mean squared error against the gold score.

Every head maps embeddings to raw outputs; `task_loss` turns outputs and labels into a loss.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

Activation = Literal["gelu", "relu", "tanh", "silu"]


@dataclass(frozen=True)
class SstHeadParams:
    hidden_sizes: tuple[int, ...]  # hidden layers of the MLP ([] = one linear layer)
    activation: Activation


@dataclass(frozen=True)
class ParaHeadParams:
    kind: Literal["sbert", "cross"]  # encode each question / encode the pair together
    product: bool  # sbert: add u*v to the features (u, v, |u-v|)
    hidden_sizes: tuple[int, ...]
    activation: Activation


@dataclass(frozen=True)
class StsHeadParams:
    kind: Literal["cosine", "mlp"]  # scaled cosine / regression MLP on (u, v, |u-v|, u*v)
    scale: Literal["relu", "affine"]  # cosine -> 0-5: 5*relu(cos) / learnable a*cos+b
    hidden_sizes: tuple[int, ...]
    activation: Activation


@dataclass(frozen=True)
class HeadsParams:
    pooling: Literal["cls", "mean"]
    dropout: float
    sst: SstHeadParams
    para: ParaHeadParams
    sts: StsHeadParams


HEAD_ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU, "tanh": nn.Tanh, "silu": nn.SiLU}
POOLINGS = ("cls", "mean")


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, mode: str) -> torch.Tensor:
    """(B, T, H) hidden states -> (B, H) sentence embeddings: [CLS] vector or masked mean."""
    if mode == "cls":
        return hidden[:, 0]
    if mode == "mean":
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
    raise ValueError(f"unknown pooling '{mode}' (known: {', '.join(POOLINGS)})")


def mlp(
    in_dim: int, hidden_sizes: Sequence[int], out_dim: int, activation: str, dropout: float
) -> nn.Sequential:
    """dropout -> [Linear -> activation -> dropout] * len(hidden_sizes) -> Linear."""
    if activation not in HEAD_ACTIVATIONS:
        known = ", ".join(HEAD_ACTIVATIONS)
        raise ValueError(f"unknown activation '{activation}' (known: {known})")
    layers: list[nn.Module] = [nn.Dropout(dropout)]
    dim = in_dim
    for size in hidden_sizes:
        layers += [nn.Linear(dim, size), HEAD_ACTIVATIONS[activation](), nn.Dropout(dropout)]
        dim = size
    layers.append(nn.Linear(dim, out_dim))
    return nn.Sequential(*layers)


def pair_features(u: torch.Tensor, v: torch.Tensor, product: bool) -> torch.Tensor:
    """SBERT features (u, v, |u-v|) and optionally u*v: (B, H) x 2 -> (B, 3H or 4H)."""
    parts = [u, v, (u - v).abs()] + ([u * v] if product else [])
    return torch.cat(parts, dim=-1)


class SentimentHead(nn.Module):
    """(B, H) sentence embedding -> (B, 5) logits."""

    def __init__(
        self, hidden: int, hidden_sizes: Sequence[int], activation: str, dropout: float
    ) -> None:
        super().__init__()
        self.net = mlp(hidden, hidden_sizes, 5, activation, dropout)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.net(pooled)


class ParaphraseHead(nn.Module):
    """SBERT (`sbert`): (u, v) -> (B,) logit; cross-encoder (`cross`): pooled pair -> logit."""

    def __init__(
        self,
        hidden: int,
        kind: str,
        product: bool,
        hidden_sizes: Sequence[int],
        activation: str,
        dropout: float,
    ) -> None:
        super().__init__()
        if kind not in ("sbert", "cross"):
            raise ValueError(f"unknown paraphrase head kind '{kind}' (known: sbert, cross)")
        self.kind, self.product = kind, product
        in_dim = hidden * (4 if product else 3) if kind == "sbert" else hidden
        self.net = mlp(in_dim, hidden_sizes, 1, activation, dropout)

    def forward(self, u: torch.Tensor, v: torch.Tensor | None = None) -> torch.Tensor:
        x = pair_features(u, v, self.product) if self.kind == "sbert" else u
        return self.net(x).squeeze(-1)  # (B,)


class SimilarityHead(nn.Module):
    """(u, v) -> (B,) similarity score on the 0-5 scale (cosine) or unbounded (MLP)."""

    def __init__(
        self,
        hidden: int,
        kind: str,
        scale: str,
        hidden_sizes: Sequence[int],
        activation: str,
        dropout: float,
    ) -> None:
        super().__init__()
        if kind not in ("cosine", "mlp"):
            raise ValueError(f"unknown similarity head kind '{kind}' (known: cosine, mlp)")
        if scale not in ("relu", "affine"):
            raise ValueError(f"unknown similarity scale '{scale}' (known: relu, affine)")
        self.kind, self.scale = kind, scale
        if kind == "mlp":
            self.net = mlp(hidden * 4, hidden_sizes, 1, activation, dropout)
        elif scale == "affine":
            self.a = nn.Parameter(torch.tensor(5.0))
            self.b = nn.Parameter(torch.tensor(0.0))

    def forward(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        if self.kind == "mlp":
            return self.net(pair_features(u, v, product=True)).squeeze(-1)
        cos = F.cosine_similarity(u.float(), v.float(), dim=-1)  # (B,)
        return 5.0 * F.relu(cos) if self.scale == "relu" else self.a * cos + self.b


def task_loss(task: str, output: torch.Tensor, labels: torch.Tensor,
              weights: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy (sst), BCE with logits (para) or MSE on the 0-5 score (sts).

    `weights` (B,) scale each row's loss (synthetic rows: `train.synthetic_weight`):
    1/B * sum_i w_i * l_i, so a row of weight 0.5 counts half a real row. None = plain mean.
    """
    output = output.float()
    reduction = "mean" if weights is None else "none"
    if task == "sst":
        loss = F.cross_entropy(output, labels.long(), reduction=reduction)
    elif task == "para":
        loss = F.binary_cross_entropy_with_logits(output, labels.float(), reduction=reduction)
    elif task == "sts":
        loss = F.mse_loss(output, labels.float(), reduction=reduction)
    else:
        raise ValueError(f"unknown task '{task}'")
    return loss if weights is None else (weights.to(loss.device).float() * loss).mean()


def predictions(task: str, output: torch.Tensor) -> torch.Tensor:
    """Raw head outputs -> class 0-4 (sst), 0/1 (para) or a score clamped to 0-5 (sts)."""
    if task == "sst":
        return output.argmax(-1)
    if task == "para":
        return (output > 0).long()
    if task == "sts":
        return output.float().clamp(0.0, 5.0)
    raise ValueError(f"unknown task '{task}'")
