"""The downstream scripts take a shipped model's name as `--init`, as segment, eval and pretrain.py do."""

import pytest
import torch

from ultrasam_hf.downstream.cache import cache_file
from ultrasam_hf.downstream.classification import load_prompted_model, model_config
from ultrasam_hf.downstream.instance import build_instance_model
from ultrasam_hf.errors import ModelNotFoundError
from ultrasam_hf.inference.default_model import packaged_model_dir
from ultrasam_hf.inference.model_loading import load_model

NAME = "ultrasam-nano-us"


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)  # no local folder of that name


def test_classification_loads_the_shipped_weights_by_name():
    shipped = packaged_model_dir(NAME)
    model = load_prompted_model(NAME, num_labels=3)
    assert model.config.vision_config == model_config(NAME).vision_config
    expected = load_model(shipped).vision_encoder.state_dict()
    loaded = model.vision_encoder.state_dict()
    assert all(torch.equal(loaded[key], expected[key]) for key in expected)


def test_instance_backbone_takes_a_shipped_encoder_by_name():
    lite = "ultrasam-lite-us"
    _, source = build_instance_model(lite, image_size=128, num_labels=2)
    assert source.vision_config == model_config(lite).vision_config
    with pytest.raises(ValueError, match="nano encoder has no backbone wrapper"):  # found, then refused clearly
        build_instance_model(NAME, image_size=128, num_labels=2)


def test_the_cache_of_a_shipped_init_is_named_after_it(tmp_path):
    assert cache_file(tmp_path, NAME, 0, "taps").name.startswith(NAME + "-")


def test_an_unknown_name_says_what_is_shipped():
    with pytest.raises(ModelNotFoundError, match=NAME):
        model_config("ultrasam-no-such-model")
