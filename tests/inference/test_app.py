"""The app's logic (`AppSession`) without a browser; `test_app_browser.py` drives the real page."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from ultrasam_hf import UltraSamConfig, UltraSamModel
from ultrasam_hf.inference.app import CLICK_MODES, AppSession
from ultrasam_hf.inference.predictor import UltraSamPredictor

sitk = pytest.importorskip("SimpleITK")
mask_utils = pytest.importorskip("pycocotools.mask")
POSITIVE, NEGATIVE, BOX = CLICK_MODES


@pytest.fixture(scope="module")
def predictor():
    torch.manual_seed(0)
    return UltraSamPredictor(UltraSamModel(UltraSamConfig.from_preset("tiny-lite")))


@pytest.fixture
def cine(tmp_path):
    """A 5-frame NRRD 'cine' (a volume along z) with a bright square moving right."""
    frames = np.full((5, 40, 60), 20, dtype=np.uint8)
    for t in range(5):
        frames[t, 12:24, 5 + 3 * t : 17 + 3 * t] = 200
    image = sitk.GetImageFromArray(frames)
    image.SetSpacing((0.3, 0.3, 1.5))
    sitk.WriteImage(image, str(tmp_path / "loop.nrrd"))
    return tmp_path / "loop.nrrd"


def test_clicks_boxes_undo_and_reset(tmp_path, predictor):
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (50, 70), dtype=np.uint8)).save(tmp_path / "scan.png")
    session = AppSession(predictor, tmp_path / "scan.png")
    assert len(session) == 1 and "no mask yet" in session.status(0)
    session.click(0, 10, 12, NEGATIVE)  # negative alone selects nothing: no mask, no error
    assert 0 not in session.masks
    session.click(0, 30, 25, POSITIVE)
    assert session.masks[0][0].shape == (50, 70) and session.masks[0][2] == "prompt"
    session.click(0, 5, 6, BOX)
    assert "opposite corner" in session.status(0) and session.prompts[0]["box"] is None
    session.click(0, 40, 30, BOX)
    assert session.prompts[0] == {
        "box": [5.0, 6.0, 40.0, 30.0],
        "points": [[10.0, 12.0], [30.0, 25.0]],
        "labels": [0, 1],
    }
    session.undo(0)  # the box
    assert session.prompts[0]["box"] is None
    session.undo(0)  # the first corner
    session.undo(0)  # the positive click: no valid prompt left, no mask
    assert session.prompts[0]["points"] == [[10.0, 12.0]] and 0 not in session.masks
    overlay = session.overlay(0)
    assert overlay.shape == (50, 70, 3) and overlay.dtype == np.uint8
    session.reset()
    assert session.prompts == {} and session.masks == {}
    with pytest.raises(ValueError, match="click mode"):
        session.click(0, 1, 1, "lasso")
    with pytest.raises(ValueError, match="out of range"):
        session.click(3, 1, 1, POSITIVE)


def test_propagate_then_refine_a_frame_and_export(tmp_path, predictor, cine):
    session = AppSession(predictor, cine)
    assert len(session) == 5
    with pytest.raises(ValueError, match="Nothing to propagate"):
        session.propagate(0)
    session.click(2, 10, 11, BOX)
    session.click(2, 24, 25, BOX)
    calls = []
    session.propagate(2, progress=lambda done, total: calls.append((done, total)))
    assert sorted(session.masks) == [0, 1, 2, 3, 4] and calls[-1] == (5, 5)
    assert session.masks[2][2] == "prompt" and {session.masks[t][2] for t in (0, 1, 3, 4)} <= {"propagated", "lost"}
    # a click on a propagated frame refines it: its propagated box starts the frame's own prompt
    propagated_mask = session.masks[4][0]
    session.click(4, 30, 18, POSITIVE)
    assert session.masks[4][2] == "prompt"
    if propagated_mask.any():
        assert session.prompts[4]["box"] is not None
    files = session.export(4, tmp_path / "export")
    assert [f.name for f in files] == ["loop_frame004_mask.png", "loop_masks.json", "loop_mask.nii.gz"]
    png = np.array(Image.open(files[0]))
    np.testing.assert_array_equal(png > 0, session.masks[4][0])
    coco = json.loads(files[1].read_text())
    assert [image["frame"] for image in coco["images"]] == [0, 1, 2, 3, 4]
    assert coco["annotations"][2]["prompt"]["box"] == [10.0, 11.0, 24.0, 25.0]
    rle = dict(
        coco["annotations"][4]["segmentation"], counts=coco["annotations"][4]["segmentation"]["counts"].encode()
    )
    np.testing.assert_array_equal(mask_utils.decode(rle).astype(bool), session.masks[4][0])
    nifti = sitk.ReadImage(str(files[2]))
    assert nifti.GetSpacing() == pytest.approx((0.3, 0.3, 1.5))  # the input volume's geometry
    np.testing.assert_array_equal(sitk.GetArrayFromImage(nifti)[4] > 0, session.masks[4][0])


def test_export_needs_a_mask(tmp_path, predictor, cine):
    with pytest.raises(ValueError, match="No mask to export"):
        AppSession(predictor, cine).export(0, tmp_path)


def test_gradio_app_builds(predictor):
    pytest.importorskip("gradio")
    from ultrasam_hf.inference.app import build_app

    demo = build_app(predictor=predictor)
    ids = {block.elem_id for block in demo.blocks.values() if getattr(block, "elem_id", None)}
    assert {"upload", "canvas", "frame", "mode", "undo", "reset", "propagate", "export", "downloads"} <= ids


def test_space_files(tmp_path, monkeypatch):
    pytest.importorskip("gradio")
    from ultrasam_hf.inference import space

    copied = []
    monkeypatch.setattr(space.shutil, "copytree", lambda source, target, **kwargs: copied.append((source, target)))
    folder = space.write_space(tmp_path / "space", model="org/ultrasam-lite")
    app_py = (folder / "app.py").read_text()
    assert "launch(model='org/ultrasam-lite', host=\"0.0.0.0\", port=7860)" in app_py
    compile(app_py, "app.py", "exec")
    requirements = (folder / "requirements.txt").read_text().splitlines()
    assert any(line.startswith("gradio") for line in requirements) and any(r.startswith("torch") for r in requirements)
    assert any(line.startswith("SimpleITK") for line in requirements)
    readme = (folder / "README.md").read_text()
    assert "sdk: gradio" in readme and "app_file: app.py" in readme and "Not a medical device" in readme
    assert copied == [(space.PACKAGE, folder / "ultrasam_hf")]
