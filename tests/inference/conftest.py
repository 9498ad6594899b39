import pytest
import torch

from ultrasam_hf import UltraSamConfig, UltraSamModel, UltraSamProcessor


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A saved, randomly initialised `tiny-lite` model folder with its processor (the segment CLI tests)."""
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("model")
    model = UltraSamModel(UltraSamConfig.from_preset("tiny-lite"))
    model.save_pretrained(folder)
    UltraSamProcessor.from_model_config(model.config).save_pretrained(folder)
    return folder
