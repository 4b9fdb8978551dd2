import csv
import json
import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
import torchaudio

from lasr.data.manifest import read_manifest
from lasr.distill.teachers import embed_teachers
from lasr.errors import DataError
from lasr.losses.topics import TopicClassificationLoss
from lasr.tasks.cluster import ClusterDistillTask
from lasr.tasks.distill import DistillRetrievalTask
from lasr.models.run_config import build_dual_encoder, load_dual_encoder
from lasr.tasks.teacher_sources import OnlineTeachers, TeacherSpec

from .tiny import make_checkpoint, model_section


@pytest.fixture(scope="module")
def records(demo_corpus):
    return read_manifest(demo_corpus / "manifests" / "clotho_development.jsonl.gz")


@pytest.fixture(scope="module")
def teacher_dir(demo_corpus, tmp_path_factory):
    root = tmp_path_factory.mktemp("task_teachers")
    ckpt = make_checkpoint(root / "t" / "last.ckpt", seed=5, embed_dim=12)
    embed_teachers([str(ckpt)], [str(demo_corpus / "manifests" / "clotho_development.jsonl.gz")], root / "out",
                   progress=False)
    return root / "out"


def _fake_trainer(records):
    datamodule = SimpleNamespace(datasets={"train": SimpleNamespace(records=records)}, caption_policy=None,
                                 sample_rate=16000)
    return SimpleNamespace(datamodule=datamodule)


def _batch(records, n=4, seconds=1.0, rate=16000):
    chosen = records[:n]
    return {"audio": torch.randn(n, int(seconds * rate), generator=torch.Generator().manual_seed(0)) * 0.1,
            "duration": torch.full((n,), seconds), "audio_key": torch.arange(n),
            "caption": [r.captions[0] for r in chosen], "audio_id": [r.id for r in chosen],
            "dataset": [r.dataset for r in chosen], "skipped": []}


def _task(cls=DistillRetrievalTask, **kwargs):
    torch.manual_seed(0)
    return cls(build_dual_encoder(model_section()), **kwargs)


def test_total_loss_is_the_weighted_sum_of_the_terms(records, teacher_dir):
    task = _task(teacher_embeddings=[str(teacher_dir)], contrastive_weight=0.5, distill_weight=2.0)
    task.trainer = _fake_trainer(records)
    task.setup("fit")
    task.trainer = None  # self.log() without a Trainer only warns
    batch = _batch(records)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        audio = task.model.encode_audio(batch["audio"], batch["duration"])
        terms = task.loss_terms(batch, audio, task.model.encode_text(batch["caption"]))
        total = task.training_step(batch, 0)
    assert set(terms) == {"contrastive_loss", "distill_loss"}
    torch.testing.assert_close(total, 0.5 * terms["contrastive_loss"] + 2.0 * terms["distill_loss"])


def test_teacher_table_missing_training_ids_fails_in_setup(records, demo_corpus, tmp_path):
    subset = tmp_path / "subset.jsonl"
    from lasr.data.manifest import write_manifest

    write_manifest(records[:20], subset)
    embed_teachers([str(make_checkpoint(tmp_path / "t.ckpt"))], [str(subset)], tmp_path / "out", progress=False)
    task = _task(teacher_embeddings=[str(tmp_path / "out")])
    task.trainer = _fake_trainer(records)
    with pytest.raises(DataError, match=r"4 of 24 training clips missing .*'clotho/development_0021.wav'.*20 of 120"):
        task.setup("fit")


def test_distilling_without_teachers_is_a_clear_error(records):
    task = _task()
    task.trainer = _fake_trainer(records)
    with pytest.raises(ValueError, match="no teachers are configured"):
        task.setup("fit")
    plain = _task(distill_weight=0.0)
    plain.trainer = _fake_trainer(records)
    plain.setup("fit")  # pure contrastive fine-tuning needs no teachers
    assert plain.teachers is None


