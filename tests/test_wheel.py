"""The built wheel works outside the checkout: recipes by name, the stage-2 recipe printed, the demo corpus made.

The wheel is built offline from a copy of the sources (``pip wheel --no-build-isolation``: the venv's setuptools,
no download) and installed with ``--no-deps`` into a fresh venv in ``tmp_path``. That venv reuses this one's
dependencies (torch, Lightning, ...) through a ``.pth`` line naming this venv's site-packages: a plain path line
adds the folder without running its ``.pth`` files, so this venv's editable ``lasr`` finder never loads, and the
commands run with the working folder outside the checkout and no ``PYTHONPATH``.
"""

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "setup.py", "README.md", "lasr", "configs")
# prints the wheel's requirements (extras aside) that the installed versions do not meet
UNMET_REQUIREMENTS = """
from importlib.metadata import requires, version
from packaging.requirements import Requirement
for line in requires("lasr"):
    req = Requirement(line)
    if not req.marker and not req.specifier.contains(version(req.name), prereleases=True):
        print(req, version(req.name))
"""

# the demo chain's stage config from the installed demo recipes (what `lasr demo-chain` trains stage 3 on)
CHAIN_CONFIG = """
from pathlib import Path
from lasr.demo_chain import Chain, demo_recipe
print(demo_recipe("stage1_demo.yaml"))
print(Chain(Path("demo"), Path("out")).config("stage3", "stage3_demo.yaml", {"init_from": "s2.ckpt"}, {}))
"""


def _run(args: list, cwd: Path, env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, (f"{' '.join(map(str, args))} -> {done.returncode}:\n"
                                  f"{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, dict]:
    """(the venv's bin folder, an environment without PYTHONPATH) with the wheel installed."""
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"  # a copy: an in-tree build would leave build/ and lasr.egg-info/ in the checkout
    src.mkdir()
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(REPO / name, src / name)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["PIP_NO_INDEX"] = env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", root / "dist", src],
         root, env)
    wheel = next((root / "dist").glob("lasr-*.whl"))
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], root, env)
    python = venv / "bin" / "python"
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = Path(_run([python, "-c", purelib], root, env).stdout.strip())
    shared = dict.fromkeys(sysconfig.get_paths()[key] for key in ("purelib", "platlib"))
    (site / "lasr_test_shared_venv.pth").write_text("".join(f"{path}\n" for path in shared))
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "-q", wheel], root, env)
    return venv / "bin", env


def test_wheel_ships_the_recipes_and_runs_outside_the_checkout(installed, tmp_path):
    bin_dir, env = installed
    where = _run([bin_dir / "python", "-c", "import lasr; print(lasr.__file__)"], tmp_path, env).stdout.strip()
    assert Path(where).is_relative_to(bin_dir.parent), f"lasr imported from {where}, not the fresh venv"
    assert _run([bin_dir / "lasr", "--version"], tmp_path, env).stdout.strip().startswith("lasr ")
    unmet = _run([bin_dir / "python", "-c", UNMET_REQUIREMENTS], tmp_path, env).stdout.strip()
    assert unmet == "", f"the wheel's dependency bounds exclude the versions the tests run with: {unmet}"
    listed = _run([bin_dir / "lasr", "recipes", "list"], tmp_path, env)
    names = [line.split()[0] for line in listed.stdout.splitlines()]
    shipped = sorted(p.relative_to(REPO / "configs").as_posix() for p in (REPO / "configs").rglob("*") if p.is_file())
    assert names == shipped
    assert str(bin_dir.parent) in listed.stderr  # the recipes' folder is the installed package's

    # the slow two (imports of torch, Lightning, transformers) run side by side
    lasr = str(bin_dir / "lasr")
    printing = subprocess.Popen([lasr, "fit", "--config", "stage2_distill.yaml", "--print_config"], cwd=tmp_path,
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    demo = _run([lasr, "data", "demo", "--out", "demo", "--seed", "0", "--n-development", "4", "--n-validation", "2",
                 "--n-evaluation", "2", "--n-sources", "4"], tmp_path, env)
    recipe, config = _run([bin_dir / "python", "-c", CHAIN_CONFIG], tmp_path, env).stdout.split()
    assert Path(recipe).is_relative_to(bin_dir.parent)
    stage3 = yaml.safe_load(Path(tmp_path, config).read_text())
    train = str(Path("demo", "manifests", "clotho_development.jsonl.gz"))
    assert stage3["data"]["init_args"]["train"] == [{"path": train}]
    assert [t["class_path"].rsplit(".", 1)[1] for t in stage3["model"]["init_args"]["terms"]][-1] == "TopicHeads"
    out, err = printing.communicate(timeout=300)
    assert printing.returncode == 0, err[-3000:]
    assert f"using the shipped recipe {bin_dir.parent}" in err and "stage2_distill.yaml" in err
    assert "class_path: lasr.tasks.terms.Distillation" in out and "class_path: lasr.tasks.RetrievalTask" in out
    assert "seed_everything: 13" in out  # stage 1's key, through the overlay's `config:` base
    assert (tmp_path / "demo" / "manifests" / "clotho_development.jsonl.gz").is_file(), demo.stdout
