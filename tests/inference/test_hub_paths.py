"""The real Hub code paths, against local folders: `push_to_hub` (its HfApi calls recorded into a folder) and
`from_pretrained("org/name")` resolved offline from a Hub-layout cache."""

import numpy as np
import torch
from hub_helpers import FolderHub, as_hub_cache
from transformers import AutoModel, AutoProcessor
from transformers.utils import hub as transformers_hub

from ultrasam_hf import UltraSamConfig, UltraSamModel, UltraSamPredictor, UltraSamProcessor


def test_push_to_hub_then_from_pretrained_by_repo_id(tmp_path, monkeypatch):
    torch.manual_seed(0)
    model = UltraSamModel(UltraSamConfig.from_preset("tiny-lite")).eval()
    processor = UltraSamProcessor.from_model_config(model.config)
    with monkeypatch.context() as patch:  # only the push goes to the folder hub; loading uses the real client
        hub = FolderHub(tmp_path / "hub")
        patch.setattr(transformers_hub, "hf_api", lambda: hub)
        model.push_to_hub("camma/ultrasam-tiny")
        processor.push_to_hub("camma/ultrasam-tiny")
    pushed = tmp_path / "hub" / "camma" / "ultrasam-tiny"
    assert (pushed / "model.safetensors").exists() and (pushed / "config.json").exists()
    assert (pushed / "modeling_ultrasam.py").exists()  # remote code travels with the weights

    cache = tmp_path / "cache"
    as_hub_cache(pushed, cache, "camma/ultrasam-tiny")
    loaded = AutoModel.from_pretrained("camma/ultrasam-tiny", cache_dir=cache).eval()
    loaded_processor = AutoProcessor.from_pretrained("camma/ultrasam-tiny", cache_dir=cache)
    assert loaded_processor.image_processor.preprocessing == "litemedsam"
    pixels = torch.rand(1, 3, 64, 64)
    boxes = torch.tensor([[[4.0, 4.0, 40.0, 40.0]]])
    with torch.no_grad():
        assert torch.equal(
            loaded(pixel_values=pixels, input_boxes=boxes).pred_masks,
            model(pixel_values=pixels, input_boxes=boxes).pred_masks,
        )

    predictor = UltraSamPredictor.from_pretrained("camma/ultrasam-tiny", cache_dir=cache)
    predictor.set_image(np.zeros((40, 50), dtype=np.uint8) + 60)
    assert predictor.predict(boxes=[5, 5, 30, 30])[0].shape == (1, 1, 40, 50)  # a box gives one mask (SAM rule)
