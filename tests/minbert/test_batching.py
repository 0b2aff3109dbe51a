"""Length-bucketed and sequential batch plans."""

import numpy as np
import pytest

from minbert.batching import length_bucketed_batches, padded_tokens, sequential_batches


def lengths_fixture(n=1003, seed=0):
    return np.random.default_rng(seed).integers(3, 120, size=n)


def flat(batches):
    return [i for batch in batches for i in batch]


@pytest.mark.parametrize("shuffle", [True, False])
def test_every_index_exactly_once(shuffle):
    batches = length_bucketed_batches(lengths_fixture(), 16, shuffle=shuffle, seed=3,
                                      bucket_multiplier=4)
    assert sorted(flat(batches)) == list(range(1003))
    assert all(1 <= len(batch) <= 16 for batch in batches)
    assert sum(len(batch) < 16 for batch in batches) == 1  # only the last chunk's tail


def test_deterministic_for_a_seed_and_different_across_seeds():
    lengths = lengths_fixture()
    first = length_bucketed_batches(lengths, 16, shuffle=True, seed=7)
    assert first == length_bucketed_batches(lengths, 16, shuffle=True, seed=7)
    assert first != length_bucketed_batches(lengths, 16, shuffle=True, seed=8)


def test_bucketing_cuts_padding_versus_random_batches():
    lengths = lengths_fixture()
    bucketed = length_bucketed_batches(lengths, 16, shuffle=True, seed=0)
    order = np.random.default_rng(0).permutation(len(lengths)).tolist()
    random_batches = [order[i:i + 16] for i in range(0, len(order), 16)]
    assert padded_tokens(lengths, bucketed) < 0.7 * padded_tokens(lengths, random_batches)
    assert padded_tokens(lengths, bucketed) < 1.05 * lengths.sum()


def test_rows_within_a_batch_have_similar_lengths():
    lengths = lengths_fixture()
    batches = length_bucketed_batches(lengths, 16, shuffle=True, seed=0)
    spread = np.mean([np.ptp(lengths[batch]) for batch in batches])
    assert spread < 5


def test_without_shuffle_chunks_keep_their_order():
    lengths = [5, 1, 9, 3, 7, 2]
    assert length_bucketed_batches(lengths, 2, shuffle=False, seed=0, bucket_multiplier=1) == \
        [[0, 1], [2, 3], [4, 5]]
    assert length_bucketed_batches(lengths, 2, shuffle=False, seed=0, bucket_multiplier=3) == \
        [[2, 4], [0, 3], [5, 1]]


def test_empty_and_tiny_inputs():
    assert length_bucketed_batches([], 4, shuffle=True, seed=0) == []
    assert length_bucketed_batches([3], 4, shuffle=True, seed=0) == [[0]]
    assert sequential_batches(0, 4) == []


def test_sequential_batches():
    assert sequential_batches(7, 3) == [[0, 1, 2], [3, 4, 5], [6]]


@pytest.mark.parametrize("kwargs", [dict(batch_size=0), dict(batch_size=2, bucket_multiplier=0)])
def test_bad_sizes_are_rejected(kwargs):
    with pytest.raises(ValueError, match="must be >= 1"):
        length_bucketed_batches([1, 2, 3], shuffle=True, seed=0, **kwargs)


def test_lengths_must_be_one_dimensional():
    with pytest.raises(ValueError, match="one-dimensional"):
        length_bucketed_batches([[1, 2]], 2, shuffle=False, seed=0)
