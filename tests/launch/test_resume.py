"""Mid-epoch resume: a run killed at any step and restarted with ``--ckpt_path last`` trains the same remaining
batches (items, captions, crops) as an uninterrupted run, from the last periodic checkpoint; SLURM's requeue
signal (simulated: faked allocation, ``scontrol`` on PATH) writes a checkpoint and requeues through Lightning.

Each run is a real ``lasr fit`` process (a SIGKILL cannot be caught), tiny model, 2 DataLoader workers (the
loader draws indices ahead of training, so the sampler's own count is not what was trained).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from distill import tiny  # noqa: E402  (tests/ is on sys.path, as for tests/distill/test_chain.py)

from lasr.data.sampler import WeightedEpochSampler

from .test_launchers import _env, _free_port, _lasr

REPO = Path(__file__).resolve().parents[2]
STEPS = 10  # 120 training pairs of the demo_corpus fixture / batch 12, per epoch
EPOCHS = 2
EVERY = 3  # periodic last.ckpt every 3 steps: saved after steps 3, 6, 9, 12, ...
AUDIT = f"{__package__}.audit"

pytestmark = pytest.mark.slow


def _periodic_last(dirpath: str, every: int) -> dict:
    """The shipped stage-1 config's periodic ``last.ckpt`` callback, with a test-sized interval."""
    shipped = yaml.safe_load((REPO / "configs" / "stage1_pretrain.yaml").read_text())
    (periodic,) = [c for c in shipped["trainer"]["callbacks"] if "every_n_train_steps" in c.get("init_args", {})]
    assert periodic["init_args"]["filename"] == "last"
    periodic["init_args"].update(dirpath=dirpath, every_n_train_steps=every)
    return periodic


@pytest.fixture(scope="module")
def make_run(demo_corpus, tmp_path_factory):
    """``make_run(name, *callbacks, file=name)``: a tiny demo stage-1 config ``<file>.yaml`` writing into
    ``<tmp>/<name>`` (several files may share one run folder: the resumed run drops the killing callback)."""
    tmp_path = tmp_path_factory.mktemp("resume")
    (tmp_path / "demo_data").symlink_to(demo_corpus)

    def make(name: str, *callbacks: dict, file: str | None = None) -> Path:
        config = yaml.safe_load((REPO / "configs" / "demo" / "stage1_demo.yaml").read_text())
        trainer = config["trainer"]
        root = str(tmp_path / name)
        trainer.update(max_epochs=EPOCHS, num_sanity_val_steps=0, default_root_dir=root)
        trainer["logger"]["init_args"]["save_dir"] = f"{root}_logs"
        for callback in trainer["callbacks"][:2]:
            callback["init_args"]["dirpath"] = root
        audit = {"class_path": f"{AUDIT}.BatchAudit", "init_args": {"out": root}}
        trainer["callbacks"] += [_periodic_last(root, EVERY), audit, *callbacks]
        config["model"]["init_args"]["model"] = tiny.model_section(embed_dim=16, channels=(4, 8))
        config["data"]["init_args"].update(batch_size=12, num_workers=2, train_seconds=2.0, eval_seconds=2.0)
        path = tmp_path / f"{file or name}.yaml"
        path.write_text(yaml.safe_dump(config))
        return path

    return make


def _fit(config: Path, *extra: str, env: dict | None = None, expect: int = 0) -> str:
    command = [*_lasr(), "fit", "--config", str(config), "--test_after_fit", "false", *extra]
    result = subprocess.run(command, cwd=config.parent, env=env or _env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, timeout=420)
    assert result.returncode == expect, f"{' '.join(command)} exited {result.returncode}:\n{result.stdout[-6000:]}"
    return result.stdout


def _signal_at(step: int, name: str = "SIGKILL") -> dict:
    return {"class_path": f"{AUDIT}.SignalAt", "init_args": {"step": step, "name": name}}


def _batches(root: Path, rank: int = 0) -> list[dict]:
    return [json.loads(line) for line in (root / f"rank{rank}.jsonl").read_text().splitlines()]


def _ckpt(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)


@pytest.fixture(scope="module")
def straight(make_run) -> list[dict]:
    """The batches of an uninterrupted run."""
    config = make_run("straight")
    _fit(config)
    batches = _batches(config.with_suffix(""))
    assert [b["step"] for b in batches] == list(range(EPOCHS * STEPS))
    assert len({tuple(b["index"]) for b in batches}) == len(batches)  # the two epochs have different orders
    return batches


def test_sigkill_then_ckpt_path_last_continues_with_the_same_batches(make_run, straight):
    kill_at = 14  # in the second epoch (whose order only the restored epoch number gives), after the step-12 save
    killed = make_run("killed", _signal_at(kill_at))
    root = killed.with_suffix("")
    _fit(killed, expect=-signal.SIGKILL)
    saved = kill_at // EVERY * EVERY  # the last periodic checkpoint before the kill
    last = _ckpt(root / "last.ckpt")
    assert last["global_step"] == saved
    assert last["AudioTextDataModule"]["train_sampler"] == {
        "seed": 0, "epoch": 1, "position": saved % STEPS * 12, "total": 120, "num_replicas": 1}
    before = len(_batches(root))
    assert before == kill_at + 1  # steps 0..kill_at started, the last ones lost with the process

    out = _fit(make_run("killed", file="killed_resume"), "--ckpt_path", "last")
    assert "not resumable" not in out  # Lightning's warning for a plain loader: the DataModule holds the state
    resumed = _batches(root)[before:]
    assert [b["step"] for b in resumed] == list(range(saved, EPOCHS * STEPS))
    assert resumed == straight[saved:]  # same items, captions and random crops, batch by batch
    assert _ckpt(root / "last.ckpt")["global_step"] == EPOCHS * STEPS  # the final epoch, as without the kill


