"""Epoch sampler over concatenated manifests with per-dataset weights, rank-aware for DDP.

It subclasses ``DistributedSampler`` so Lightning does not wrap it again, and it yields ``(index, epoch)``
pairs so that the dataset can seed each item's randomness from (seed, epoch, index): reproducible whatever
the number of workers or whether workers are persistent.

Mid-epoch resume: :meth:`state_dict` / :meth:`load_state_dict` carry (seed, epoch, position). The position is
not the sampler's own count: the DataLoader draws indices ahead of training (``prefetch_factor`` x workers
batches), so the caller passes the number of items actually trained (the DataModule reads it from
Lightning's loop). Since every item's randomness is keyed by (seed, epoch, index), restoring the position also
restores the remaining items' crops, caption draws and mixtures.
"""

from __future__ import annotations

import math
from typing import Iterator, Sequence

import torch
import torch.distributed as dist
from torch.utils.data import DistributedSampler


def _world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class WeightedEpochSampler(DistributedSampler):
    """Each epoch draws ``weight * size`` items from every dataset part, shuffles, and shards by rank.

    A weight of 1 takes every item once; 2 takes every item twice; 0.5 takes a random half (a different half
    each epoch). Every rank gets the same number of items (the global list is padded by wrapping around).

    Args:
        sizes: number of items of each part, in concatenation order.
        weights: one weight per part (>= 0).
        shuffle: shuffle within the epoch (training); False keeps concatenation order.
        seed: base seed; the epoch's order is a function of (seed, epoch) only.
    """

    def __init__(self, sizes: Sequence[int], weights: Sequence[float], shuffle: bool = True, seed: int = 0,
                 num_replicas: int | None = None, rank: int | None = None):
        if len(sizes) != len(weights):
            raise ValueError(f"{len(sizes)} dataset parts but {len(weights)} weights")
        if any(w < 0 for w in weights):
            raise ValueError(f"dataset weights must be >= 0, got {list(weights)}")
        world_rank, world_size = _world()
        self.sizes, self.weights = list(sizes), list(weights)
        self.num_replicas = world_size if num_replicas is None else num_replicas
        self.rank = world_rank if rank is None else rank
        self.shuffle, self.seed, self.epoch = shuffle, seed, 0
        self._resume: tuple[int, int] | None = None  # (epoch, items of this rank to skip) after load_state_dict
        self.drop_last = False
        self.total = sum(self._count(n, w) for n, w in zip(self.sizes, self.weights))
        if self.total == 0:
            raise ValueError("the weighted training set is empty (all sizes or weights are 0)")
        self.num_samples = math.ceil(self.total / self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas

    @staticmethod
    def _count(size: int, weight: float) -> int:
        return int(math.floor(weight)) * size + int(round((weight - math.floor(weight)) * size))

    def _epoch_indices(self) -> list[int]:
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        indices: list[torch.Tensor] = []
        offset = 0
        for size, weight in zip(self.sizes, self.weights):
            whole, frac = int(math.floor(weight)), weight - math.floor(weight)
            base = torch.arange(offset, offset + size)
            indices.extend([base] * whole)
            if frac > 0 and size:
                indices.append(base[torch.randperm(size, generator=gen)[: int(round(frac * size))]])
            offset += size
        flat = torch.cat(indices) if indices else torch.empty(0, dtype=torch.long)
        if self.shuffle:
            flat = flat[torch.randperm(len(flat), generator=gen)]
        return flat.tolist()

    def __iter__(self) -> Iterator[tuple[int, int]]:
        indices = self._epoch_indices()
        while len(indices) < self.total_size:  # pad by wrapping around so every rank gets num_samples
            indices += indices[: self.total_size - len(indices)]
        skip = 0
        if self._resume is not None:
            epoch, position = self._resume
            skip = position if epoch == self.epoch else 0
            self._resume = None  # only the first pass after a resume starts part-way
        for index in indices[self.rank : self.total_size : self.num_replicas][skip:]:
            yield index, self.epoch

    def __len__(self) -> int:
        return self.num_samples  # the whole epoch even when resumed part-way: Lightning counts the trained part

    def state_dict(self, consumed: int) -> dict[str, int]:
        """The state to continue after ``consumed`` items of this rank's current epoch (every rank trains the
        same number, so one state serves all ranks); a finished epoch is stored as the start of the next."""
        epoch, position = self.epoch, consumed
        if position >= self.num_samples:
            epoch, position = epoch + 1, 0
        return {"seed": self.seed, "epoch": epoch, "position": position, "total": self.total,
                "num_replicas": self.num_replicas}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Continue from :meth:`state_dict`'s state: the next pass is epoch ``state["epoch"]`` from its
        ``position``. Raises ``ValueError`` naming what differs when the order could not be the same (another
        seed, training set size or number of ranks)."""
        now = {"seed": self.seed, "total": self.total, "num_replicas": self.num_replicas}
        differ = [f"{key} {state[key]} -> {value}" for key, value in now.items() if key in state and state[key] != value]
        if differ:
            raise ValueError("the checkpoint's training order cannot be continued: " + ", ".join(differ))
        self.epoch = int(state["epoch"])
        self._resume = (self.epoch, int(state["position"]))
