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


@pytest.mark.parametrize("world", [1, 3])
@pytest.mark.parametrize("epoch", [0, 2])
def test_state_continues_the_epoch_of_every_rank(world, epoch):
    """A state taken after ``consumed`` items continues each rank with exactly its remaining items."""
    for rank in range(world):
        before = WeightedEpochSampler([20, 13], [1.0, 0.5], seed=5, num_replicas=world, rank=rank)
        before.set_epoch(epoch)
        full = list(before)
        consumed = 4
        state = before.state_dict(consumed)
        assert (state["epoch"], state["position"]) == (epoch, consumed)
        after = WeightedEpochSampler([20, 13], [1.0, 0.5], seed=5, num_replicas=world, rank=rank)
        after.load_state_dict(state)
        assert after.epoch == epoch and list(after) == full[consumed:]
        assert len(after) == len(full)  # Lightning counts the trained part of the epoch itself
        after.set_epoch(epoch + 1)  # the next epoch is whole again
        before.set_epoch(epoch + 1)
        assert list(after) == list(before)


def test_finished_epoch_state_starts_the_next_one():
    sampler = WeightedEpochSampler([10], [1.0], seed=1)
    state = sampler.state_dict(len(sampler))
    assert (state["epoch"], state["position"]) == (1, 0)
    resumed = WeightedEpochSampler([10], [1.0], seed=1)
    resumed.load_state_dict(state)
    sampler.set_epoch(1)
    assert list(resumed) == list(sampler)


def test_state_of_another_order_is_refused():
    state = WeightedEpochSampler([10], [1.0], seed=1, num_replicas=2, rank=0).state_dict(2)
    with pytest.raises(ValueError, match=r"seed 1 -> 2.*num_replicas 2 -> 1"):
        WeightedEpochSampler([10], [1.0], seed=2, num_replicas=1, rank=0).load_state_dict(state)
    with pytest.raises(ValueError, match="total 10 -> 11"):
        WeightedEpochSampler([11], [1.0], seed=1, num_replicas=2, rank=0).load_state_dict(state)
