import json
from pathlib import Path

import pytest
import torch

from lasr.cli import main
from lasr.data.manifest import read_manifest
from lasr.data import teacher_store as store
from lasr.distill import teachers
from lasr.models.embedding import embed_texts, iter_clip_embeddings
from lasr.data.teacher_store import TeacherTable, load_teacher_tables
from lasr.errors import DataError, LasrError
from lasr.models.run_config import load_dual_encoder
from .tiny import make_checkpoint


@pytest.fixture(scope="module")
def two_teachers(tmp_path_factory):
    """Teachers with different audio rates and embedding sizes."""
    root = tmp_path_factory.mktemp("teachers")
    a = make_checkpoint(root / "passt_like" / "last.ckpt", seed=1, embed_dim=16, sample_rate=16000)
    b = make_checkpoint(root / "beats_like" / "last.ckpt", seed=2, embed_dim=24, sample_rate=8000)
    return a, b


@pytest.fixture(scope="module")
def dev_manifest(demo_corpus) -> Path:
    return demo_corpus / "manifests" / "clotho_development.jsonl.gz"


@pytest.fixture(scope="module")
def teacher_out(two_teachers, dev_manifest, tmp_path_factory):
    out = tmp_path_factory.mktemp("emb")
    code = main(["teachers", "--ckpt", *map(str, two_teachers), "--data", str(dev_manifest), "--out", str(out),
                 "--shard-size", "16", "--no-progress"])
    assert code == 0
    return out


