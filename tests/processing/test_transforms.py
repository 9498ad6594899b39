"""`ultrasam_hf.models.transforms`: the one copy of SAM's resize / prompt-scaling / post-processing rules, checked
against what transformers' `SamProcessor` computes."""

import numpy as np
import pytest
import torch

from ultrasam_hf import UltraSamConfig, UltraSamProcessor
from ultrasam_hf.models.transforms import input_size, low_res_size, resized_size, scale_coordinates, upscale_logits

SHAPES = [(300, 400), (400, 300), (7, 999), (77, 77), (481, 640), (333, 1000)]


@pytest.fixture(scope="module")
def processor():
    return UltraSamProcessor.from_model_config(UltraSamConfig.from_preset("lite"))


@pytest.mark.parametrize("shape", SHAPES)
def test_resized_size_is_the_processors(processor, shape):
    image = np.zeros((*shape, 3), np.uint8)
    reshaped = processor.image_processor(image, return_tensors="np")["reshaped_input_sizes"][0]
    assert resized_size(*shape, 256) == tuple(int(v) for v in reshaped)


@pytest.mark.parametrize("shape", SHAPES[:3])
def test_scale_coordinates_is_the_processors(processor, shape):
    image = np.zeros((*shape, 3), np.uint8)
    height, width = shape
    boxes = [[0.0, 0.0, width * 0.5, height * 0.75]]
    points = [[[width * 0.25, height * 0.5], [width * 1.0, 0.0]]]
    inputs = processor(
        images=image, input_boxes=[boxes], input_points=[points], input_labels=[[[1, 0]]], return_tensors="pt"
    )
    new = resized_size(height, width, 256)
    np.testing.assert_allclose(scale_coordinates(boxes, shape, new), inputs["input_boxes"][0].numpy(), rtol=1e-6)
    np.testing.assert_allclose(scale_coordinates(points, shape, new), inputs["input_points"][0].numpy(), rtol=1e-6)


def test_upscale_logits_is_post_process_masks(processor):
    logits = torch.randn(2, 3, 256, 256, generator=torch.Generator().manual_seed(0))
    original, reshaped = (300, 400), resized_size(300, 400, 256)
    expected = processor.post_process_masks(logits[None], [original], [reshaped], binarize=False)[0]
    torch.testing.assert_close(upscale_logits(logits, 256, reshaped, original), expected, rtol=0, atol=0)
    assert upscale_logits(logits[0, 0], (256, 256), reshaped, original).shape == original


@pytest.mark.parametrize("threads", [1, 2])
def test_upscale_logits_is_exact_whatever_the_thread_count(processor, threads):
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        test_upscale_logits_is_post_process_masks(processor)
    finally:
        torch.set_num_threads(previous)


@pytest.mark.parametrize(
    "preset, size, low_res", [("vit-b", 1024, 256), ("lite", 256, 256), ("tiny", 64, 32), ("tiny-lite", 64, 64)]
)
def test_model_geometry(preset, size, low_res):
    config = UltraSamConfig.from_preset(preset)
    assert (input_size(config), low_res_size(config)) == (size, low_res)
