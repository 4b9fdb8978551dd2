"""`lasr fit` under the three multi-process launchers, end to end on CPU (gloo, 2 ranks, tiny model, demo data).

Each run uses the shipped files as they are (``configs/demo/stage1_demo.yaml`` + ``configs/trainer/ddp.yaml``, or
``configs/slurm/stage1.sbatch``) with a tiny-model overlay and ``--trainer.accelerator cpu`` on top. Each trains,
checkpoints and tests its best checkpoint; a test-only callback records every rank's training batches.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from lasr.cli import main

from distill import tiny  # noqa: E402  (tests/ is on sys.path, as for tests/distill/test_chain.py)

REPO = Path(__file__).resolve().parents[2]
TESTS_ROOT = Path(tiny.__file__).parents[tiny.__name__.count(".")]  # makes tiny models and the audit importable
N_PAIRS = 24 * 5  # training (clip, caption) pairs of the demo_corpus fixture
PER_RANK_BATCH = 6  # 120 pairs / 2 ranks / 6 = 10 full steps per epoch: every pair is drawn once
AUDIT = f"{__package__}.audit.BatchAudit"

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env(**extra: str) -> dict[str, str]:
    """This environment without any launcher's variables (the test may itself run under SLURM or torchrun)."""
    launcher = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "GROUP_RANK", "NODE_RANK", "MASTER_ADDR",
                "MASTER_PORT")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SLURM_", "TORCHELASTIC_", "PL_")) and k not in launcher}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(TESTS_ROOT), env.get("PYTHONPATH", "")) if p)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.update(PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1", **extra)
    return env


def _lasr() -> list[str]:
    """The installed ``lasr`` command (what users run); ``python -m lasr.cli`` where there is none."""
    script = Path(sys.executable).parent / "lasr"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "lasr.cli"]


@pytest.fixture
def workdir(demo_corpus, tmp_path, monkeypatch) -> Path:
    """A run folder where the shipped configs' relative paths resolve: ``configs/``, ``demo_data/``, ``tiny.yaml``."""
    (tmp_path / "configs").symlink_to(REPO / "configs")
    (tmp_path / "demo_data").symlink_to(demo_corpus)
    overlay = {
        "trainer": {"max_epochs": 2, "num_sanity_val_steps": 0},
        "model": {"init_args": {"model": tiny.model_section(embed_dim=16, channels=(4, 8))}},
        "data": {"init_args": {"num_workers": 0, "train_seconds": 2.0, "eval_seconds": 4.0}},
    }
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(overlay))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _fit_args(audit: Path) -> list[str]:
    callback = json.dumps({"class_path": AUDIT, "init_args": {"out": str(audit)}})
    return ["--config", "tiny.yaml", "--trainer.accelerator", "cpu", f"--trainer.callbacks+={callback}"]


def _run(command: list[str], cwd: Path, env: dict[str, str], timeout: float = 420) -> str:
    result = subprocess.run(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            timeout=timeout)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout[-6000:]}"
    return result.stdout


def _test_table(out: str) -> str:
    """The printed test table (metric rows and counts) of a run; it must be printed exactly once (rank 0)."""
    assert out.count("== test") == 1, out[-4000:]
    lines = out[out.index("== test"):].splitlines()[1:]
    end = next(i for i, line in enumerate(lines) if line.startswith("("))  # the counts line closes the table
    return "\n".join(lines[: end + 1])


def _check_training(root: Path, audit: Path, epochs: int, world: int = 2) -> Path:
    """Every rank drew full batches of the configured per-rank size, the ranks' shards of each epoch cover every
    training pair exactly once, and both checkpoints exist with their epochs; returns the best checkpoint."""
    rows = {rank: [json.loads(line) for line in (audit / f"rank{rank}.jsonl").read_text().splitlines()]
            for rank in range(world)}
    steps = N_PAIRS // (world * PER_RANK_BATCH)
    for rank, batches in rows.items():
        assert [b["step"] for b in batches] == list(range(epochs * steps)), rank
        assert {len(b["index"]) for b in batches} == {PER_RANK_BATCH}
    for epoch in range(epochs):
        drawn = sorted(i for batches in rows.values() for b in batches if b["epoch"] == epoch for i in b["index"])
        assert drawn == list(range(N_PAIRS)), f"epoch {epoch}: the ranks' shards are not a partition"
    folder = root / "checkpoints" / "demo" / "stage1"
    best = sorted(folder.glob("best-*.ckpt"))
    assert len(best) == 1 and (folder / "last.ckpt").is_file()
    last = torch.load(folder / "last.ckpt", map_location="cpu", weights_only=False)
    assert (last["epoch"], last["global_step"]) == (epochs - 1, epochs * steps)  # global batch = world x 6
    return best[0]


