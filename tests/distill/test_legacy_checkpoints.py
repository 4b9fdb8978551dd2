"""Checkpoints of the former DistillRetrievalTask / ClusterDistillTask load into RetrievalTask with loss terms."""

import torch
from jsonargparse import ArgumentParser

from lasr.data.manifest import read_manifest
from lasr.tasks.legacy import upgrade_checkpoint, upgrade_task_section
from lasr.tasks.retrieval import RetrievalTask
from lasr.models.run_config import CONFIG_KEY, build_dual_encoder, load_dual_encoder
from lasr.tasks.terms import Contrastive, Distillation, TopicHeads

from .tiny import model_section, write_cluster_tables


def _old_stage3_checkpoint(path, clusters, n_topics=3, embed_dim=16):
    """What ``lasr fit`` wrote for stage 3 before the terms list: heads under ``topic_loss.``, the old task args."""
    torch.manual_seed(0)
    model = build_dual_encoder(model_section(embed_dim=embed_dim))
    heads = torch.nn.ModuleDict({"audio_head": torch.nn.Linear(embed_dim, n_topics),
                                 "text_head": torch.nn.Linear(embed_dim, n_topics)})
    state = {f"model.{k}": v for k, v in model.state_dict().items()}
    state.update({f"topic_loss.{k}": v for k, v in heads.state_dict().items()})
    old_args = {"model": model_section(embed_dim=embed_dim), "clusters": str(clusters), "cluster_weight": 0.05,
                "text_labels": "clip", "teacher_embeddings": ["embeddings/teachers"], "contrastive_weight": 0.5,
                "distill_weight": 1.0, "loss": {"class_path": "lasr.losses.contrastive.ContrastiveLoss",
                                                "init_args": {"hard_negative_weight": 0.0}},
                "init_from": None, "multi_ks": [16, 10]}
    torch.save({"state_dict": state, "hyper_parameters": {k: v for k, v in old_args.items() if k != "model"},
                CONFIG_KEY: {"model": {"class_path": "lasr.tasks.cluster.ClusterDistillTask", "init_args": old_args},
                             "data": {"init_args": {"eval_seconds": 8.0}}}}, path)
    return path, model, heads


def test_old_stage3_checkpoint_loads_into_the_new_task(demo_corpus, tmp_path):
    records = read_manifest(demo_corpus / "manifests" / "clotho_development.jsonl.gz")
    clusters = write_cluster_tables(tmp_path / "clusters", records)
    path, model, heads = _old_stage3_checkpoint(tmp_path / "old_stage3.ckpt", clusters)
    checkpoint = torch.load(path, weights_only=False)

    upgraded = upgrade_task_section(checkpoint[CONFIG_KEY]["model"])
    assert upgraded["class_path"] == "lasr.tasks.RetrievalTask"
    terms = [(t["class_path"].rsplit(".", 1)[1], t["init_args"]) for t in upgraded["init_args"]["terms"]]
    assert terms == [("Contrastive", {"weight": 0.5, "hard_negative_weight": 0.0}),
                     ("Distillation", {"weight": 1.0, "teacher_embeddings": ["embeddings/teachers"]}),
                     ("TopicHeads", {"clusters": str(clusters), "weight": 0.05, "text_labels": "clip", "lr": None})]
    parser = ArgumentParser(exit_on_error=False)
    parser.add_argument("--model", type=RetrievalTask)
    instantiate = getattr(parser, "instantiate", None) or parser.instantiate_classes  # renamed in jsonargparse 4.49
    task = instantiate(parser.parse_object({"model": upgraded})).model  # the mapped config builds
    assert list(task.terms) == ["contrastive", "distill", "topics"] and task.terms["topics"].lr is None

    task.on_load_checkpoint(checkpoint)  # what Lightning calls before loading the weights (lasr test --ckpt_path)
    task.load_state_dict(checkpoint["state_dict"], strict=True)
    torch.testing.assert_close(task.terms["topics"].heads.audio_head.weight, heads["audio_head"].weight)
    torch.testing.assert_close(task.model.audio_encoder.state_dict(), model.audio_encoder.state_dict())

    tool = load_dual_encoder(path).model  # tools (teachers, ensemble, embed) read only the dual encoder
    torch.testing.assert_close(tool.state_dict(), model.state_dict())


def test_current_checkpoints_and_old_stage2_configs_map_as_expected():
    current = {"state_dict": {"terms.topics.heads.audio_head.bias": torch.zeros(2)},
               CONFIG_KEY: {"model": {"class_path": "lasr.tasks.RetrievalTask", "init_args": {"terms": []}}}}
    assert upgrade_checkpoint(current)[CONFIG_KEY]["model"] == {"class_path": "lasr.tasks.RetrievalTask",
                                                                 "init_args": {"terms": []}}
    stage2 = upgrade_task_section({"class_path": "lasr.tasks.distill.DistillRetrievalTask",
                                   "init_args": {"distill_weight": 0.0, "teacher_embeddings": ["t"]}})
    assert [t["class_path"] for t in stage2["init_args"]["terms"]] == ["lasr.tasks.terms.Contrastive"]
    assert set(stage2["init_args"]) == {"terms"}
    assert Contrastive and Distillation and TopicHeads  # the classes the mapping names exist
