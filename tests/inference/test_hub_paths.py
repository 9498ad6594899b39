"""The real Hub code paths, against local folders: `push_to_hub` (its HfApi calls recorded into a folder) and
`from_pretrained("org/name")` resolved offline from a Hub-layout cache."""

from pathlib import Path

import numpy as np
import pytest
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


def test_a_shipped_checkpoint_loads_by_its_name_without_the_hub(tmp_path, monkeypatch):
    from ultrasam_hf.inference import default_model
    from ultrasam_hf.inference.model_loading import resolve_model_folder
    from ultrasam_hf.models.errors import ModelNotFoundError

    torch.manual_seed(0)
    model = UltraSamModel(UltraSamConfig.from_preset("tiny-lite")).eval()
    assets = tmp_path / "assets"
    model.save_pretrained(assets / "ultrasam-tiny-us")
    UltraSamProcessor.from_model_config(model.config).save_pretrained(assets / "ultrasam-tiny-us")
    (assets / "not-a-model").mkdir()
    monkeypatch.setattr(default_model, "ASSETS", assets)
    monkeypatch.chdir(tmp_path)
    assert default_model.packaged_model_names() == ["ultrasam-tiny-us"]
    assert resolve_model_folder("ultrasam-tiny-us") == assets / "ultrasam-tiny-us"
    predictor = UltraSamPredictor.from_pretrained("ultrasam-tiny-us", backend="pytorch")
    predictor.set_image(np.zeros((40, 50), dtype=np.uint8) + 60)
    assert predictor.predict(boxes=[5, 5, 30, 30])[0].shape == (1, 1, 40, 50)
    (tmp_path / "ultrasam-tiny-us").mkdir()  # a folder of that name where the user is: theirs wins
    assert resolve_model_folder("ultrasam-tiny-us") == Path("ultrasam-tiny-us")
    for name in ("not-a-model", "../assets/ultrasam-tiny-us"):  # only complete folders, only by their bare name
        assert default_model.packaged_model_dir(name) is None
    with pytest.raises(ModelNotFoundError, match=r"shipped checkpoint \(ultrasam-tiny-us\)"):
        resolve_model_folder("ultrasam-nothing-us", local_files_only=True)
