"""FSD50K with the DCASE 2024 Task 9 auto-captions (``fsd50k_{dev,eval}_auto_caption.json``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from lasr.cli import main
from lasr.data.manifest import read_manifest
from lasr.data.recipes.common import DataProblems
from lasr.data.recipes.fsd50k import prepare_fsd50k

CAPTIONS = {  # written as the official files are: {"data": [{"wav": "<fname>.wav", "caption": "..."}]}
    "dev": {"64760": "A guitar is strummed, with a bright and resonant tone.",
            "40515": "A dog  barks repeatedly in the distance "},  # verbatim, spaces kept
    "eval": {"37199": "Water trickles steadily from a tap."},
}


def _wav(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, 0.1 * np.random.default_rng(0).standard_normal(1600).astype("float32"), 16000)


def _fsd50k(root: Path, dev_captions=None) -> Path:
    gt = root / "FSD50K.ground_truth"
    gt.mkdir(parents=True)
    (gt / "dev.csv").write_text('fname,labels,mids,split\n64760,"Electric_guitar,Guitar,Music","/m/a,/m/b,/m/c",train\n'
                                '40515,"Bark,Dog,Animal","/m/d,/m/e,/m/f",val\n11111,"Rain","/m/g",train\n')
    (gt / "eval.csv").write_text('fname,labels,mids\n37199,"Water_tap_and_faucet,Water","/m/h,/m/i"\n')
    for name in ("64760", "40515", "11111"):
        _wav(root / "FSD50K.dev_audio" / f"{name}.wav")
    _wav(root / "FSD50K.eval_audio" / "37199.wav")
    captions = root / "task9"
    captions.mkdir()
    for part, items in (("dev", dev_captions or CAPTIONS["dev"]), ("eval", CAPTIONS["eval"])):
        data = {"data": [{"wav": f"{name}.wav", "caption": text} for name, text in items.items()]}
        (captions / f"fsd50k_{part}_auto_caption.json").write_text(json.dumps(data, indent=4))
    return root


def test_auto_captions_join_the_audio_verbatim_and_uncaptioned_clips_are_counted(tmp_path, capsys):
    root = _fsd50k(tmp_path / "fsd")
    code = main(["data", "prepare-fsd50k", "--root", str(root), "--auto-captions", str(root / "task9"),
                 "--out", str(tmp_path / "m")])
    assert code == 0
    printed = capsys.readouterr().out
    assert "fsd50k_dev_auto_caption.json: 2 captions; 2 clips captioned, 1 left out for want of a caption (e.g. 11111)" \
        in printed
    train = read_manifest(tmp_path / "m" / "fsd50k_train.jsonl.gz")
    val = read_manifest(tmp_path / "m" / "fsd50k_val.jsonl.gz")
    evaluation = read_manifest(tmp_path / "m" / "fsd50k_eval.jsonl.gz")
    assert [(r.id, r.captions) for r in train] == [("64760", (CAPTIONS["dev"]["64760"],))]
    assert val[0].captions == ("A dog  barks repeatedly in the distance ",)
    assert val[0].labels == ("Bark", "Dog", "Animal")  # labels kept: mixtures stay class-disjoint
    assert evaluation[0].captions == (CAPTIONS["eval"]["37199"],)


def test_wav_with_a_folder_part_and_bad_items(tmp_path):
    root = _fsd50k(tmp_path / "fsd")
    path = root / "task9" / "fsd50k_dev_auto_caption.json"
    path.write_text(json.dumps({"data": [{"wav": "FSD50K.dev_audio/64760.wav", "caption": "a guitar"},
                                         {"wav": "40515.wav", "caption": "  "},
                                         {"caption": "no wav"}, {"wav": "64760.wav", "caption": "again"}]}))
    with pytest.raises(DataProblems) as excinfo:
        prepare_fsd50k(root, auto_captions=root / "task9", splits=["train", "val"])
    messages = [str(p) for p in excinfo.value.problems]
    assert sum("data[1]" in m or "data[2]" in m for m in messages) == 2
    assert any("data[3]" in m and "second caption for '64760'" in m for m in messages)
    path.write_text("[1, 2]")
    with pytest.raises(DataProblems, match='expected {"data"'):
        prepare_fsd50k(root, auto_captions=root / "task9", splits=["train"])


def test_missing_caption_file_is_named(tmp_path):
    root = _fsd50k(tmp_path / "fsd")
    (root / "task9" / "fsd50k_eval_auto_caption.json").unlink()
    with pytest.raises(DataProblems, match="fsd50k_eval_auto_caption.json not found"):
        prepare_fsd50k(root, auto_captions=root / "task9")
    records, _ = prepare_fsd50k(root)  # without captions: the label-only manifests as before
    assert all(not r.captions for group in records.values() for r in group)
