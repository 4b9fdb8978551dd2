"""Training sets added next to the manifests, each with its own sampling weight (e.g. AISTAT's 50,000 LLM-mixed
pairs, :class:`lasr.augment.audio.llm_mix.LLMMixPairs`).

An added set is built at setup from the concatenated training records; the DataModule appends it to the
training dataset as one more part of the weighted sampler, so ``weight`` means what it means for a manifest
(draws per item and epoch).
"""

from __future__ import annotations

import bisect
from typing import Any, Sequence

from torch.utils.data import Dataset

from lasr.data.manifest import ClipRecord


class AddedTrainingSet:
    """Base of the ``data.added`` entries.

    Args:
        weight: draws per item and epoch (as a manifest's ``weight``).

    Subclasses set ``changes_audio`` (their items are not plain clips, so a precomputed teacher of the clip
    does not describe them) and implement :meth:`build`.
    """

    changes_audio = True

    def __init__(self, weight: float = 1.0):
        if weight < 0:
            raise ValueError(f"{type(self).__name__}: weight must be >= 0, got {weight}")
        self.weight = float(weight)

    @property
    def name(self) -> str:
        return type(self).__name__

    def build(self, records: Sequence[ClipRecord], datamodule: Any) -> Dataset:
        """The added items (a map-style dataset taking ``(index, epoch)`` keys, items shaped like the
        datamodule's training items), built from the training ``records``."""
        raise NotImplementedError


class TrainingParts(Dataset):
    """The manifests' training dataset followed by the added sets; keys ``index`` or ``(index, epoch)`` over
    the concatenation (the weighted sampler's indices), items carry the global ``index``.

    ``records`` are the base dataset's (the clips every part draws from)."""

    def __init__(self, base: Dataset, added: Sequence[Dataset]):
        self.parts = [base, *added]
        self.records = getattr(base, "records", None)
        self.ends: list[int] = []
        total = 0
        for part in self.parts:
            total += len(part)
            self.ends.append(total)

    def __len__(self) -> int:
        return self.ends[-1]

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        index, epoch = key if isinstance(key, tuple) else (key, None)
        if not 0 <= index < len(self):
            raise IndexError(f"training index {index} out of range ({len(self)} items)")
        part = bisect.bisect_right(self.ends, index)
        local = index - (self.ends[part - 1] if part else 0)
        item = self.parts[part][local if epoch is None else (local, epoch)]
        item["index"] = index
        return item
