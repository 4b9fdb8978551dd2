"""UrbanSound8K and FSD50K layouts -> manifests (recipes, `lasr data` sub-commands, zero-shot loader)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from lasr.cli import main
from lasr.data.manifest import read_manifest
from lasr.errors import DataError
from lasr.zeroshot.data import load_labelled

RATE = 8000


def _wav(path, seconds=0.5):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, 0.1 * np.sin(np.arange(int(seconds * RATE)) * 0.3), RATE)


def _urbansound(root, rows):
    (root / "metadata").mkdir(parents=True)
    lines = ["slice_file_name,fsID,start,end,salience,fold,classID,class"]
    for name, fold, class_id, label in rows:
        lines.append(f"{name},100,0.0,0.5,1,{fold},{class_id},{label}")
        _wav(root / "audio" / f"fold{fold}" / name)
    (root / "metadata" / "UrbanSound8K.csv").write_text("\n".join(lines) + "\n")


def _fsd50k(root):
    gt = root / "FSD50K.ground_truth"
    gt.mkdir(parents=True)
    (gt / "dev.csv").write_text('fname,labels,mids,split\n1,"Bark,Dog,Animal","/m/a,/m/b,/m/c",train\n'
                                '2,Rain,/m/d,val\n')
    (gt / "eval.csv").write_text('fname,labels,mids\n7,"Electric_guitar,Music","/m/e,/m/f"\n8,Rain,/m/d\n')
    for name in ("1", "2"):
        _wav(root / "FSD50K.dev_audio" / f"{name}.wav")
    for name in ("7", "8"):
        _wav(root / "FSD50K.eval_audio" / f"{name}.wav")


def test_prepare_urbansound8k_cli_and_loader(tmp_path, capsys):
    _urbansound(tmp_path / "us8k", [("100-0-0-1.wav", 1, 3, "dog_bark"), ("101-1-0-2.wav", 2, 8, "siren")])
    assert main(["data", "prepare-urbansound8k", "--root", str(tmp_path / "us8k"), "--out", str(tmp_path / "m")]) == 0
    assert "urbansound8k: 2 clips" in capsys.readouterr().out
    records = read_manifest(tmp_path / "m" / "urbansound8k.jsonl.gz")
    assert [(r.labels, r.fold, r.extra["target"]) for r in records] == [(("dog_bark",), 1, "3"), (("siren",), 2, "8")]
    assert [r.id for r in load_labelled(tmp_path / "us8k")] == ["100-0-0-1.wav", "101-1-0-2.wav"]


def test_urbansound8k_problems_name_file_and_row(tmp_path):
    _urbansound(tmp_path / "us8k", [("100-0-0-1.wav", 1, 3, "dog_bark")])
    csv = tmp_path / "us8k" / "metadata" / "UrbanSound8K.csv"
    csv.write_text(csv.read_text() + "missing.wav,1,0,1,1,3,2,drilling\nx.wav,1,0,1,1,zero,2,drilling\n")
    with pytest.raises(DataError) as err:
        load_labelled(tmp_path / "us8k")
    assert "row 3" in str(err.value) and "missing.wav" in str(err.value) and "row 4" in str(err.value)


def test_prepare_fsd50k_multi_label_splits(tmp_path, capsys):
    _fsd50k(tmp_path / "fsd")
    assert main(["data", "prepare-fsd50k", "--root", str(tmp_path / "fsd"), "--out", str(tmp_path / "m")]) == 0
    out = capsys.readouterr().out
    assert "fsd50k train: 1 clips" in out and "fsd50k eval: 2 clips" in out
    train = read_manifest(tmp_path / "m" / "fsd50k_train.jsonl.gz")
    assert train[0].labels == ("Bark", "Dog", "Animal") and train[0].split == "train"
    evaluation = load_labelled(tmp_path / "fsd")  # a folder gives the eval split
    assert [(r.id, r.labels) for r in evaluation] == [("7", ("Electric_guitar", "Music")), ("8", ("Rain",))]
    assert main(["data", "prepare-fsd50k", "--root", str(tmp_path / "fsd"), "--out", str(tmp_path / "m2"),
                 "--splits", "val"]) == 0
    assert [p.name for p in (tmp_path / "m2").iterdir()] == ["fsd50k_val.jsonl.gz"]


def test_zeroshot_on_a_multi_label_folder_reports_map(tmp_path, tiny_checkpoints, capsys):
    import json

    _fsd50k(tmp_path / "fsd")
    out = tmp_path / "results"
    assert main(["zeroshot", "--ckpt", str(tiny_checkpoints[0]), "--data", str(tmp_path / "fsd"), "--out", str(out)]) == 0
    assert "template                     mAP" in capsys.readouterr().out
    result = json.loads((out / "template.json").read_text())
    assert result["metric"] == "mAP" and set(result["per_class"]) == {"Electric_guitar", "Music", "Rain"}
    assert not (out / "template_confusion.png").exists()
