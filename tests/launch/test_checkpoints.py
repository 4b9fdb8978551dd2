"""Checkpoints mean their names: ``last.ckpt`` is the final epoch (not the best one), and ``--ckpt_path last``
continues a run exactly where it stopped (weights, optimiser, scheduler and sampler order)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from lasr.cli import main

from distill import tiny  # noqa: E402  (tests/ is on sys.path, as for tests/distill/test_chain.py)

REPO = Path(__file__).resolve().parents[2]
STEPS = 10  # 120 training pairs of the demo_corpus fixture / batch 12


@pytest.fixture
def run_config(demo_corpus, tmp_path, monkeypatch) -> dict:
    """The demo stage-1 config, tiny, whose best checkpoint is by construction the first epoch's (monitor the
    step count, mode min)."""
    (tmp_path / "demo_data").symlink_to(demo_corpus)
    config = yaml.safe_load((REPO / "configs" / "demo" / "stage1_demo.yaml").read_text())
    trainer = config["trainer"]
    trainer.update(num_sanity_val_steps=0)
    best, last = trainer["callbacks"][:2]
    assert best["init_args"]["monitor"] and last["init_args"]["filename"] == "last"
    best["init_args"].update(monitor="step", mode="min")
    config["model"]["init_args"]["model"] = tiny.model_section(embed_dim=16, channels=(4, 8))
    config["data"]["init_args"].update(batch_size=12, num_workers=0, train_seconds=2.0, eval_seconds=2.0)
    monkeypatch.chdir(tmp_path)
    return config


def _fit(config: dict, root: str, *extra: str) -> Path:
    """``lasr fit`` writing its checkpoints and logs into ``root``."""
    config["trainer"]["default_root_dir"] = root
    config["trainer"]["logger"]["init_args"]["save_dir"] = f"{root}_logs"
    for callback in config["trainer"]["callbacks"][:2]:
        callback["init_args"]["dirpath"] = root
    path = Path(f"{root}.yaml")
    path.write_text(yaml.safe_dump(config))
    assert main(["fit", "--config", str(path), "--test_after_fit", "false", *extra]) == 0
    return Path(root)


def _load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)


@pytest.mark.slow
def test_last_is_the_final_epoch_and_resume_continues_exactly(run_config):
    straight = _fit(run_config, "straight", "--trainer.max_epochs", "3")
    (best,) = straight.glob("best-*.ckpt")
    assert best.name == "best-epoch=00.ckpt" and _load(best)["epoch"] == 0
    last = _load(straight / "last.ckpt")
    assert (last["epoch"], last["global_step"]) == (2, 3 * STEPS)

    resumed = _fit(run_config, "resumed", "--trainer.max_epochs", "2")
    assert _load(resumed / "last.ckpt")["epoch"] == 1
    _fit(run_config, "resumed", "--trainer.max_epochs", "3", "--ckpt_path", "last")
    again = _load(resumed / "last.ckpt")
    assert (again["epoch"], again["global_step"]) == (2, 3 * STEPS)
    assert again["lr_schedulers"] == last["lr_schedulers"]
    for name, tensor in last["state_dict"].items():
        torch.testing.assert_close(again["state_dict"][name], tensor, msg=name)
    moments = zip(again["optimizer_states"][0]["state"].values(), last["optimizer_states"][0]["state"].values())
    for ours, theirs in moments:
        torch.testing.assert_close(ours["exp_avg"], theirs["exp_avg"])
