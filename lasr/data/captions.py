"""Caption policies: decide which text is served for a clip's caption slot.

The DataModule never reads ``record.captions`` directly for training; it asks its policy. The identity policy
serves the human caption; later policies (LLM paraphrases, back-translations, ...) plug in here without touching
the DataModule.
"""

from __future__ import annotations

import numpy as np

from lasr.data.manifest import ClipRecord


class CaptionPolicy:
    """Identity policy: the original caption in slot ``slot`` of the clip."""

    def caption(self, record: ClipRecord, slot: int, rng: np.random.Generator | None) -> str:
        """Return the caption text to train on for ``record.captions[slot]``.

        Args:
            record: the clip.
            slot: index into ``record.captions``.
            rng: per-item random generator (None in evaluation: policies must then be deterministic).
        """
        return record.captions[slot]