def test_ddp_ranks_resume_at_their_own_positions(make_run):
    """2 ranks (gloo), 6 items per rank and step: both ranks SIGKILL themselves as step 8 starts; resumed from
    the step-6 checkpoint, each rank trains its own shard of the epoch from its position on."""
    ddp = ("--trainer.strategy", "ddp", "--trainer.devices", "2", "--data.init_args.batch_size", "6")
    killed = make_run("ddp", _signal_at(8))
    root = killed.with_suffix("")
    env = _env(MASTER_PORT=str(_free_port()))
    _fit(killed, *ddp, env=env, expect=-signal.SIGKILL)
    assert _ckpt(root / "last.ckpt")["AudioTextDataModule"]["train_sampler"]["position"] == 6 * 6
    before = [len(_batches(root, rank)) for rank in range(2)]
    _fit(make_run("ddp", file="ddp_resume"), *ddp, "--ckpt_path", "last", env=_env(MASTER_PORT=str(_free_port())))
    for rank in range(2):
        order = []
        for epoch in range(EPOCHS):
            sampler = WeightedEpochSampler([120], [1.0], seed=0, num_replicas=2, rank=rank)
            sampler.set_epoch(epoch)
            items = [index for index, _ in sampler]
            order += [items[i : i + 6] for i in range(0, len(items), 6)]
        resumed = _batches(root, rank)[before[rank]:]
        assert [b["step"] for b in resumed] == list(range(6, EPOCHS * STEPS)), rank
        assert [b["index"] for b in resumed] == order[6:], rank


def test_slurm_requeue_signal_checkpoints_and_requeues(make_run, tmp_path):
    """SIGUSR1 (``#SBATCH --signal=SIGUSR1@120``) under a faked one-task allocation: Lightning's SLURMEnvironment
    saves ``hpc_ckpt_1.ckpt`` and runs ``scontrol requeue <job>``; the fake scontrol records the call and, as
    SLURM does when it requeues, sends SIGTERM, on which last.ckpt is written at the end of the batch. Both hold
    the sampler position their resume continues from (the resume itself: the SIGKILL test above)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "scontrol.log"
    scontrol = bin_dir / "scontrol"
    scontrol.write_text(f"#!{sys.executable}\nimport os, signal, sys\n"
                        f"open({str(calls)!r}, 'a').write(' '.join(sys.argv[1:]) + '\\n')\n"
                        "os.kill(os.getppid(), signal.SIGTERM)\n")
    scontrol.chmod(0o755)
    allocation = {"SLURM_JOB_ID": "4242", "SLURM_JOB_NAME": "lasr-stage1", "SLURM_NNODES": "1", "SLURM_NTASKS": "1",
                  "SLURM_NTASKS_PER_NODE": "1", "SLURM_PROCID": "0", "SLURM_LOCALID": "0", "SLURM_NODEID": "0",
                  "SLURM_NODELIST": "127.0.0.1"}
    env = _env(**allocation)
    env["PATH"] = os.pathsep.join([str(bin_dir), env["PATH"]])
    config = make_run("slurm", _signal_at(7, "SIGUSR1"))
    root = config.with_suffix("")

    _fit(config, "--ckpt_path", "last", env=env)  # the sbatch line: the same for the first and requeued runs
    assert calls.read_text().splitlines() == ["requeue 4242"]
    hpc = _ckpt(root / "hpc_ckpt_1.ckpt")
    assert hpc["global_step"] == 7  # the signal came as step 7 started: steps 0..6 trained
    assert hpc["AudioTextDataModule"]["train_sampler"]["position"] == 7 * 12
    last = _ckpt(root / "last.ckpt")
    assert last["global_step"] == 8  # SIGTERM: training stopped after step 7, on_exception saved last.ckpt
    assert last["AudioTextDataModule"]["train_sampler"]["position"] == 8 * 12
    assert [b["step"] for b in _batches(root)] == list(range(8))


def test_ckpt_path_last_takes_the_requeue_checkpoint_when_it_is_newer(tmp_path):
    """If SLURM kills the job before its SIGTERM checkpoint is written, hpc_ckpt_<n>.ckpt is the newest state."""
    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint

    from lasr.cli.train import newer_hpc_checkpoint

    trainer = L.Trainer(default_root_dir=tmp_path, logger=False, enable_progress_bar=False,
                        callbacks=[ModelCheckpoint(dirpath=tmp_path / "ckpt", filename="last")])
    assert newer_hpc_checkpoint(trainer) is None
    (tmp_path / "ckpt").mkdir()
    last, hpc = tmp_path / "ckpt" / "last.ckpt", tmp_path / "hpc_ckpt_1.ckpt"
    for path, mtime in ((last, 1000), (hpc, 2000)):
        path.write_bytes(b"")
        os.utime(path, (mtime, mtime))
    assert newer_hpc_checkpoint(trainer) == str(hpc)
    os.utime(last, (3000, 3000))  # the SIGTERM checkpoint came after it
    assert newer_hpc_checkpoint(trainer) is None
