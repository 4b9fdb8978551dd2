import csv
import json

import numpy as np
import pytest

from lasr.cli import main
from lasr.data.manifest import ClipRecord
from lasr.data.cluster_tables import ClusterTables
from lasr.distill.clusters import (
    CAPTION_TABLE, CLIP_TABLE, SUMMARY, ClusterConfig, cluster_captions, fit_topics, majority_topic,
)
from lasr.errors import DataError, LasrError


def test_majority_topic_skips_outliers_and_breaks_ties_by_smaller_id():
    assert majority_topic([3, 3, -1, -1, -1]) == 3
    assert majority_topic([2, 5, 5, 2, -1]) == 2
    assert majority_topic([-1, -1]) == -1


def test_config_rejects_unknown_policy_and_keys(tmp_path):
    with pytest.raises(LasrError, match="'ignore' or 'reduce'"):
        ClusterConfig(outliers="drop")
    path = tmp_path / "c.yaml"
    path.write_text("min_topic_sise: 5\n")
    with pytest.raises(LasrError, match="min_topic_sise"):
        ClusterConfig.from_yaml(path)


def test_too_few_captions_is_a_clear_error():
    with pytest.raises(LasrError, match="more than 16 distinct captions"):
        fit_topics(["a", "b"], np.zeros((2, 4), np.float32), ClusterConfig())


def test_missing_tables_are_named(tmp_path):
    with pytest.raises(DataError, match="summary.json"):
        ClusterTables(tmp_path)


def _clotho_records(shared_data, n_clips):
    path = shared_data / "clotho_sample" / "clotho_captions_development.csv"
    if not path.is_file():
        pytest.skip("Clotho caption CSV not present")
    with open(path, encoding="cp949", newline="") as handle:  # the shared copy is CP949, not UTF-8
        rows = list(csv.DictReader(handle))[:n_clips]
    return [ClipRecord(id=r["file_name"], audio_path=f"/absent/{r['file_name']}", duration=20.0, sample_rate=44100,
                       captions=tuple(r[f"caption_{i}"] for i in range(1, 6)), dataset="clotho") for r in rows]


@pytest.mark.slow
class TestBERTopic:
    """Real BERTopic runs (UMAP's JIT compilation is paid once for the class)."""

    def test_no_topics_is_a_clear_message_with_numbers(self):
        rng = np.random.default_rng(0)
        docs = [f"caption {i} with word{i % 7}" for i in range(100)]
        with pytest.raises(LasrError, match=r"found 0 topics in 100 distinct captions with 100.0% outliers"):
            fit_topics(docs, rng.standard_normal((100, 16)).astype(np.float32), ClusterConfig(min_topic_size=60))

    def test_real_clotho_captions_give_topics_and_tables_line_up(self, shared_data, tmp_path):
        records = _clotho_records(shared_data, n_clips=400)  # 2,000 captions
        summary = cluster_captions(records, tmp_path, ClusterConfig(outliers="reduce"))
        assert summary["n_captions"] == 2000 and summary["n_clips"] == 400
        assert summary["n_topics"] >= 5 and 0 < summary["outlier_share_before_reduction"] < 0.6
        assert summary["outlier_share"] == 0.0  # reduce with threshold 0 reassigns every outlier
        assert sum(summary["topic_sizes"]) == 2000
        with open(tmp_path / CAPTION_TABLE, encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
        assert [(r["clip_key"], r["caption"]) for r in rows] == [(c.key, t) for c in records for t in c.captions]
        tables = ClusterTables(tmp_path)
        tables.check_against(records)
        assert list(tables.clip_topic) == [r.key for r in records]
        # the clip label is the majority of its captions' topics
        first = records[0]
        assert tables.clip_topic[first.key] == majority_topic([tables.caption_topic[c] for c in first.captions])
        other = _clotho_records(shared_data, n_clips=410)[405:]
        with pytest.raises(DataError, match="other captions: 5 of 5 training clips"):
            tables.check_against(other)
        keywords = json.loads((tmp_path / "topics.json").read_text())["topics"]
        assert all(topic["keywords"] for topic in keywords)
        assert json.loads((tmp_path / SUMMARY).read_text())["config"]["random_state"] == 42
        assert (tmp_path / CLIP_TABLE).is_file()

    def test_cli_on_a_manifest(self, demo_corpus, tmp_path, capsys):
        code = main(["cluster", "--data", str(demo_corpus / "manifests" / "clotho_development.jsonl.gz"),
                     "--out", str(tmp_path), "--min-topic-size", "5", "--outliers", "ignore"])
        assert code == 0
        assert "topics over 120 captions" in capsys.readouterr().out
        assert ClusterTables(tmp_path).n_topics >= 2
