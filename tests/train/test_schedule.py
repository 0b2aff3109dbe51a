from collections import Counter

import pytest

from train.schedule import BatchStream, annealing_alpha, epoch_plan

COUNTS = {"sst": 3, "para": 5, "sts": 2}
ORDER = ("sst", "para", "sts")


def plan(schedule, counts=COUNTS, epoch=0, epochs=3, seed=0, order=ORDER):
    return epoch_plan(schedule, counts, task_order=order, epoch=epoch, epochs=epochs, seed=seed)


def test_round_robin_takes_every_task_each_step():
    steps = plan("round_robin")
    assert steps == [ORDER] * 5


def test_sequential_follows_the_task_order():
    steps = plan("sequential", order=("sts", "sst", "para"))
    assert [s[0] for s in steps] == ["sts"] * 2 + ["sst"] * 3 + ["para"] * 5


def test_proportional_uses_each_batch_once_in_seeded_random_order():
    steps = plan("proportional")
    assert Counter(s[0] for s in steps) == Counter(COUNTS)
    assert steps == plan("proportional")
    assert steps != plan("proportional", seed=1) or steps != plan("proportional", epoch=1)


def test_annealed_moves_from_proportional_to_near_uniform():
    assert annealing_alpha(0, 3) == 1.0
    assert annealing_alpha(2, 3) == pytest.approx(0.2)
    assert annealing_alpha(0, 1) == 1.0
    counts = {"sst": 1000, "para": 10, "sts": 10}
    first = Counter(s[0] for s in plan("annealed", counts, epoch=0))
    last = Counter(s[0] for s in plan("annealed", counts, epoch=2))
    assert sum(first.values()) == sum(last.values()) == 1020
    assert first["sst"] > last["sst"]  # the large task loses share as alpha decreases
    assert last["para"] > first["para"]


def test_tasks_without_batches_are_skipped_and_bad_input_raises():
    assert plan("round_robin", {"sst": 2, "sts": 1}) == [("sst", "sts")] * 2
    with pytest.raises(ValueError, match="at least one batch"):
        plan("sequential", {"sst": 0})
    with pytest.raises(ValueError, match="unknown schedule 'random'"):
        plan("random")


def test_batch_stream_cycles_reshuffled_passes_covering_every_row():
    lengths = [5, 1, 9, 3, 7, 2, 8]
    stream = BatchStream(lengths, 3, seed=0, bucket_multiplier=2)
    first = [stream.next() for _ in range(stream.batches_per_pass)]
    assert sorted(i for b in first for i in b) == list(range(7))
    second = [stream.next() for _ in range(stream.batches_per_pass)]
    assert sorted(i for b in second for i in b) == list(range(7))
    assert stream.passes == 2


def test_batch_stream_shards_disjointly_with_equal_counts():
    lengths = list(range(1, 24))  # 23 rows -> 6 batches of 4 (last has 3) -> 3 per worker
    shards = [
        BatchStream(lengths, 4, seed=1, bucket_multiplier=1, rank=r, world_size=2) for r in range(2)
    ]
    assert shards[0].batches_per_pass == shards[1].batches_per_pass == 3
    rows = [[i for _ in range(3) for i in s.next()] for s in shards]
    assert not set(rows[0]) & set(rows[1])
    with pytest.raises(ValueError, match="too few rows for 4 worker"):
        BatchStream([1, 2], 1, seed=0, bucket_multiplier=1, world_size=4)
