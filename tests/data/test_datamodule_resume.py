"""A DataModule restored from its checkpoint state serves the rest of the epoch exactly: the same items with the
same random draws (crops, augmented captions, mixtures' interferers and SNRs), since every draw is keyed by
(seed, epoch, index) and the state carries the epoch and the trained position."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from lasr.augment.audio.dataset import AudioAugmentConfig, AugmentedAudioTextDataModule
from lasr.data.datamodule import AudioTextDataModule
from lasr.data.manifest import read_manifest
from lasr.data.mixtures import SeparationDataModule
from lasr.errors import LasrError

BATCH = 4
TRAINED = 3  # batches trained before the checkpoint


def _trainer(processed: int) -> SimpleNamespace:
    """What the DataModule reads of Lightning's trainer: the batches processed in the current epoch."""
    progress = SimpleNamespace(current=SimpleNamespace(processed=processed))
    return SimpleNamespace(fit_loop=SimpleNamespace(epoch_loop=SimpleNamespace(batch_progress=progress)))


def _same(a: dict, b: dict) -> bool:
    return all(torch.equal(a[k], b[k]) if isinstance(a[k], torch.Tensor) else a[k] == b[k] for k in a)


MODULES = {
    "retrieval": lambda m: AudioTextDataModule(train=[str(m / "clotho_development.jsonl.gz")], sample_rate=16000,
                                               train_seconds=1.0, batch_size=BATCH, num_workers=0, pin_memory=False),
    "audio_augment": lambda m: AugmentedAudioTextDataModule(
        augment=AudioAugmentConfig(p_gain=1.0, p_pitch=0.0, p_speed=0.0, p_crop=0.5), train=[str(m / "clotho_development.jsonl.gz")],
        sample_rate=16000, train_seconds=2.0, batch_size=BATCH, num_workers=0, pin_memory=False),
    "mixtures": lambda m: SeparationDataModule(train=[str(m / "sources.jsonl.gz")], sample_rate=16000,
                                               train_seconds=0.5, batch_size=BATCH, num_workers=0, pin_memory=False),
}


@pytest.mark.parametrize("kind", list(MODULES))
def test_restored_module_serves_the_rest_of_the_epoch(demo_corpus, kind):
    manifests = demo_corpus / "manifests"
    straight = MODULES[kind](manifests)
    straight.setup("fit")
    loader = straight.train_dataloader()
    loader.sampler.set_epoch(1)
    full = list(loader)
    straight.trainer = _trainer(TRAINED)
    state = straight.state_dict()
    assert state == {"train_sampler": {"seed": 0, "epoch": 1, "position": TRAINED * BATCH,
                                       "total": len(loader.sampler), "num_replicas": 1}}

    resumed = MODULES[kind](manifests)
    resumed.load_state_dict(state)
    resumed.setup("fit")
    rest = list(resumed.train_dataloader())  # no set_epoch yet: with workers the loader starts before it
    assert len(rest) == len(full) - TRAINED
    assert all(_same(a, b) for a, b in zip(rest, full[TRAINED:]))
    if kind != "mixtures":  # the compared captions include drawn ones (augmented: what the random ops did)
        originals = {c for r in read_manifest(manifests / "clotho_development.jsonl.gz") for c in r.captions}
        drawn = [c for batch in full for c in batch["caption"] if c not in originals]
        assert bool(drawn) == (kind == "audio_augment")


def test_state_of_other_data_is_a_clear_error(demo_corpus):
    manifests = demo_corpus / "manifests"
    module = MODULES["retrieval"](manifests)
    module.load_state_dict({"train_sampler": {"seed": 0, "epoch": 0, "position": 8, "total": 7, "num_replicas": 1}})
    module.setup("fit")
    with pytest.raises(LasrError, match=r"total 7 -> 120.*same data, data.seed and devices"):
        module.train_dataloader()
