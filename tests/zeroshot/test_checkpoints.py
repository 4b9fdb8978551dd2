"""Rebuilding the dual encoder of a checkpoint from its run config (lasr.models.checkpoints)."""

from __future__ import annotations

import shutil

import pytest
import torch
import yaml

from lasr.errors import LasrError
from lasr.models.checkpoints import CheckpointError, find_run_config, load_retrieval_model, model_fingerprint



def _saved_fingerprint(ckpt) -> str:
    state = torch.load(ckpt, map_location="cpu", weights_only=False)["state_dict"]
    model = load_retrieval_model(ckpt)
    assert all(torch.equal(model.state_dict()[k[len("model."):]], v) for k, v in state.items())
    return model_fingerprint(model)


def test_config_next_to_checkpoint_and_explicit_config(tiny_checkpoints, tmp_path):
    ckpt, other = tiny_checkpoints
    fingerprint = _saved_fingerprint(ckpt)
    assert fingerprint != _saved_fingerprint(other)
    moved = tmp_path / "elsewhere" / "x.ckpt"
    moved.parent.mkdir()
    shutil.copy(ckpt, moved)
    with pytest.raises(CheckpointError, match="pass --config"):
        load_retrieval_model(moved)
    assert model_fingerprint(load_retrieval_model(moved, config=ckpt.parent / "config.yaml")) == fingerprint


def test_lightning_cli_log_dir_config_is_found_by_checkpoint_dirpath(tiny_checkpoints, tmp_path, monkeypatch):
    ckpt, _ = tiny_checkpoints
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "checkpoints" / "run1" / "last.ckpt"
    target.parent.mkdir(parents=True)
    shutil.copy(ckpt, target)
    config = {"trainer": {"callbacks": [{"class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
                                         "init_args": {"dirpath": "checkpoints/run1"}}]},
              "model": yaml.safe_load((ckpt.parent / "config.yaml").read_text())["model"]}
    other_run = yaml.safe_dump({"trainer": {"callbacks": [{"init_args": {"dirpath": "checkpoints/run2"}}]}})
    for decoy in (tmp_path / "logs" / "other" / "version_0" / "config.yaml", tmp_path / "checkpoints" / "config.yaml"):
        decoy.parent.mkdir(parents=True, exist_ok=True)
        decoy.write_text(other_run)  # configs of other runs, even in the checkpoint's ancestors, are not taken
    written = tmp_path / "logs" / "run1" / "version_0" / "config.yaml"
    written.parent.mkdir(parents=True)
    written.write_text(yaml.safe_dump(config))
    assert find_run_config(target) == written
    assert model_fingerprint(load_retrieval_model(target)) == model_fingerprint(load_retrieval_model(ckpt))


def test_config_stored_in_the_checkpoint_wins_over_searching(tiny_checkpoints, tiny_model_config, tmp_path):
    ckpt, _ = tiny_checkpoints
    data = torch.load(ckpt, map_location="cpu", weights_only=False)
    data["lasr_config"] = {"model": {"class_path": "lasr.tasks.RetrievalTask", "init_args": {"model": tiny_model_config}},
                           "data": {}}
    torch.save(data, tmp_path / "self_describing.ckpt")  # no config.yaml anywhere near it
    assert model_fingerprint(load_retrieval_model(tmp_path / "self_describing.ckpt")) == \
        model_fingerprint(load_retrieval_model(ckpt))


def test_weights_that_do_not_fit_are_reported(tiny_checkpoints, tmp_path):
    ckpt, _ = tiny_checkpoints
    config = yaml.safe_load((ckpt.parent / "config.yaml").read_text())
    config["model"]["init_args"]["model"]["init_args"]["embed_dim"] = 32
    (tmp_path / "wrong.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(LasrError, match="does not match"):
        load_retrieval_model(ckpt, config=tmp_path / "wrong.yaml")
    with pytest.raises(CheckpointError, match="not found"):
        load_retrieval_model(tmp_path / "missing.ckpt")
    (tmp_path / "garbage.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable"):
        load_retrieval_model(tmp_path / "garbage.ckpt")
