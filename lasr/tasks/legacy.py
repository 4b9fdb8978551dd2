"""Checkpoints and configs of the former stage-2/3 task classes, mapped onto ``RetrievalTask`` and its loss terms.

``lasr.tasks.distill.DistillRetrievalTask`` was contrastive + distillation with the weights as task arguments,
``lasr.tasks.cluster.ClusterDistillTask`` added the topic heads as ``topic_loss``; both are now a
``lasr.tasks.RetrievalTask`` whose ``terms`` list says the same.
"""

from __future__ import annotations

from typing import Any

from lasr.models.run_config import CONFIG_KEY

TERMS = "lasr.tasks.terms"
LEGACY_TASKS = {"lasr.tasks.distill.DistillRetrievalTask": ("Contrastive", "Distillation"),
                "lasr.tasks.cluster.ClusterDistillTask": ("Contrastive", "Distillation", "TopicHeads")}
STATE_RENAMES = {"topic_loss.": "terms.topics.heads."}  # old state-dict prefix -> new


def _term(name: str, args: dict[str, Any]) -> dict[str, Any] | None:
    """The ``terms`` entry of one old objective part, from the old task's init args (None: it was off)."""
    if name == "Contrastive":
        loss = args.pop("loss", None) or {}
        return {"weight": args.pop("contrastive_weight", 1.0), **(loss.get("init_args") or {})}
    if name == "Distillation":
        weight = args.pop("distill_weight", 1.0)
        teachers = {key: args.pop(key) for key in ("teacher_embeddings", "online_teachers") if args.get(key)}
        return {"weight": weight, **teachers} if weight and teachers else None
    text_labels = args.pop("text_labels", "caption")  # the old heads trained at the encoders' lr
    return {"clusters": args.pop("clusters"), "weight": args.pop("cluster_weight", 0.05), "text_labels": text_labels,
            "lr": None}


def upgrade_task_section(section: dict[str, Any]) -> dict[str, Any]:
    """A config's ``model`` section in the current form (unchanged unless it names a former task class)."""
    parts = LEGACY_TASKS.get((section or {}).get("class_path", ""))
    if parts is None:
        return section
    args = dict(section.get("init_args") or {})
    args.pop("terms", None)
    terms = [(name, _term(name, args)) for name in parts]
    args["terms"] = [{"class_path": f"{TERMS}.{name}", "init_args": init} for name, init in terms if init is not None]
    return {"class_path": "lasr.tasks.RetrievalTask", "init_args": args}


def upgrade_checkpoint(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """Rename old state-dict keys and the stored run config in place (a no-op on current checkpoints)."""
    state = checkpoint.get("state_dict", {})
    for old, new in STATE_RENAMES.items():
        for key in [k for k in state if k.startswith(old)]:
            state[new + key[len(old):]] = state.pop(key)
    config = checkpoint.get(CONFIG_KEY)
    if isinstance(config, dict) and isinstance(config.get("model"), dict):
        config["model"] = upgrade_task_section(config["model"])
    return checkpoint
