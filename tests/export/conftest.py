import pytest
import torch

pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
pytest.importorskip("onnx", reason="the onnx extra is not installed")

from ultrasam_hf import UltraSamConfig, UltraSamModel, UltraSamProcessor  # noqa: E402
from ultrasam_hf.export.onnx_export import export_onnx  # noqa: E402


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Each test its own $ULTRASAM_CACHE: exports found there are the test's."""
    monkeypatch.setenv("ULTRASAM_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def make_tiny_model(preset: str, seed: int = 0) -> UltraSamModel:
    torch.manual_seed(seed)
    return UltraSamModel(UltraSamConfig.from_preset(preset)).eval()


@pytest.fixture
def tiny_model():
    """`tiny_model(preset, seed=0)`: a seeded, randomly initialised model of a tiny preset (a fixture, so tests
    need not import this conftest by name, which another folder's conftest may shadow)."""
    return make_tiny_model


@pytest.fixture(scope="module", params=["tiny-lite", "tiny"])
def exported(request, tmp_path_factory):
    """(model, processor, folder) of a tiny preset exported once per module: `tiny-lite` has the lite layout
    (TinyViT, LiteMedSAM preprocessing), `tiny` the vit-b one (SAM ViT, SAM preprocessing, one refinement pass)."""
    model = make_tiny_model(request.param)
    processor = UltraSamProcessor.from_model_config(model.config)
    folder = export_onnx(model, processor, tmp_path_factory.mktemp(request.param))
    return model, processor, folder
