import warnings
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
import torchaudio

from lasr.data.manifest import read_manifest
from lasr.distill.teachers import embed_teachers
from lasr.errors import DataError
from lasr.losses.topics import TopicClassificationLoss
from lasr.tasks.retrieval import RetrievalTask
from lasr.models.run_config import build_dual_encoder, load_dual_encoder
from lasr.tasks.teacher_sources import OnlineTeachers, TeacherSpec
from lasr.tasks.terms import Contrastive, Distillation, TopicHeads

from .tiny import make_checkpoint, model_section, write_cluster_tables


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


def _task(*terms, **kwargs):
    torch.manual_seed(0)
    return RetrievalTask(build_dual_encoder(model_section()), terms=list(terms), **kwargs)


def _terms_of(task, batch):
    """(total, logged values) of one training batch, without a Trainer (self.log() then only warns)."""
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        total, logged = task.loss_terms(batch)
        torch.testing.assert_close(task.training_step(batch, 0), total)
    return total, logged


def test_total_loss_is_the_weighted_sum_of_the_terms(records, teacher_dir):
    task = _task(Contrastive(weight=0.5), Distillation(weight=2.0, teacher_embeddings=[str(teacher_dir)]))
    task.trainer = _fake_trainer(records)
    task.setup("fit")
    task.trainer = None
    total, logged = _terms_of(task, _batch(records))
    assert set(logged) == {"loss/contrastive", "loss/distill"}
    torch.testing.assert_close(total, 0.5 * logged["loss/contrastive"] + 2.0 * logged["loss/distill"])


def test_default_objective_is_the_contrastive_term_and_names_are_unique():
    torch.manual_seed(0)
    assert list(RetrievalTask(build_dual_encoder(model_section())).terms) == ["contrastive"]
    with pytest.raises(ValueError, match="one per name"):
        _task(Contrastive(), Contrastive(weight=2.0))
    with pytest.raises(ValueError, match="one per name"):
        _task()


def test_teacher_table_missing_training_ids_fails_in_setup(records, demo_corpus, tmp_path):
    subset = tmp_path / "subset.jsonl"
    from lasr.data.manifest import write_manifest

    write_manifest(records[:20], subset)
    embed_teachers([str(make_checkpoint(tmp_path / "t.ckpt"))], [str(subset)], tmp_path / "out", progress=False)
    task = _task(Contrastive(), Distillation(teacher_embeddings=[str(tmp_path / "out")]))
    task.trainer = _fake_trainer(records)
    with pytest.raises(DataError, match=r"4 of 24 training clips missing .*'clotho/development_0021.wav'.*20 of 120"):
        task.setup("fit")


def test_distilling_without_teachers_is_a_clear_error():
    with pytest.raises(ValueError, match="no teachers configured"):
        Distillation()
    with pytest.raises(ValueError, match="not both"):
        Distillation(teacher_embeddings=["a"], online_teachers=[TeacherSpec("b.ckpt")])


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


def test_cluster_table_from_other_captions_fails_before_training(records, teacher_dir, tmp_path):
    tables = write_cluster_tables(tmp_path / "clusters", records, rename=True)
    task = _task(Contrastive(), Distillation(teacher_embeddings=[str(teacher_dir)]), TopicHeads(str(tables)))
    task.trainer = _fake_trainer(records)
    with pytest.raises(DataError, match=r"other captions: 0 of 24 training clips .* 120 of 120 training captions"):
        task.setup("fit")


def test_stage3_adds_the_topic_loss_with_lambda2(records, teacher_dir, tmp_path):
    tables = write_cluster_tables(tmp_path / "clusters", records)
    task = _task(Contrastive(), Distillation(teacher_embeddings=[str(teacher_dir)]), TopicHeads(str(tables)))
    topics = task.terms["topics"]
    assert topics.weight == 0.05 and topics.heads.audio_head.out_features == 3
    task.trainer = _fake_trainer(records)
    task.setup("fit")
    task.trainer = None
    total, logged = _terms_of(task, _batch(records))
    assert set(logged) == {"loss/contrastive", "loss/distill", "loss/topics"}
    expected = logged["loss/contrastive"] + logged["loss/distill"] + 0.05 * logged["loss/topics"]
    torch.testing.assert_close(total, expected)


