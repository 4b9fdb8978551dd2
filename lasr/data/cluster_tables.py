"""Read the tables written by ``lasr cluster`` and check them against a training set (no BERTopic import)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Sequence

from lasr.data.manifest import ClipRecord
from lasr.data.teacher_store import read_json
from lasr.errors import DataError

OUTLIER = -1
CAPTION_TABLE, CLIP_TABLE, TOPICS, SUMMARY = "caption_topics.csv", "clip_topics.csv", "topics.json", "summary.json"
_SHOWN = 5


def _read_csv(path: Path, columns: tuple[str, ...]) -> list[dict[str, str]]:
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            if not set(columns) <= set(reader.fieldnames or []):
                raise DataError(f"expected columns {list(columns)}, found {reader.fieldnames}", path, 1)
            return list(reader)
    except FileNotFoundError:
        raise DataError("cluster table not found (run `lasr cluster` first)", path) from None


def _topic(value: str, path: Path, line: int, n_topics: int) -> int:
    try:
        topic = int(value)
    except ValueError:
        raise DataError(f"topic {value!r} is not an integer", path, line) from None
    if not OUTLIER <= topic < n_topics:
        raise DataError(f"topic {topic} outside [-1, {n_topics})", path, line)
    return topic


class ClusterTables:
    """Caption -> topic and clip key -> topic, with the topic count (topics are 0..n_topics-1, -1 = outlier)."""

    def __init__(self, folder: str | Path):
        self.path = Path(folder)
        summary = read_json(self.path / SUMMARY)
        self.n_topics = int(summary["n_topics"])
        if self.n_topics < 1:
            raise DataError("the clustering found no topics: nothing to classify", self.path / SUMMARY)
        self.caption_topic: dict[str, int] = {}
        for line, row in enumerate(_read_csv(self.path / CAPTION_TABLE, ("caption", "topic")), start=2):
            self.caption_topic[row["caption"]] = _topic(row["topic"], self.path / CAPTION_TABLE, line, self.n_topics)
        self.clip_topic: dict[str, int] = {}
        for line, row in enumerate(_read_csv(self.path / CLIP_TABLE, ("clip_key", "topic")), start=2):
            self.clip_topic[row["clip_key"]] = _topic(row["topic"], self.path / CLIP_TABLE, line, self.n_topics)

    def check_against(self, records: Sequence[ClipRecord]) -> None:
        """DataError unless every training clip and every original caption has a row (same captions clustered)."""
        keys = [r.key for r in records]
        captions = list(dict.fromkeys(c for r in records for c in r.captions))
        missing_keys = [k for k in keys if k not in self.clip_topic]
        missing_captions = [c for c in captions if c not in self.caption_topic]
        if missing_keys or missing_captions:
            raise DataError(
                f"cluster tables were made from other captions: {len(missing_keys)} of {len(keys)} training clips "
                f"(first: {missing_keys[:_SHOWN]}) and {len(missing_captions)} of {len(captions)} training captions "
                f"(first: {missing_captions[:_SHOWN]}) have no topic; run `lasr cluster` on the training manifests",
                self.path)

    def labels(self, clip_keys: Sequence[str], captions: Sequence[str],
               text_labels: str = "caption") -> tuple[list[int], list[int]]:
        """(audio labels = clip topics, text labels) for a batch; text labels are the caption's own topic
        (``caption``; strings not in the table, e.g. augmentations, fall back to the clip's topic) or the clip's."""
        try:
            audio = [self.clip_topic[k] for k in clip_keys]
        except KeyError as err:
            raise DataError(f"clip {err.args[0]!r} has no topic", self.path / CLIP_TABLE) from None
        if text_labels == "clip":
            return audio, list(audio)
        text = [self.caption_topic.get(c, a) for c, a in zip(captions, audio)]
        return audio, text
