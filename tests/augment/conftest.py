"""Fixtures for the augmentation tests: a loopback chat-completions server and a tiny captioned manifest."""

from __future__ import annotations

from pathlib import Path

import pytest

from lasr.augment.loopback import LoopbackChatServer
from lasr.data.manifest import ClipRecord, write_manifest

CAPTIONS = [
    ("a dog barks twice in a yard", "a dog is barking outside"),
    ("rain falls on a tin roof", "heavy rain patters on metal"),
    ("a man speaks in a quiet room", "a man talks softly indoors"),
    ("birds chirp in the morning", "small birds sing in trees"),
    ("a car engine starts and idles", "an engine turns over and runs"),
    ("a door slams shut loudly", "someone shuts a door hard"),
]


@pytest.fixture()
def server():
    with LoopbackChatServer() as srv:
        yield srv


@pytest.fixture()
def tiny_manifest(tmp_path: Path) -> Path:
    records = [ClipRecord(id=f"clip{i}.wav", audio_path=f"/nonexistent/clip{i}.wav", duration=5.0, sample_rate=16000,
                          captions=caps, labels=(["dog", "rain", "speech", "bird", "engine", "door"][i],),
                          split="development", dataset="tiny")
               for i, caps in enumerate(CAPTIONS)]
    path = tmp_path / "tiny.jsonl"
    write_manifest(records, path)
    return path
