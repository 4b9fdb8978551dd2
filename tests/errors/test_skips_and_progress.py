"""Skip reports per stage and per file; progress on every long job, readable in a log file."""

from __future__ import annotations

import io
import logging
from types import SimpleNamespace

import lightning as L
import pytest
import torch

from lasr.tasks.callbacks import LogProgress
from lasr.tasks.skips import SkipTally
from lasr.utils.progress import progress


@pytest.fixture()
def records(caplog):
    """Records of lasr's loggers (the CLI stops them propagating to the root logger caplog listens on)."""
    logger = logging.getLogger("lasr")
    old = logger.level, logger.propagate
    logger.addHandler(caplog.handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # each record once, whether or not the CLI configured logging before
    yield caplog
    logger.removeHandler(caplog.handler)
    logger.setLevel(old[0])
    logger.propagate = old[1]


class _Module:
    def __init__(self):
        self.logged: dict[str, float] = {}
        self.trainer = SimpleNamespace(is_global_zero=True)

    def log(self, name, value, **kwargs):
        self.logged[name] = value


def test_skips_are_counted_per_file_and_reported_under_their_own_stage(records):
    caplog = records
    tally, module = SkipTally(), _Module()
    for _ in range(5):  # one bad clip tried once per caption
        tally.add("train", [("/d/bad.wav", "/d/bad.wav: audio file not found")])
    tally.add("train", [("/d/other.wav", "/d/other.wav: unreadable audio (x)")])
    tally.add("val", [])
    assert tally.report(module, "val") == 0  # validation runs before on_train_epoch_end: must not eat train's
    assert tally.report(module, "train") == 2
    assert module.logged == {"val/skipped_items": 0.0, "train/skipped_items": 2.0}
    assert "train: skipped 2 bad clip(s)" in caplog.text and "val: skipped" not in caplog.text
    assert tally.count("train") == 0  # reset after the report


def test_progress_in_a_log_is_one_line_per_update_with_rate_and_eta(monkeypatch):
    monkeypatch.setenv("LASR_PROGRESS_INTERVAL", "0")
    log = io.StringIO()  # not a terminal
    with progress(total=4, desc="embedding", unit="clip", stream=log) as bar:
        for _ in range(4):
            bar.update(1)
    text = log.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert len(lines) >= 4 and lines[-1].startswith("embedding: 100%") and "4/4" in lines[-1]
    assert "clip/s" in lines[-1] and "<" in lines[-1]  # rate and elapsed<remaining


def test_disabled_progress_writes_nothing():
    log = io.StringIO()
    with progress(total=3, stream=log, enabled=False) as bar:
        bar.update(3)
    assert log.getvalue() == ""


class _Tiny(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)

    def training_step(self, batch, batch_idx):
        loss = self.layer(batch[0]).pow(2).mean()
        self.log("train/loss", loss)
        return loss

    def train_dataloader(self):
        return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(8, 2)), batch_size=2)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _fit(root, epochs: int, bar: bool) -> None:
    trainer = L.Trainer(max_epochs=epochs, accelerator="cpu", enable_progress_bar=bar, logger=False,
                        enable_checkpointing=False, enable_model_summary=False, default_root_dir=root,
                        callbacks=[LogProgress(interval_s=0.0)])
    trainer.fit(_Tiny())


def test_runs_without_a_bar_print_progress_and_one_line_per_epoch(tmp_path, records):
    caplog = records
    _fit(tmp_path, epochs=2, bar=False)
    lines = [r.getMessage() for r in caplog.records if r.name == "lasr.tasks.callbacks"]
    epochs = [line for line in lines if " done in " in line]
    assert len(epochs) == 2 and epochs[1].startswith("epoch 2/2 done in") and "train/loss" in epochs[1]
    assert any("train: batch 2/4 (50%)" in line and "ETA" in line for line in lines)


def test_progress_lines_are_silent_when_lightnings_bar_is_on(tmp_path, records):
    caplog = records
    _fit(tmp_path, epochs=1, bar=True)
    assert not [r for r in caplog.records if r.name == "lasr.tasks.callbacks"]


def test_short_jobs_leave_no_progress_lines_in_a_log(monkeypatch):
    monkeypatch.delenv("LASR_PROGRESS_INTERVAL", raising=False)
    log = io.StringIO()
    with progress(total=3, stream=log) as bar:
        bar.update(3)
    assert log.getvalue() == ""
