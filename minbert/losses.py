"""Contrastive auxiliary losses on sentence embeddings: SimCSE and MNRL.

Both are an in-batch InfoNCE: row i of `anchors` must pick row i of `positives` among all B
rows of `positives` (the other B-1 rows are the negatives):

    L = -1/B * sum_i log( exp(s * cos(a_i, p_i)) / sum_j exp(s * cos(a_i, p_j)) )

- SimCSE, unsupervised (Gao, Yao & Chen 2021, "SimCSE: Simple Contrastive Learning of Sentence
  Embeddings"): a_i and p_i are the same sentence encoded twice with different dropout masks;
  s = 1 / temperature (temperature 0.05 in the paper).
- MNRL, multiple negatives ranking loss (Henderson et al. 2017, "Efficient Natural Language
  Response Suggestion for Smart Reply"; `MultipleNegativesRankingLoss` in sentence-transformers):
  a_i, p_i are the two questions of a duplicate Quora pair; s = scale (20 by default).

Example: two perfectly aligned orthogonal pairs, a = p = [[1, 0], [0, 1]], s = 1:
cos = I, so L = -log(e / (e + 1)) = log(1 + e^-1) ~= 0.3133; with s = 20, L ~= 2e-9.

Source-aware negatives: a paraphrase and its source row (or two paraphrases of one source) are
near-copies, so treating one as the other's negative pushes apart what should stay together.
With `groups` (B,) -- one id per source -- p_j is left out of row i's denominator whenever
groups[i] == groups[j] and i != j (its score is set to -inf). With all groups distinct this is
the plain loss. `weights` (B,) scale each row's term: L = 1/B * sum_i w_i * l_i.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F


def in_batch_infonce(anchors: torch.Tensor, positives: torch.Tensor, scale: float,
                     groups: torch.Tensor | None = None,
                     weights: torch.Tensor | None = None) -> torch.Tensor:
    """(B, H) anchors and positives -> scalar InfoNCE loss with in-batch negatives.

    `groups` (B,): rows of one group are never each other's negatives; `weights` (B,): per-row
    loss weights (see the module docstring). None = every row its own group, weight 1.
    """
    if anchors.shape != positives.shape or anchors.dim() != 2:
        raise ValueError(
            f"anchors {tuple(anchors.shape)} and positives {tuple(positives.shape)} "
            "must both be (B, H)"
        )
    a = F.normalize(anchors.float(), dim=-1)
    p = F.normalize(positives.float(), dim=-1)
    scores = scale * a @ p.T  # (B, B) scaled cosine similarities
    targets = torch.arange(a.shape[0], device=a.device)
    if groups is not None:
        scores = scores.masked_fill(same_source_negatives(groups.to(a.device)), float("-inf"))
    if weights is None:
        return F.cross_entropy(scores, targets)
    per_row = F.cross_entropy(scores, targets, reduction="none")  # (B,)
    return (weights.to(per_row.device).float() * per_row).mean()


def same_source_negatives(groups: torch.Tensor) -> torch.Tensor:
    """(B,) group ids -> (B, B) bool: True where j != i shares row i's group (masked out)."""
    same = groups[:, None] == groups[None, :]  # (B, B)
    return same & ~torch.eye(len(groups), dtype=torch.bool, device=groups.device)


def simcse_loss(
    view1: torch.Tensor, view2: torch.Tensor, temperature: float = 0.05,
    groups: torch.Tensor | None = None,
) -> torch.Tensor:
    """Unsupervised SimCSE on two dropout views (B, H) of the same B sentences."""
    if temperature <= 0:
        raise ValueError(f"SimCSE temperature must be > 0, got {temperature}")
    return in_batch_infonce(view1, view2, 1.0 / temperature, groups)


def mnrl_loss(anchors: torch.Tensor, positives: torch.Tensor, scale: float = 20.0,
              groups: torch.Tensor | None = None,
              weights: torch.Tensor | None = None) -> torch.Tensor:
    """Multiple negatives ranking loss on B duplicate pairs (anchors[i], positives[i])."""
    return in_batch_infonce(anchors, positives, scale, groups, weights)


Embedder = Callable[[dict[str, torch.Tensor]], torch.Tensor]


def simcse_from_encoder(
    embed: Embedder, inputs: dict[str, torch.Tensor], temperature: float,
    groups: torch.Tensor | None = None,
) -> torch.Tensor:
    """Encode the same sentences twice (dropout on: the model must be in train mode)."""
    return simcse_loss(embed(inputs), embed(inputs), temperature, groups)


def mnrl_from_encoder(
    embed: Embedder, inputs: dict[str, torch.Tensor], scale: float,
    groups: torch.Tensor | None = None, weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """`inputs` holds 2B rows: the B first questions, then their B duplicates, in one batch."""
    u, v = embed(inputs).chunk(2)  # (B, H) each
    return mnrl_loss(u, v, scale, groups, weights)
