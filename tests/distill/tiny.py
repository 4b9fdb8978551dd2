"""Tiny, fast models and checkpoints for the stage-2/3 tests (no pretrained weights, milliseconds per batch)."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import torch
from torch import Tensor, nn

from lasr.models.text import TextEncoder
from lasr.models.run_config import CONFIG_KEY, build_dual_encoder


class HashTextEncoder(TextEncoder):
    """Bag of hashed words -> mean of learned word vectors (a stand-in for a transformer in tests)."""

    def __init__(self, dim: int = 16, buckets: int = 512):
        super().__init__()
        self.output_dim, self.buckets = dim, buckets
        self.table = nn.EmbeddingBag(buckets, dim, mode="mean")

    def _bucket(self, word: str) -> int:
        return int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(), "little") % self.buckets

    def forward(self, captions: list[str]) -> Tensor:
        ids, offsets = [], []
        for caption in captions:
            offsets.append(len(ids))
            ids.extend(self._bucket(w) for w in (caption.lower().split() or [""]))
        device = self.table.weight.device
        return self.table(torch.tensor(ids, device=device), torch.tensor(offsets, device=device))


def model_section(embed_dim: int = 16, sample_rate: int = 16000, channels=(8, 16), text_dim: int = 16) -> dict:
    """``class_path``/``init_args`` of a tiny dual encoder (CNN audio tower + hashed-word text tower)."""
    return {
        "class_path": "lasr.models.dual_encoder.DualEncoder",
        "init_args": {
            "embed_dim": embed_dim, "tau": 0.05,
            "audio_encoder": {"class_path": "lasr.models.audio.cnn.CNNEncoder",
                              "init_args": {"sample_rate": sample_rate, "n_fft": 256, "hop_length": 128,
                                            "n_mels": 32, "channels": list(channels)}},
            "text_encoder": {"class_path": f"{__name__}.HashTextEncoder", "init_args": {"dim": text_dim}},
        },
    }


def make_checkpoint(path: Path, seed: int = 0, store_config: bool = True, eval_seconds: float = 8.0, **shape) -> Path:
    """A task-style checkpoint (``state_dict`` with ``model.*`` keys) of a random tiny dual encoder."""
    torch.manual_seed(seed)
    section = model_section(**shape)
    model = build_dual_encoder(section)
    checkpoint = {"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()}}
    if store_config:
        checkpoint[CONFIG_KEY] = {"model": {"class_path": "lasr.tasks.RetrievalTask", "init_args": {"model": section}},
                                  "data": {"init_args": {"eval_seconds": eval_seconds}}}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, path)
    return path


def write_cluster_tables(folder: Path, records, n_topics: int = 3, rename: bool = False) -> Path:
    """`lasr cluster`-style tables over ``records`` (cycling topics, some outliers; ``rename``: other captions)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "summary.json").write_text(json.dumps({"n_topics": n_topics}))
    with open(folder / "caption_topics.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["clip_key", "slot", "caption", "topic"])
        for i, r in enumerate(records):
            for s, c in enumerate(r.captions):
                writer.writerow([r.key, s, c + (" (other)" if rename else ""), (i + s) % n_topics - (s == 4)])
    with open(folder / "clip_topics.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["clip_key", "topic", "n_captions", "n_outliers"])
        writer.writerows([r.key, i % n_topics, 5, 1] for i, r in enumerate(records))
    return folder