def test_topic_heads_get_their_own_learning_rate(records, tmp_path):
    tables = write_cluster_tables(tmp_path / "clusters", records)
    task = _task(Contrastive(), TopicHeads(str(tables), lr=3e-3), optimizer=lambda groups: torch.optim.AdamW(groups, lr=2e-4),
                 lr_multipliers={"model.text_encoder": 0.5})
    task.trainer = SimpleNamespace(max_epochs=1, estimated_stepping_batches=10, num_training_batches=10)
    optimizer = task.configure_optimizers()["optimizer"]
    lr_of = {id(p): group["lr"] for group in optimizer.param_groups for p in group["params"]}
    heads = task.terms["topics"].heads
    assert [lr_of[id(p)] for p in heads.parameters()] == pytest.approx([3e-3 * 1e-7 / 2e-4] * 4)  # warm-up start
    assert lr_of[id(task.model.text_encoder.table.weight)] == pytest.approx(0.5 * 1e-7)
    assert sum(len(g["params"]) for g in optimizer.param_groups) == sum(p.requires_grad for p in task.parameters())
    shared = _task(Contrastive(), TopicHeads(str(tables), lr=None))
    assert "terms.topics.heads.audio_head.weight" in dict(shared.named_parameters())
    assert len(shared._param_groups()) == 1


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


def test_hard_negatives_reach_the_contrastive_term_with_distillation_and_topics_on(records, tmp_path):
    """The former stage-2/3 tasks called the loss without the batch's hard negatives; now every term sees the batch."""
    teacher = make_checkpoint(tmp_path / "teacher.ckpt", seed=3)
    tables = write_cluster_tables(tmp_path / "clusters", records)
    task = _task(Contrastive(), Distillation(online_teachers=[TeacherSpec(str(teacher))]), TopicHeads(str(tables)))
    task.trainer = _fake_trainer(records)
    task.setup("fit")
    task.trainer = None
    batch = _batch(records)
    plain_total, plain = _terms_of(task, batch)
    batch["hard_negatives"] = [None, "Loud: " + batch["caption"][1], batch["caption"][2], None]
    total, logged = _terms_of(task, batch)
    with torch.no_grad():
        audio = task.model.encode_audio(batch["audio"], batch["duration"])
        text = task.model.encode_text(batch["caption"])
        hard = task.model.encode_text(batch["hard_negatives"][1:3])
    emb = torch.zeros_like(text)
    emb[1:3] = hard
    mask = torch.tensor([False, True, True, False])
    expected = task.terms["contrastive"].loss(audio, text, batch["audio_key"], task.model.logit_scale, emb, mask)
    torch.testing.assert_close(logged["loss/contrastive"], expected["contrastive_loss"])
    assert float(logged["loss/contrastive"]) > float(plain["loss/contrastive"])  # a hard negative equal to a positive
    assert "hard_negative_accuracy" in logged and "hard_negative_accuracy" not in plain
    torch.testing.assert_close(logged["loss/distill"], plain["loss/distill"])
    torch.testing.assert_close(total - plain_total, logged["loss/contrastive"] - plain["loss/contrastive"])


def test_precomputed_teachers_with_audio_augmentation_fail_in_setup(records, teacher_dir):
    from lasr.augment.audio.dataset import AudioAugmentConfig

    task = _task(Contrastive(), Distillation(teacher_embeddings=[str(teacher_dir)]))
    trainer = _fake_trainer(records)
    trainer.datamodule.augment = AudioAugmentConfig()  # AudioSetMix defaults: every op may fire
    task.trainer = trainer
    with pytest.raises(ValueError, match="online_teachers"):
        task.setup("fit")
    task = _task(Contrastive(), Distillation(teacher_embeddings=[str(teacher_dir)]))
    trainer.datamodule.augment = AudioAugmentConfig(p_gain=0, p_pitch=0, p_speed=0, p_crop=0, p_concat=0, p_mix=0)
    task.trainer = trainer
    task.setup("fit")  # nothing changes the audio: precomputed teachers apply
