"""Learning-rate schedule of the DCASE 2025 T6 baseline, stepped every optimisation step."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class WarmupCosineSchedule:
    """Linear warm-up from ``min_lr`` to the optimiser's lr over ``warmup_epochs``, cosine back down to
    ``min_lr`` over the next ``rampdown_epochs``, then constant ``min_lr``. Epochs may be fractional; the
    schedule is evaluated at every step as ``step / steps_per_epoch``.
    """

    warmup_epochs: float = 1.0
    rampdown_epochs: float = 15.0
    min_lr: float = 1e-7

    def lr(self, epoch: float, max_lr: float) -> float:
        """Learning rate at (fractional) ``epoch`` for peak ``max_lr``."""
        if epoch < self.warmup_epochs:
            return self.min_lr + (max_lr - self.min_lr) * epoch / self.warmup_epochs
        progress = (epoch - self.warmup_epochs) / self.rampdown_epochs if self.rampdown_epochs > 0 else 1.0
        if progress >= 1.0:
            return self.min_lr
        return self.min_lr + 0.5 * (max_lr - self.min_lr) * (1.0 + math.cos(math.pi * progress))

    def factor(self, step: int, steps_per_epoch: float, max_lr: float) -> float:
        """Multiplier of the optimiser's base lr at ``step`` (for ``torch.optim.lr_scheduler.LambdaLR``)."""
        return self.lr(step / max(steps_per_epoch, 1e-12), max_lr) / max_lr
