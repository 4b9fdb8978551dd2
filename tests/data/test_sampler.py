from collections import Counter

import pytest

from lasr.data.sampler import WeightedEpochSampler


def _indices(sampler):
    return [i for i, _ in sampler]


def test_weights_take_whole_copies_and_fractions():
    sampler = WeightedEpochSampler([10, 20], [2.0, 0.5], seed=1)
    counts = Counter(_indices(sampler))
    assert len(sampler) == 10 * 2 + 10
    assert all(counts[i] == 2 for i in range(10))
    second = [i for i in counts if i >= 10]
    assert len(second) == 10 and all(counts[i] == 1 for i in second)


def test_epoch_changes_order_and_is_reproducible():
    a = WeightedEpochSampler([50], [1.0], seed=3)
    b = WeightedEpochSampler([50], [1.0], seed=3)
    first = _indices(a)
    assert first == _indices(b)
    a.set_epoch(1)
    assert _indices(a) != first and sorted(_indices(a)) == sorted(first)
    assert {e for _, e in a} == {1}


def test_ranks_partition_the_epoch_with_equal_lengths():
    shards = [_indices(WeightedEpochSampler([7], [1.0], seed=0, num_replicas=3, rank=r)) for r in range(3)]
    assert {len(s) for s in shards} == {3}
    assert set().union(*map(set, shards)) == set(range(7))


def test_bad_weights_are_rejected():
    with pytest.raises(ValueError, match="weights"):
        WeightedEpochSampler([3, 4], [1.0])
    with pytest.raises(ValueError, match=">= 0"):
        WeightedEpochSampler([3], [-1.0])
