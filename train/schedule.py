"""Multitask schedules: which tasks contribute a batch at each training step of an epoch.

- `round_robin`: every step takes one batch of every task and sums the losses; an epoch has as
  many steps as the largest task has batches (smaller tasks start over, reshuffled).
- `sequential`: all batches of the first task in `task_order`, then the next task, ...
- `proportional`: one task per step, each task as often as it has batches, in random order
  (sampling proportional to the task's size, without replacement).
- `annealed`: one task per step, drawn with probability p_t ~ N_t ** alpha, alpha going from 1
  (proportional) in the first epoch to 0.2 (close to uniform) in the last: annealed sampling of
  Stickland & Murray 2019 ("BERT and PALs"), as used for MT-DNN style multitask fine-tuning.

`BatchStream` hands out the row indices of a task's batches forever: length-bucketed batches,
reshuffled every pass, sharded across data-parallel workers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from minbert.batching import length_bucketed_batches


def annealing_alpha(epoch: int, epochs: int) -> float:
    """alpha = 1 - 0.8 * epoch / (epochs - 1), epoch counted from 0 (1.0 when epochs == 1)."""
    return 1.0 - 0.8 * epoch / (epochs - 1) if epochs > 1 else 1.0


def epoch_plan(
    schedule: str,
    batches_per_task: dict[str, int],
    *,
    task_order: Sequence[str],
    epoch: int,
    epochs: int,
    seed: int,
) -> list[tuple[str, ...]]:
    """The tasks of every step of one epoch; tasks missing from `batches_per_task` are skipped."""
    order = [t for t in task_order if t in batches_per_task]
    counts = np.array([batches_per_task[t] for t in order], dtype=np.int64)
    if not order or counts.min() < 1:
        raise ValueError(f"every scheduled task needs at least one batch, got {batches_per_task}")
    rng = np.random.default_rng([seed, epoch])
    if schedule == "round_robin":
        return [tuple(order)] * int(counts.max())
    if schedule == "sequential":
        return [(t,) for t, n in zip(order, counts, strict=True) for _ in range(n)]
    if schedule == "proportional":
        steps = np.repeat(np.arange(len(order)), counts)
        return [(order[i],) for i in rng.permutation(steps)]
    if schedule == "annealed":
        probs = counts.astype(np.float64) ** annealing_alpha(epoch, epochs)
        draws = rng.choice(len(order), size=int(counts.sum()), p=probs / probs.sum())
        return [(order[i],) for i in draws]
    raise ValueError(f"unknown schedule '{schedule}'")


class BatchStream:
    """Endless length-bucketed batches of one task, this worker's shard of every pass."""

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        *,
        seed: int,
        bucket_multiplier: int,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.lengths, self.batch_size = list(lengths), batch_size
        self.seed, self.bucket_multiplier = seed, bucket_multiplier
        self.rank, self.world_size = rank, world_size
        self.passes, self._queue = 0, []
        if self.batches_per_pass < 1:
            raise ValueError(
                f"{len(self.lengths)} rows make fewer than {world_size} batches of "
                f"{batch_size}: too few rows for {world_size} worker(s)"
            )

    @property
    def batches_per_pass(self) -> int:
        return -(-len(self.lengths) // self.batch_size) // self.world_size

    def _next_pass(self) -> list[list[int]]:
        batches = length_bucketed_batches(
            self.lengths,
            self.batch_size,
            shuffle=True,
            seed=self.seed + self.passes,
            bucket_multiplier=self.bucket_multiplier,
        )
        self.passes += 1
        keep = len(batches) // self.world_size * self.world_size  # same count on every worker
        return batches[:keep][self.rank :: self.world_size]

    def next(self) -> list[int]:
        if not self._queue:
            self._queue = self._next_pass()
        return self._queue.pop(0)
