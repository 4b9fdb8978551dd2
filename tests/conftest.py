"""Shared fixtures: a small demo corpus made once per session, paths of the real shared data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

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
