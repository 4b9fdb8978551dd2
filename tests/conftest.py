"""Shared fixtures: a small demo corpus made once per session, paths of the real shared data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA


@pytest.fixture(scope="session")
def demo_corpus(tmp_path_factory) -> Path:
    """A small demo corpus with manifests in ``<dir>/manifests`` (made through the CLI code path)."""
    from lasr.cli import main

    out = tmp_path_factory.mktemp("demo")
    code = main(["data", "demo", "--out", str(out), "--seed", "0", "--n-development", "24",
                 "--n-validation", "8", "--n-evaluation", "8"])
    assert code == 0
    return out


# A tiny untrained RetrievalTask-style checkpoint (small CNN + MiniLM) with its run config next to it.
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
    from lasr.models.run_config import build_dual_encoder

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
    """Two checkpoints of the same architecture with different weights."""
    root = tmp_path_factory.mktemp("tiny_ckpt")
    return write_tiny_checkpoint(root / "a", seed=0), write_tiny_checkpoint(root / "b", seed=1)


@pytest.fixture(scope="session")
def tiny_model_config() -> dict:
    """The class_path/init_args of the tiny dual encoder behind ``tiny_checkpoints``."""
    return TINY_MODEL
