import json

import numpy as np
from PIL import Image

from ultrasam_hf import UltraSamProcessor
from ultrasam_hf.cli import main
from ultrasam_hf.export.onnx_export import MANIFEST, parity_image


def test_export_then_segment_picks_onnxruntime(tmp_path, capsys, tiny_model):
    model_dir = tmp_path / "model"
    model = tiny_model("tiny-lite")
    model.save_pretrained(model_dir)
    UltraSamProcessor.from_model_config(model.config).save_pretrained(model_dir)
    image = tmp_path / "frame.png"
    Image.fromarray(parity_image(96)).save(image)
    segment = ["segment", str(image), "--model", str(model_dir), "--box", "20", "20", "70", "70"]

    assert main([*segment, "--out", str(tmp_path / "before")]) == 0
    assert "backend: PyTorch" in capsys.readouterr().out

    assert main(["export", "onnx", str(model_dir), "--out", str(model_dir / "onnx")]) == 0
    out = capsys.readouterr().out
    assert "min mask IoU 1.0000 vs PyTorch" in out and (model_dir / "onnx" / MANIFEST).is_file()
    manifest = json.loads((model_dir / "onnx" / MANIFEST).read_text())
    assert manifest["preprocessing"]["mode"] == "litemedsam"

    assert main([*segment, "--out", str(tmp_path / "after")]) == 0
    assert "backend: ONNX Runtime fp32" in capsys.readouterr().out
    before = np.asarray(Image.open(tmp_path / "before" / "frame_mask.png"))
    after = np.asarray(Image.open(tmp_path / "after" / "frame_mask.png"))
    assert (before == after).mean() > 0.99

    assert main([*segment, "--out", str(tmp_path / "forced"), "--backend", "pytorch"]) == 0
    assert "backend: PyTorch" in capsys.readouterr().out


def test_export_without_model_or_with_a_missing_folder_fails_clearly(tmp_path, capsys):
    assert main(["export", "onnx", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 1
    assert "ultrasam export: error" in capsys.readouterr().err


def test_export_refuses_a_folder_that_is_not_a_complete_model(tmp_path, capsys, tiny_model):
    """Loading is strict (`model_loading.load_model`): a config without its weights exports nothing."""
    folder = tmp_path / "config-only"
    tiny_model("tiny-lite").config.save_pretrained(folder)
    assert main(["export", "onnx", str(folder), "--out", str(tmp_path / "o")]) == 1
    error = capsys.readouterr().err
    assert "ultrasam export: error" in error and str(folder) in error
    assert not (tmp_path / "o").exists()
