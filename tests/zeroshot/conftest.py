"""A tiny untrained RetrievalTask-style checkpoint (small CNN + MiniLM) with its run config next to it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

TINY_MODEL = {
    "class_path": "lasr.models.dual_encoder.DualEncoder",
    "init_args": {
        "embed_dim": 16,
        "audio_encoder": {"class_path": "lasr.models.audio.cnn.CNNEncoder",
                          "init_args": {"sample_rate": 16000, "n_mels": 32, "channels": [4, 8]}},
        "text_encoder": {"class_path": "lasr.models.text.HFTextEncoder",
                         "init_args": {"name_or_path": "minilm", "pooling": "mean"}},
    },
}


def write_tiny_checkpoint(folder: Path, seed: int) -> Path:
    """``folder/last.ckpt`` + ``folder/config.yaml`` (as LightningCLI would leave them); returns the ckpt."""
    from lasr.tasks.run_config import build_dual_encoder

    folder.mkdir(parents=True, exist_ok=True)
    config = {"model": {"class_path": "lasr.tasks.RetrievalTask", "init_args": {"model": TINY_MODEL}}}
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    torch.manual_seed(seed)
    model = build_dual_encoder(TINY_MODEL)
    state = {f"model.{k}": v for k, v in model.state_dict().items()}
    torch.save({"state_dict": state, "hyper_parameters": {"eval_chunk_size": 1024}}, folder / "last.ckpt")
    return folder / "last.ckpt"


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory) -> tuple[Path, Path]:
    """Two checkpoints of the same architecture with different weights (same helper as tests/search)."""
    root = tmp_path_factory.mktemp("tiny_ckpt")
    return write_tiny_checkpoint(root / "a", seed=0), write_tiny_checkpoint(root / "b", seed=1)
