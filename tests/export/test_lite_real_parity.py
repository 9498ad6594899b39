"""The shipped lite checkpoint exported and run with ONNX Runtime gives PyTorch's masks on real ultrasound."""

import pytest

from ultrasam_hf import UltraSamPredictor
from ultrasam_hf.export.onnx_backend import OnnxBackend
from ultrasam_hf.export.onnx_export import compare_predictors, export_onnx, parity_prompts
from ultrasam_hf.inference.backends import TorchBackend
from ultrasam_hf.inference.default_model import PACKAGED_MODEL
from ultrasam_hf.models.image_loading import load_frames

# ~60 s on 2 cores (export of the real lite model): a benchmark-time check, not CI
pytestmark = [pytest.mark.shared_data, pytest.mark.slow]


def real_images(shared_us):
    paths = [
        sorted((shared_us / "bus-bra" / "Images").glob("*.png"))[:1],
        sorted((shared_us / "hc18" / "training_set").glob("*HC.png"))[:1],
        sorted((shared_us / "common-carotid-artery" / "US images").glob("*.png"))[:1],
    ]
    found = [p[0] for p in paths if p]
    if not found:
        pytest.skip("no BUS-BRA / HC18 / carotid image found")
    return [load_frames(path)[0] for path in found]


def test_shipped_lite_onnx_matches_pytorch_on_real_images(shared_us, tmp_path):
    if not (PACKAGED_MODEL / "config.json").is_file():
        pytest.skip("this install ships no ultrasam-lite-us checkpoint")
    reference = UltraSamPredictor.from_pretrained(PACKAGED_MODEL, backend="pytorch")
    reference.backend = TorchBackend(reference.model, split_decoder=False)  # the model's own forward
    folder = export_onnx(reference.model, reference.processor, tmp_path / "lite")
    candidate = UltraSamPredictor(reference.model, reference.processor, backend=OnnxBackend(reference.model, folder))
    for image in real_images(shared_us):
        stats = compare_predictors(reference, candidate, image, parity_prompts(*image.shape[:2]))
        assert stats["min_mask_iou"] >= 0.99, stats
        assert stats["max_abs_logit_diff"] < 1e-2, stats
        assert stats["max_abs_embedding_diff"] < 1e-3, stats