def test_online_teachers_run_frozen_models_at_their_own_rate(records, tmp_path):
    ckpt = make_checkpoint(tmp_path / "t8k.ckpt", seed=7, sample_rate=8000, embed_dim=20)
    online = OnlineTeachers([TeacherSpec(str(ckpt))], source_rate=16000)
    batch = _batch(records, n=3)
    (audio, text), = online(batch, torch.device("cpu"))
    model = load_dual_encoder(ckpt).model
    with torch.no_grad():
        expected = model.encode_audio(torchaudio.functional.resample(batch["audio"], 16000, 8000), batch["duration"])
    torch.testing.assert_close(audio, expected)
    assert text.shape == (3, 20) and not any(p.requires_grad for p in online.teachers[0].model.parameters())


def _write_tables(folder: Path, records, n_topics=3, rename=False):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "summary.json").write_text(json.dumps({"n_topics": n_topics}))
    with open(folder / "caption_topics.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["clip_key", "slot", "caption", "topic"])
        for i, r in enumerate(records):
            for s, c in enumerate(r.captions):
                writer.writerow([r.key, s, c + (" (other)" if rename else ""), (i + s) % n_topics - (s == 4)])
    with open(folder / "clip_topics.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["clip_key", "topic", "n_captions", "n_outliers"])
        writer.writerows([r.key, i % n_topics, 5, 1] for i, r in enumerate(records))
    return folder


def test_cluster_table_from_other_captions_fails_before_training(records, teacher_dir, tmp_path):
    tables = _write_tables(tmp_path / "clusters", records, rename=True)
    task = _task(ClusterDistillTask, clusters=str(tables), teacher_embeddings=[str(teacher_dir)])
    task.trainer = _fake_trainer(records)
    with pytest.raises(DataError, match=r"other captions: 0 of 24 training clips .* 120 of 120 training captions"):
        task.setup("fit")


def test_stage3_adds_the_topic_loss_with_lambda2(records, teacher_dir, tmp_path):
    tables = _write_tables(tmp_path / "clusters", records)
    task = _task(ClusterDistillTask, clusters=str(tables), teacher_embeddings=[str(teacher_dir)])
    assert task.cluster_weight == 0.05 and task.topic_loss.audio_head.out_features == 3
    task.trainer = _fake_trainer(records)
    task.setup("fit")
    task.trainer = None
    batch = _batch(records)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        terms = task.loss_terms(batch, task.model.encode_audio(batch["audio"], batch["duration"]),
                                task.model.encode_text(batch["caption"]))
        total = task.training_step(batch, 0)
    assert set(terms) == {"contrastive_loss", "distill_loss", "cluster_loss"}
    expected = terms["contrastive_loss"] + terms["distill_loss"] + 0.05 * terms["cluster_loss"]
    torch.testing.assert_close(total, expected)


def test_topic_loss_ignores_outliers():
    loss = TopicClassificationLoss(embed_dim=4, n_topics=3)
    audio, text = torch.randn(4, 4), torch.randn(5, 4)
    audio_labels, text_labels = torch.tensor([0, -1, 2, 1]), torch.tensor([-1, -1, 1, 0, 2])
    got = loss(audio, text, audio_labels, text_labels)["cluster_loss"]
    keep_a, keep_t = audio_labels >= 0, text_labels >= 0
    expected = 0.5 * (F.cross_entropy(loss.audio_head(audio[keep_a]), audio_labels[keep_a])
                      + F.cross_entropy(loss.text_head(text[keep_t]), text_labels[keep_t]))
    torch.testing.assert_close(got, expected)


def test_topic_loss_with_only_outliers_is_zero_with_zero_gradients():
    loss = TopicClassificationLoss(embed_dim=4, n_topics=3)
    out = loss(torch.randn(2, 4), torch.randn(2, 4), torch.tensor([-1, -1]), torch.tensor([-1, -1]))["cluster_loss"]
    out.backward()
    assert float(out.detach()) == 0.0 and float(loss.audio_head.weight.grad.abs().sum()) == 0.0
    with pytest.raises(ValueError, match=r"\[-1, 3\)"):
        loss(torch.randn(2, 4), torch.randn(2, 4), torch.tensor([0, 3]), torch.tensor([0, 0]))
    with pytest.raises(ValueError, match="n_topics must be >= 1"):
        TopicClassificationLoss(4, 0)