def test_tables_hold_every_clip_and_caption_per_teacher(teacher_out, dev_manifest, two_teachers):
    records = read_manifest(dev_manifest)
    tables = load_teacher_tables([teacher_out])
    assert [t.embed_dim for t in tables] == [16, 24]
    captions = list(dict.fromkeys(c for r in records for c in r.captions))
    for table, checkpoint in zip(tables, two_teachers):
        assert table.audio_keys == [r.key for r in records]
        assert table.texts == captions
        torch.testing.assert_close(table.audio.norm(dim=1), torch.ones(len(records)))
        # rows equal the teacher's own embeddings of that clip and caption
        model = load_dual_encoder(checkpoint).model
        _, direct = next(iter_clip_embeddings(model, records[:2], seconds=8.0))
        audio, text = table.lookup([records[1].key], [records[1].captions[2]])
        torch.testing.assert_close(audio[0], direct[1], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(text[0], embed_texts(model, [records[1].captions[2]])[0], atol=1e-5, rtol=1e-5)


def test_killed_run_resumes_without_recomputing_finished_shards(two_teachers, dev_manifest, tmp_path, monkeypatch):
    calls = {"n": 0}
    real_write = store.write_shard

    def dying_write(folder, shard, emb):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("killed")
        real_write(folder, shard, emb)

    monkeypatch.setattr(teachers, "write_shard", dying_write)
    args = dict(checkpoints=[str(two_teachers[0])], manifests=[str(dev_manifest)], out=tmp_path, shard_size=16,
                progress=False)
    with pytest.raises(KeyboardInterrupt):
        teachers.embed_teachers(**args)
    folder = tmp_path / store.teacher_dir_name(two_teachers[0])
    assert len(list(folder.glob("*.pt"))) == 2 and not list(folder.glob(".*.tmp"))
    with pytest.raises(DataError, match="incomplete"):
        TeacherTable(folder)

    embedded = []
    real_embed = teachers._embed_shard
    monkeypatch.setattr(teachers, "write_shard", real_write)
    monkeypatch.setattr(teachers, "_embed_shard", lambda t, shard, *a: embedded.append(shard.file) or real_embed(t, shard, *a))
    entries = teachers.embed_teachers(**args)
    index = json.loads((folder / store.INDEX).read_text())
    assert index["complete"] and len(embedded) == len(index["shards"]) - 2
    assert entries[0]["resumed_items"] == 16 + 8  # both audio shards (24 clips) were finished
    assert TeacherTable(folder).audio.shape[0] == 24


def test_replaced_checkpoint_recomputes(two_teachers, dev_manifest, tmp_path):
    ckpt = make_checkpoint(tmp_path / "run" / "last.ckpt", seed=3)
    args = dict(checkpoints=[str(ckpt)], manifests=[str(dev_manifest)], out=tmp_path / "out", progress=False)
    teachers.embed_teachers(**args)
    before = load_teacher_tables([tmp_path / "out"])[0].audio.clone()
    make_checkpoint(ckpt, seed=4)  # same path, new weights
    teachers.embed_teachers(**args)
    after = load_teacher_tables([tmp_path / "out"])[0]
    assert not torch.allclose(before, after.audio)
    assert len(list(after.path.glob("*.pt"))) == 2  # stale shards removed


class _ParaphrasePolicy:
    def variants(self, record):
        return [c.upper() for c in record.captions[:1]]


def test_caption_variants_hook_and_table_are_embedded(two_teachers, dev_manifest, tmp_path):
    records = read_manifest(dev_manifest)
    table = tmp_path / "aug.jsonl"
    table.write_text(json.dumps({"key": records[0].key, "captions": ["a back-translated caption"]}) + "\n")
    texts = teachers.student_caption_texts(records, _ParaphrasePolicy(), teachers.load_caption_table(table))
    assert records[3].captions[0].upper() in texts and "a back-translated caption" in texts
    teachers.embed_teachers([str(two_teachers[0])], [str(dev_manifest)], tmp_path / "out", policy=_ParaphrasePolicy(),
                            captions_table=str(table), progress=False)
    loaded = load_teacher_tables([tmp_path / "out"])[0]
    assert loaded.missing([], texts) == ([], [])


def test_checkpoint_of_another_architecture_is_a_clear_error(tmp_path, dev_manifest):
    ckpt = make_checkpoint(tmp_path / "a" / "last.ckpt", embed_dim=16)
    config = tmp_path / "other.yaml"
    other = make_checkpoint(tmp_path / "b" / "last.ckpt", embed_dim=32)
    section = torch.load(other, weights_only=False)["lasr_config"]
    import yaml

    config.write_text(yaml.safe_dump(section))
    with pytest.raises(LasrError, match=r"shape mismatch.*audio_projection.weight \(16, 16\) vs model \(32, 16\)"):
        load_dual_encoder(ckpt, str(config))


def test_checkpoint_without_config_asks_for_one(tmp_path, dev_manifest, capsys):
    ckpt = make_checkpoint(tmp_path / "bare.ckpt", store_config=False)
    code = main(["teachers", "--ckpt", str(ckpt), "--data", str(dev_manifest), "--out", str(tmp_path / "o")])
    assert code == 2 and "--config FILE" in capsys.readouterr().err


def test_missing_ids_are_reported_with_counts(teacher_out):
    table = load_teacher_tables([teacher_out])[0]
    keys, texts = table.missing(["clotho/nope.wav", table.audio_keys[0]], ["unheard caption", table.texts[0]])
    assert keys == ["clotho/nope.wav"] and texts == ["unheard caption"]
    with pytest.raises(DataError, match="unheard caption"):
        table.lookup([table.audio_keys[0]], ["unheard caption"])


def test_config_yaml_beside_the_checkpoint_is_used(tmp_path):
    import yaml

    ckpt = make_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt", store_config=False, embed_dim=12)
    stored = make_checkpoint(tmp_path / "other.ckpt", embed_dim=12)
    (tmp_path / "run" / "config.yaml").write_text(yaml.safe_dump(torch.load(stored, weights_only=False)["lasr_config"]))
    assert load_dual_encoder(ckpt).model.embed_dim == 12


def test_augmented_caption_policy_variants_per_slot_reach_the_teachers(two_teachers, dev_manifest, tmp_path):
    records = read_manifest(dev_manifest)
    table = tmp_path / "captions.jsonl"
    rows = [{"clip_key": records[2].key, "slot": 1, "kind": "paraphrase", "source": records[2].captions[1],
             "text": "a paraphrase from the LLM"},
            {"clip_key": records[5].key, "slot": 0, "kind": "rewrite", "source": records[5].captions[0],
             "text": "a rewrite from the LLM"}]
    table.write_text("".join(json.dumps(r) + "\n" for r in rows))
    code = main(["teachers", "--ckpt", str(two_teachers[0]), "--data", str(dev_manifest), "--out", str(tmp_path / "o"),
                 "--caption-policy", "lasr.data.captions.AugmentedCaptionPolicy",
                 "--caption-policy-args", json.dumps({"table": str(table)}), "--no-progress"])
    assert code == 0
    loaded = load_teacher_tables([tmp_path / "o"])[0]
    assert {"a paraphrase from the LLM", "a rewrite from the LLM"} <= set(loaded.texts)
    assert len(loaded.texts) == 120 + 2
