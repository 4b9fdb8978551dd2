import math

import pytest

from lasr.tasks.schedule import WarmupCosineSchedule


def test_baseline_schedule_points():
    s = WarmupCosineSchedule(warmup_epochs=1, rampdown_epochs=15, min_lr=1e-7)
    peak = 2e-5
    assert s.lr(0.0, peak) == pytest.approx(1e-7)
    assert s.lr(0.5, peak) == pytest.approx(1e-7 + 0.5 * (peak - 1e-7))
    assert s.lr(1.0, peak) == pytest.approx(peak)
    assert s.lr(1.0 + 7.5, peak) == pytest.approx(1e-7 + 0.5 * (peak - 1e-7))  # half-way down the cosine
    assert s.lr(16.0, peak) == pytest.approx(1e-7)
    assert s.lr(19.9, peak) == pytest.approx(1e-7)
    assert s.factor(299, 299, peak) == pytest.approx(1.0)


def test_schedule_is_monotone_after_warmup():
    s = WarmupCosineSchedule()
    values = [s.lr(1 + 15 * i / 100, 1.0) for i in range(101)]
    assert all(a >= b for a, b in zip(values, values[1:]))
    assert not math.isnan(sum(values))
