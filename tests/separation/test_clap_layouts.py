"""The baseline's CLAP text tower from LAION's original ``.pt`` and from a Hugging Face folder: same embeddings;
no silent random tower; checkpoints refuse another tower."""

from __future__ import annotations

import json

import pytest
import torch

from lasr.errors import LasrError
from lasr.models.separation.query import ClapTextQuery

# heads of 64 dims as RoBERTa's (the .pt stores no head count: lasr infers hidden_size / 64)
TINY = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 1, "intermediate_size": 96,
        "projection_dim": 24, "vocab_size": 300, "max_position_embeddings": 80, "layer_norm_eps": 1e-5}
CAPTIONS = ["a dog barks twice", "rain falls on a tin roof while thunder rumbles", "x"]


def roberta_tokenizer(folder):
    """A small byte-level BPE tokenizer in RoBERTa's file layout (every byte a token, no merges)."""
    from transformers import RobertaTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    others = [b for b in range(256) if b not in printable]  # GPT-2's byte -> unicode map: the rest shift by 256
    chars = [chr(b) for b in printable] + [chr(256 + n) for n in range(len(others))]
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    vocab.update({char: 4 + i for i, char in enumerate(chars)})
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = RobertaTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def layouts(tmp_path_factory):
    """The same random weights saved as a LAION-CLAP training checkpoint and as a transformers folder."""
    from transformers import ClapTextConfig, ClapTextModelWithProjection

    root = tmp_path_factory.mktemp("clap")
    torch.manual_seed(0)
    model = ClapTextModelWithProjection(ClapTextConfig(**TINY)).eval()
    hf = root / "hf"
    model.save_pretrained(hf)
    roberta_tokenizer(hf)
    laion = {}
    for key, value in model.state_dict().items():  # laion_clap names, as in music_speech_audioset_*.pt
        key = key.replace("text_model.", "text_branch.").replace("text_projection.linear1.", "text_projection.0.")
        laion["module." + key.replace("text_projection.linear2.", "text_projection.2.")] = value.clone()
    laion["module.text_branch.embeddings.position_ids"] = torch.arange(80)[None]  # old transformers' buffer
    laion["module.audio_branch.patch_embed.proj.weight"] = torch.zeros(4, 1, 4, 4)  # dropped
    laion["module.logit_scale_t"] = torch.tensor(2.0)
    pt = root / "music_speech_audioset_epoch_15_esc_89.98.pt"
    torch.save({"epoch": 15, "state_dict": laion}, pt)
    return pt, hf


def test_laion_pt_and_hf_folder_give_the_same_embeddings(layouts):
    pt, hf = layouts
    original = ClapTextQuery(str(pt), tokenizer=str(hf))
    converted = ClapTextQuery(str(hf))
    a, b = original(CAPTIONS), converted(CAPTIONS)
    assert a.shape == (3, 24)
    assert torch.allclose(a, b, atol=1e-6)
    assert original.weights_fingerprint() == converted.weights_fingerprint()  # same tower, wherever it lies
    assert original.fingerprint() != converted.fingerprint()  # the embedding cache is keyed by the spec too


def test_the_pt_needs_a_local_tokenizer_and_a_text_tower(layouts, tmp_path):
    pt, _ = layouts
    with pytest.raises(LasrError, match="holds no tokenizer"):
        ClapTextQuery(str(pt))
    audio_only = tmp_path / "audio_only.pt"
    torch.save({"state_dict": {"module.audio_branch.x": torch.zeros(1)}}, audio_only)
    with pytest.raises(LasrError, match="no LAION-CLAP RoBERTa text tower"):
        ClapTextQuery(str(audio_only), tokenizer=str(tmp_path))


def test_no_tower_is_a_setup_error_unless_random_init_is_allowed():
    with pytest.raises(LasrError, match="allow_random_init"):
        ClapTextQuery(None)
    a = ClapTextQuery(None, allow_random_init=True, random_config=TINY, random_seed=3)
    b = ClapTextQuery(None, allow_random_init=True, random_config=TINY, random_seed=3)
    assert a.weights_fingerprint() == b.weights_fingerprint()  # seeded: rebuilt identically from the record
    assert a.weights_fingerprint() != ClapTextQuery(None, allow_random_init=True, random_config=TINY,
                                                    random_seed=4).weights_fingerprint()


def test_a_checkpoint_refuses_another_query_tower(tmp_path):
    from lasr.models.separation.resunet import ResUNet30
    from lasr.models.separation.streaming import load_model_and_query
    from lasr.tasks.separation import SeparationTask

    query = ClapTextQuery(None, allow_random_init=True, random_config=TINY, random_seed=1)
    task = SeparationTask(ResUNet30(n_fft=256, hop_length=64, condition_size=24, channels=[4, 8]), query)
    checkpoint = {"state_dict": task.state_dict()}
    task.on_save_checkpoint(checkpoint)
    assert checkpoint["lasr_separation"]["query"]["fingerprint"] == query.weights_fingerprint()
    torch.save(checkpoint, tmp_path / "t.ckpt")
    model, rebuilt = load_model_and_query(str(tmp_path / "t.ckpt"))  # the recorded (seeded) tower: accepted
    assert rebuilt.weights_fingerprint() == query.weights_fingerprint()
    checkpoint["lasr_separation"]["query"]["init_args"]["random_seed"] = 2
    torch.save(checkpoint, tmp_path / "other.ckpt")
    with pytest.raises(LasrError, match="trained with another query tower"):
        load_model_and_query(str(tmp_path / "other.ckpt"))
    other = ClapTextQuery(None, allow_random_init=True, random_config=TINY, random_seed=2)
    with pytest.raises(LasrError, match="init_from .* another query tower"):
        SeparationTask(ResUNet30(n_fft=256, hop_length=64, condition_size=24, channels=[4, 8]), other,
                       init_from=str(tmp_path / "t.ckpt"))
