"""Bucketed relative-position attention bias, as MPNet uses it (Song et al. 2020, from T5).

MPNet adds to every layer's attention scores a learned bias that depends only on the signed
distance ``d = key position - query position``, looked up per head in one table shared by all
layers (``encoder.relative_attention_bias``, shape (num_buckets, num_heads)). Distances go to
buckets: half the buckets for each sign; inside a half, ``|d| < max_exact`` (a quarter of all
buckets) keep one bucket each and larger distances share log-spaced buckets up to
``max_distance``:

    bucket(|d|) = max_exact + floor(log(|d| / max_exact) / log(max_distance / max_exact)
                                    * (half - max_exact)),  capped at half - 1

    relative_position_bucket(torch.tensor([[-1, 0, 1, 200]]))  # tensor([[1, 0, 17, 31]])
"""

from __future__ import annotations

import math

import torch
from torch import nn


def relative_position_bucket(relative_position: torch.Tensor, num_buckets: int = 32,
                             max_distance: int = 128) -> torch.Tensor:
    """Signed distances (key - query), any shape -> bucket ids in [0, num_buckets), same shape.

    Same buckets as Hugging Face's ``MPNetEncoder.relative_position_bucket`` (the float32 log
    and the truncation towards zero are part of the definition: they decide the bucket edges).
    """
    half = num_buckets // 2
    distance = -relative_position  # > 0: the key lies before the query
    bucket = (distance < 0).long() * half  # keys after the query use the upper half
    distance = distance.abs()
    max_exact = half // 2
    # log of 0 is -inf; those entries take the exact branch below, so clamp only to stay finite
    scaled = (torch.log(distance.clamp(min=1).float() / max_exact)
              / math.log(max_distance / max_exact) * (half - max_exact))
    log_bucket = (max_exact + scaled.long()).clamp(max=half - 1)
    return bucket + torch.where(distance < max_exact, distance, log_bucket)


def relative_position_bias(table: nn.Embedding, seq_len: int,
                           max_distance: int = 128) -> torch.Tensor:
    """(num_buckets, num_heads) bias table -> (1, nh, T, T) additive attention bias."""
    positions = torch.arange(seq_len, device=table.weight.device)
    relative = positions[None, :] - positions[:, None]  # (T, T): key - query
    buckets = relative_position_bucket(relative, table.num_embeddings, max_distance)
    return table(buckets).permute(2, 0, 1).unsqueeze(0)  # (T, T, nh) -> (1, nh, T, T)
