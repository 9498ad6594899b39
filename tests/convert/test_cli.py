"""`ultrasam convert` on the real LiteMedSAM checkpoint, then `ultrasam demo` on the pydicom-data ultrasound DICOMs."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from ultrasam_hf.cli import main
from ultrasam_hf.convert import demo as demo_module


@pytest.fixture(scope="module")
def converted_dir(tmp_path_factory, litemedsam_path):
    out = tmp_path_factory.mktemp("cache") / "litemedsam"
    assert main(["convert", "--from", "litemedsam", str(litemedsam_path), "--out", str(out)]) == 0
    return out


def test_convert_writes_a_complete_folder(converted_dir, litemedsam_converted):
    from ultrasam_hf import UltraSamModel

    names = {p.name for p in converted_dir.iterdir()}
    assert {"model.safetensors", "config.json", "README.md"} <= names
    assert any("processor" in n or "preprocessor" in n for n in names), names
    config = json.loads((converted_dir / "config.json").read_text())
    assert config["preset"] == "lite" and config["preprocessing"] == "litemedsam"
    card = (converted_dir / "README.md").read_text()
    for expected in ("LiteMedSAM", "Apache-2.0", "ultrasam convert --from litemedsam", "@article{MedSAM", "Intended use"):
        assert expected in card
    reloaded = UltraSamModel.from_pretrained(converted_dir).state_dict()
    expected = litemedsam_converted.state_dict()
    assert set(reloaded) == set(expected)
    assert all(torch.equal(reloaded[k], expected[k]) for k in expected)


def test_convert_reports_errors_by_name(tmp_path, capsys):
    bad = tmp_path / "bad.pth"
    torch.save({"image_encoder.patch_embed.seq.0.c.weight": torch.zeros(1)}, bad)
    assert main(["convert", "--from", "litemedsam", str(bad), "--out", str(tmp_path / "o")]) == 1
    assert "missing keys" in capsys.readouterr().err


def test_default_model_dir_prefers_a_shipped_checkpoint(tmp_path, monkeypatch):
    shipped = tmp_path / "ultrasam-lite-us"
    shipped.mkdir()
    (shipped / "config.json").write_text("{}")
    (shipped / "model.safetensors").write_bytes(b"")
    monkeypatch.setattr(demo_module, "PACKAGED_MODEL", shipped)
    assert demo_module.default_model_dir(convert_if_missing=False) == shipped


def check_demo_masks(out, prompts=("box",), point_fill=0.2):
    """Each demo mask covers the structure its prompt marks: it stays in the structure's box and fills most of it
    (a box) or a good part of it (`point_fill`, one click on an ultrasound structure)."""
    for case in demo_module.DEMO_CASES:
        prompt = "box" if case.box is not None else "point"
        if prompt not in prompts:
            continue
        box = case.box if case.box is not None else next(c.box for c in demo_module.DEMO_CASES if c.dicom == case.dicom and c.box)
        mask = np.asarray(Image.open(out / f"{case.name}_mask.png")) > 0
        x0, y0, x1, y1 = map(int, box)
        inside = mask[y0 : y1 + 1, x0 : x1 + 1].sum()
        box_area = (x1 - x0 + 1) * (y1 - y0 + 1)
        # the Doppler case: models trained on B-mode only leave the colour-filled half of the node out (model card)
        box_fill = 0.45 if "Doppler" in case.structure else 0.55
        assert inside > (box_fill if prompt == "box" else point_fill) * box_area, (case.name, inside / box_area)
        assert inside > 0.95 * mask.sum(), case.name


def test_demo_with_converted_litemedsam(converted_dir, tmp_path, monkeypatch, capsys):
    pytest.importorskip("pydicom")
    monkeypatch.setattr(demo_module, "PACKAGED_MODEL", tmp_path / "no-shipped-model")
    monkeypatch.setenv("ULTRASAM_CACHE", str(converted_dir.parent))  # reuse the conversion above as the cache
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert str(converted_dir) in printed and "lymph node" in printed and "bladder" in printed
    assert len(list(out.glob("*_overlay.png"))) == 4 and len(list(out.glob("*_mask.png"))) == 4
    check_demo_masks(out, prompts=("box",))  # LiteMedSAM never learnt point prompts


def test_demo_with_the_shipped_checkpoint(tmp_path, capsys):
    pytest.importorskip("pydicom")
    if not demo_module._is_model_dir(demo_module.PACKAGED_MODEL):
        pytest.skip("this install ships no ultrasam-lite-us checkpoint")
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out)]) == 0
    assert str(demo_module.PACKAGED_MODEL) in capsys.readouterr().out
    check_demo_masks(out, prompts=("box", "point"))


