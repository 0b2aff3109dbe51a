"""Batch index plans: length-bucketed (little padding, still shuffled) and sequential.

With dynamic padding a batch costs ``batch_size * longest_row`` tokens, so rows of similar length
belong together. Bucketing as in fairseq / AllenNLP's bucket iterator: shuffle the rows, cut them
into chunks of ``batch_size * bucket_multiplier`` rows, sort each chunk by length, cut it into
batches, shuffle the order of all batches. Batches stay random across epochs (other seed) while
padding drops to almost nothing.

    plan = length_bucketed_batches([12, 5, 40, 7], batch_size=2, shuffle=True, seed=0)
    # e.g. [[2, 0], [1, 3]] -- every index exactly once
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _check(batch_size: int, bucket_multiplier: int = 1) -> None:
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if bucket_multiplier < 1:
        raise ValueError(f"bucket_multiplier must be >= 1, got {bucket_multiplier}")


def sequential_batches(n_rows: int, batch_size: int) -> list[list[int]]:
    """[[0 .. b-1], [b .. 2b-1], ...]; the last batch may be smaller."""
    _check(batch_size)
    return [list(range(start, min(start + batch_size, n_rows)))
            for start in range(0, n_rows, batch_size)]


def length_bucketed_batches(lengths: Sequence[int] | np.ndarray, batch_size: int, *,
                            shuffle: bool, seed: int,
                            bucket_multiplier: int = 50) -> list[list[int]]:
    """Batches of row indices grouped by length; every index exactly once, nothing dropped.

    ``lengths[i]`` is row i's token count. Without ``shuffle`` the rows keep their order up to the
    sort inside each chunk, and batches come in chunk order (deterministic, for evaluation).
    The same ``seed`` gives the same plan.
    """
    _check(batch_size, bucket_multiplier)
    lengths = np.asarray(lengths)
    if lengths.ndim != 1:
        raise ValueError(f"lengths must be one-dimensional, got shape {lengths.shape}")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(lengths)) if shuffle else np.arange(len(lengths))
    chunk_size = batch_size * bucket_multiplier
    batches = []
    for start in range(0, len(order), chunk_size):
        chunk = order[start:start + chunk_size]
        chunk = chunk[np.argsort(-lengths[chunk], kind="stable")]  # longest first
        batches += [chunk[i:i + batch_size].tolist() for i in range(0, len(chunk), batch_size)]
    if shuffle:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def padded_tokens(lengths: Sequence[int] | np.ndarray, batches: list[list[int]]) -> int:
    """Tokens a plan costs with dynamic padding: sum over batches of size * longest row."""
    lengths = np.asarray(lengths)
    return int(sum(len(batch) * lengths[batch].max() for batch in batches if batch))
