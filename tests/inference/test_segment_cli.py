import json

import numpy as np
import pytest
from PIL import Image

from ultrasam_hf.cli import main


def test_segment_png_box(tmp_path, model_dir, capsys):
    image = tmp_path / "scan.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (90, 120), dtype=np.uint8)).save(image)
    code = main(
        [
            "segment",
            str(image),
            "--box",
            "10",
            "20",
            "60",
            "70",
            "--model",
            str(model_dir),
            "--out",
            str(tmp_path / "out"),
        ]
    )
    assert code == 0
    mask = np.array(Image.open(tmp_path / "out" / "scan_mask.png"))
    overlay = Image.open(tmp_path / "out" / "scan_overlay.png")
    assert mask.shape == (90, 120) and set(np.unique(mask)) <= {0, 255}
    assert overlay.size == (120, 90) and overlay.mode == "RGB"
    report = json.loads((tmp_path / "out" / "segment.json").read_text())
    assert report["results"][0]["area_px"] == int((mask > 0).sum())
    assert "predicted IoU" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["US1_UNCR.dcm", "gdcm-US-ALOKA-16.dcm"])
def test_segment_dicom_points(tmp_path, model_dir, shared_us, name):
    path = shared_us / "dicom" / name
    code = main(
        [
            "segment",
            str(path),
            "--point",
            "200",
            "200",
            "--negative",
            "20",
            "20",
            "--model",
            str(model_dir),
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    masks = sorted(tmp_path.glob("*_mask.png"))
    assert masks, "no mask written"
    import pydicom

    ds = pydicom.dcmread(path, stop_before_pixels=True)
    assert np.array(Image.open(masks[0])).shape == (ds.Rows, ds.Columns)


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "give a prompt"),
        (["--negative", "3", "3"], "--negative clicks need"),
        (["--box", "50", "50", "10", "10"], "empty or inverted"),
        (["--point", "900", "5"], "outside"),
    ],
)
def test_segment_bad_prompts(tmp_path, model_dir, capsys, args, message):
    image = tmp_path / "scan.png"
    Image.fromarray(np.zeros((40, 40), dtype=np.uint8) + 9).save(image)
    assert main(["segment", str(image), "--model", str(model_dir), "--out", str(tmp_path / "o"), *args]) == 1
    assert message in capsys.readouterr().err


def test_segment_missing_file(tmp_path, model_dir, capsys):
    assert (
        main(
            [
                "segment",
                str(tmp_path / "nope.png"),
                "--box",
                "1",
                "1",
                "5",
                "5",
                "--model",
                str(model_dir),
                "--out",
                str(tmp_path),
            ]
        )
        == 1
    )
    assert "nope.png" in capsys.readouterr().err