def test_lightning_launcher_trains_and_tests_like_one_rank(workdir, capsys):
    """(a) Lightning's own launcher (``devices: 2``) re-executes the ``lasr`` command for rank 1."""
    audit = workdir / "audit"
    out = _run([*_lasr(), "fit", "--config", "configs/demo/stage1_demo.yaml", "--config", "configs/trainer/ddp.yaml",
                *_fit_args(audit), "--trainer.devices", "2", "--data.init_args.batch_size", str(PER_RANK_BATCH)],
               workdir, _env(MASTER_PORT=str(_free_port())))
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in out
    best = _check_training(workdir, audit, epochs=2)
    assert f"== test (best checkpoint {best})" in out
    two_ranks = _test_table(out)
    assert "(audio=8, text=40)" in two_ranks  # every test clip and caption once, not the padded shards
    # the same checkpoint on one process prints the same metrics (evaluation is gathered once, de-duplicated)
    assert main(["test", "--config", "configs/demo/stage1_demo.yaml", "--config", "tiny.yaml",
                 "--trainer.accelerator", "cpu", "--ckpt_path", str(best)]) == 0
    assert _test_table(capsys.readouterr().out) == two_ranks


def test_torchrun_starts_every_rank(workdir):
    """(b) ``torchrun --nproc_per_node 2 -m lasr.cli fit ...`` (torchrun is ``python -m torch.distributed.run``)."""
    audit = workdir / "audit"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
               str(_free_port()), "-m", "lasr.cli", "fit", "--config", "configs/demo/stage1_demo.yaml", "--config",
               "configs/trainer/ddp.yaml", *_fit_args(audit), "--trainer.devices", "2", "--trainer.max_epochs", "1",
               "--data.init_args.batch_size", str(PER_RANK_BATCH)]
    out = _run(command, workdir, _env())
    best = _check_training(workdir, audit, epochs=1)
    assert f"== test (best checkpoint {best})" in out and "(audio=8, text=40)" in _test_table(out)


def test_slurm_sbatch_script_under_simulated_srun(workdir):
    """(c) ``configs/slurm/stage1.sbatch`` itself, with an ``srun`` that starts the tasks as SLURM would (one per
    rank, with SLURM_PROCID/SLURM_LOCALID/SLURM_NODEID); Lightning's SLURMEnvironment sets up DDP from them."""
    bin_dir = workdir / "bin"
    bin_dir.mkdir()
    srun = bin_dir / "srun"
    srun.write_text(f"#!{sys.executable}\n" + (
        "import os, subprocess, sys\n"
        "tasks = [subprocess.Popen(sys.argv[1:], env=dict(os.environ, SLURM_PROCID=str(i), SLURM_LOCALID=str(i),\n"
        "                                                 SLURM_NODEID='0'))\n"
        "         for i in range(int(os.environ['SLURM_NTASKS']))]\n"
        "sys.exit(max(task.wait() for task in tasks))\n"))
    srun.chmod(0o755)
    allocation = {"SLURM_JOB_ID": "4242", "SLURM_JOB_NAME": "lasr-stage1", "SLURM_NNODES": "1",
                  "SLURM_NTASKS": "2", "SLURM_NTASKS_PER_NODE": "2", "SLURM_NODELIST": "127.0.0.1",
                  "SLURM_SUBMIT_DIR": str(workdir), "MASTER_PORT": str(_free_port())}
    env = _env(**allocation, CONFIG="configs/demo/stage1_demo.yaml", GLOBAL_BATCH=str(2 * PER_RANK_BATCH),
               VENV=str(workdir / "no-venv"))
    env["PATH"] = os.pathsep.join([str(bin_dir), env["PATH"]])
    audit = workdir / "audit"
    out = _run(["bash", str(REPO / "configs" / "slurm" / "stage1.sbatch"), *_fit_args(audit),
                "--trainer.max_epochs", "1"], workdir, env)
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in out
    best = _check_training(workdir, audit, epochs=1)
    assert f"== test (best checkpoint {best})" in out and "(audio=8, text=40)" in _test_table(out)


def test_separation_under_ddp_writes_once_and_does_not_hang(demo_corpus, tmp_path):
    """Language-queried separation on 2 ranks: rank 0 embeds the queries and writes the cache, the planned
    mixtures and the per-mixture results; the others read (a rank-0-only collective used to hang here)."""
    from separation.test_task import tiny_config

    config = tiny_config(demo_corpus, tmp_path)
    out = _run([*_lasr(), "fit", "--config", str(config), "--trainer.devices", "2", "--trainer.strategy", "ddp"],
               tmp_path, _env(MASTER_PORT=str(_free_port())))
    # once for fit and once for the test after it, by rank 0 only
    assert out.count("query embeddings:") == 2 and out.count("planned mixtures written") == 2
    assert "== test" in out and "value (dB)" in out
    assert (tmp_path / "queries.pt").is_file() and (tmp_path / "val_mixtures.csv").is_file()
    assert list(tmp_path.rglob("separation_test_*.csv")) and (tmp_path / "ckpt" / "last.ckpt").is_file()
