"""Preflight of lasr fit|validate|test: every missing piece listed at once, before any model is built."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from lasr.cli import main
from lasr.data.manifest import ClipRecord, write_manifest
from lasr.tasks.preflight import preflight_problems
from lasr.tasks.retrieval import limited_test_setting

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

PASST = "lasr.models.audio.passt.PaSSTEncoder"
KEY = "model.init_args.model.init_args.audio_encoder.init_args"


@pytest.fixture
def no_weights(tmp_path, monkeypatch):
    """An empty weights directory and Hugging Face cache, so no pretrained file is found."""
    monkeypatch.setenv("LASR_WEIGHTS", str(tmp_path / "weights"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.chdir(tmp_path)


def test_paper_stage1_config_without_weights_or_data_lists_every_missing_piece(no_weights, capsys):
    assert main(["fit", "--config", str(REPO / "configs" / "stage1_pretrain.yaml")]) == 2
    err = capsys.readouterr().err
    assert "preflight found 6 problems" in err
    assert "Traceback" not in err
    assert f"{KEY}.checkpoint" in err and "lasr weights download passt-audioset" in err
    assert "text model 'roberta-large' is not available locally" in err
    for split, name in (("train", "development"), ("val", "validation"), ("test", "evaluation")):
        assert f"data.init_args.{split}[0].path: manifest data/manifests/clotho_{name}.jsonl.gz not found" in err
    assert "data.init_args.test_relevance: data/clotho/metadata_eval.csv not found" in err


def _config(audio_args: dict, data_args: dict) -> dict:
    dual = {"class_path": "lasr.models.dual_encoder.DualEncoder", "init_args": {
        "audio_encoder": {"class_path": PASST, "init_args": audio_args},
        "text_encoder": {"class_path": "lasr.models.text.HFTextEncoder", "init_args": {"name_or_path": "minilm"}}}}
    return {"model": {"class_path": "lasr.tasks.RetrievalTask", "init_args": {"model": dual}},
            "data": {"class_path": "lasr.data.datamodule.AudioTextDataModule", "init_args": data_args}}


def _manifest(path, captions):
    record = ClipRecord(id="a.wav", audio_path=str(path.parent / "a.wav"), duration=1.0, sample_rate=16000,
                        num_frames=16000, channels=1, captions=tuple(captions), dataset="clotho")
    write_manifest([record], path)
    return str(path)


def test_null_weights_need_allow_random_init(no_weights):
    problems = preflight_problems(_config({"checkpoint": None}, {"sample_rate": 32000}))
    assert len(problems) == 1 and "allow_random_init: true" in problems[0]
    assert preflight_problems(_config({"checkpoint": None, "allow_random_init": True}, {"sample_rate": 32000})) == []


def test_wrong_file_rate_manifest_and_relevance_are_reported_together(no_weights, tmp_path):
    torch.save({"not": torch.zeros(1)}, tmp_path / "other.pt")
    (tmp_path / "empty.jsonl").write_text("")
    test = _manifest(tmp_path / "test.jsonl", ["A dog barks. "])
    (tmp_path / "rel.csv").write_text('query,audio_filenames\nA dog barks.,"[\'a.wav\']"\n')
    config = _config({"checkpoint": str(tmp_path / "other.pt")},
                     {"sample_rate": 16000, "train": [{"path": str(tmp_path / "empty.jsonl")}],
                      "test": [{"path": test}], "test_relevance": str(tmp_path / "rel.csv")})
    problems = preflight_problems(config)
    assert len(problems) == 4, problems
    assert "is not a PaSST checkpoint" in problems[0]
    assert "holds no clips" in problems[1]
    assert "sample_rate: 16000 Hz" in problems[2] and "expects 32000 Hz" in problems[2]
    assert "1 of 1 queries not among the 1 captions" in problems[3]  # verbatim: the trailing space counts


def test_test_batch_limit_names_the_setting():
    assert limited_test_setting(SimpleNamespace(fast_dev_run=False, limit_test_batches=1.0)) is None
    assert limited_test_setting(SimpleNamespace(fast_dev_run=True, limit_test_batches=1.0)) == "fast_dev_run=True"
    assert limited_test_setting(SimpleNamespace(fast_dev_run=False, limit_test_batches=2)) == "limit_test_batches=2"
    assert limited_test_setting(SimpleNamespace(fast_dev_run=False, limit_test_batches=0.5)) == "limit_test_batches=0.5"


def test_aistat_stage1_overlay_names_all_its_corpora(no_weights, capsys):
    configs = REPO / "configs"
    assert main(["fit", "--config", str(configs / "stage1_pretrain.yaml"),
                 "--config", str(configs / "pipeline" / "aistat_stage1.yaml")]) == 2
    err = capsys.readouterr().err
    for manifest in ("clotho_development", "audiocaps_train", "wavcaps_freesound", "wavcaps_bbc_sound_effects",
                     "wavcaps_soundbible", "wavcaps_audioset_sl"):
        assert f"manifest data/manifests/{manifest}.jsonl.gz not found" in err
    assert "added[0].init_args: LLM mix caption table data/augment/aistat_mix.jsonl not found" in err  # 50,000 pairs
