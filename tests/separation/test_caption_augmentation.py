"""LLM caption augmentation served to the separator: the real AugmentedCaptionPolicy through SeparationTask."""

from __future__ import annotations

import hashlib

import lightning as L
import numpy as np
import pytest
import torch
from torch import Tensor

from lasr.augment.export import write_table
from lasr.data.captions import AugmentedCaptionPolicy
from lasr.data.manifest import read_manifest
from lasr.data.mixtures import SeparationDataModule
from lasr.models.separation.query import QueryEncoder
from lasr.models.separation.resunet import ResUNet30
from lasr.tasks.separation import SeparationTask

DIM = 16


class RecordingQuery(QueryEncoder):
    """Deterministic hash embeddings; remembers every string it was asked to embed."""

    def __init__(self):
        super().__init__()
        self.init_args, self.output_dim, self.seen = {}, DIM, set()

    def _embed(self, captions: list[str]) -> Tensor:
        self.seen.update(captions)
        seeds = [int(hashlib.sha1(c.encode()).hexdigest()[:8], 16) for c in captions]
        return torch.stack([torch.randn(DIM, generator=torch.Generator().manual_seed(s)) for s in seeds])


class RecordingTask(SeparationTask):
    """Remembers the query strings of each training and validation batch."""

    def on_fit_start(self) -> None:
        self.train_queries, self.val_queries = [], []

    def training_step(self, batch, batch_idx):
        self.train_queries.extend(batch["caption"])
        return super().training_step(batch, batch_idx)

    def validation_step(self, batch, batch_idx):
        self.val_queries.extend(batch["caption"])
        return super().validation_step(batch, batch_idx)


def variant(text: str) -> str:
    return f"LLM variant of: {text}"


@pytest.fixture
def augmented(demo_corpus, tmp_path):
    manifests = demo_corpus / "manifests"
    sources = read_manifest(manifests / "sources.jsonl.gz")
    table = tmp_path / "captions.jsonl"
    write_table([{"kind": "paraphrase", "clip_key": r.key, "slot": 0, "source": r.captions[0],
                  "text": variant(r.captions[0]), "custom_id": r.key, "model": "m", "template": "paraphrase@v1",
                  "sample_index": 0, "extra": {}} for r in sources], table)
    data = SeparationDataModule(
        train=[str(manifests / "sources.jsonl.gz")], val=[str(manifests / "clotho_validation.jsonl.gz")],
        sample_rate=16000, train_seconds=0.5, eval_seconds=1.0, batch_size=4, eval_batch_size=4, num_workers=0,
        pin_memory=False, caption_policy=AugmentedCaptionPolicy(str(table), p_original=0.0))
    separator = ResUNet30(n_fft=256, hop_length=64, condition_size=DIM, channels=[4, 8])
    return sources, data, RecordingTask(separator, RecordingQuery(), log_examples=0)


def test_variants_reach_the_query_encoder_and_evaluation_sees_originals(augmented, tmp_path):
    sources, data, task = augmented
    trainer = L.Trainer(accelerator="cpu", max_epochs=1, limit_train_batches=3, limit_val_batches=2,
                        num_sanity_val_steps=0,
                        logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        default_root_dir=str(tmp_path))
    trainer.fit(task, datamodule=data)
    originals = {r.captions[0] for r in sources}
    variants = {variant(c) for c in originals}
    assert len(task.train_queries) == 12  # 3 steps of 4
    assert set(task.train_queries) <= variants  # p_original=0: the LLM variants only
    assert variants <= task.query_encoder.seen  # every variant was embedded by the query tower (setup cache)
    val_originals = {c for r in read_manifest(data.val_sources[0].path) for c in r.captions}
    assert task.val_queries and set(task.val_queries) <= val_originals
    assert not any(q.startswith("LLM variant") for q in task.val_queries)
    assert task.last_metrics["val"]["n_mixtures"] == len(task.val_queries)


def test_uniform_rule_serves_the_original_one_time_in_k_plus_one(demo_corpus, tmp_path):
    record = read_manifest(demo_corpus / "manifests" / "sources.jsonl.gz")[0]
    table = tmp_path / "captions.jsonl"
    write_table([{"kind": "paraphrase", "clip_key": record.key, "slot": 0, "source": record.captions[0],
                  "text": f"variant {k}", "custom_id": str(k), "model": "m", "template": "paraphrase@v1",
                  "sample_index": k, "extra": {}} for k in range(3)], table)
    policy = AugmentedCaptionPolicy(str(table), p_original="uniform")
    rng = np.random.default_rng(0)
    draws = [policy.caption(record, 0, rng) for _ in range(8000)]
    assert abs(draws.count(record.captions[0]) / len(draws) - 0.25) < 0.02  # K=3 -> 1/(K+1)
    assert abs(draws.count("variant 2") / len(draws) - 0.25) < 0.02
    assert policy.caption(record, 0, None) == record.captions[0]
    with pytest.raises(ValueError, match="uniform"):
        AugmentedCaptionPolicy(str(table), p_original="sometimes")


def test_the_lass_recipe_keys_must_match_the_table(demo_corpus, tmp_path):
    from lasr.data.captions import LassCaptionAugmentation
    from lasr.errors import DataError

    record = read_manifest(demo_corpus / "manifests" / "sources.jsonl.gz")[0]
    table = tmp_path / "captions.jsonl"
    write_table([{"kind": "paraphrase", "clip_key": record.key, "slot": 0, "source": record.captions[0],
                  "text": f"variant {k}", "custom_id": str(k), "model": "local:gemma3-270m",
                  "template": "paraphrase@v1", "sample_index": k, "extra": {}} for k in range(2)], table)
    policy = LassCaptionAugmentation(str(table), llm="gemma3-270m", prompt="paraphrase@v1", variants_per_caption=2)
    assert policy.p_original == "uniform" and policy.kinds == ("paraphrase",)
    with pytest.raises(DataError, match="made with model"):
        LassCaptionAugmentation(str(table), llm="microsoft/phi-2")
    with pytest.raises(DataError, match="made with template"):
        LassCaptionAugmentation(str(table), prompt="paraphrase_wavcaps@v1")
    with pytest.raises(DataError, match="variants_per_caption is 1"):
        LassCaptionAugmentation(str(table), variants_per_caption=1)
