"""The documented transformers call, on the two real variants (random weights): processor -> model -> post-process."""

import numpy as np
import pytest
import torch
from transformers import AutoModel, AutoProcessor

from ultrasam_hf import UltraSamConfig, UltraSamModel, UltraSamProcessor


@pytest.fixture(scope="module", params=["lite", pytest.param("vit-b", marks=pytest.mark.slow)])  # vit-b: ~27 s
def saved_variant(request, tmp_path_factory):
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp(request.param)
    model = UltraSamModel(UltraSamConfig.from_preset(request.param))
    model.save_pretrained(folder)
    UltraSamProcessor.from_model_config(model.config).save_pretrained(folder)
    return request.param, folder


def test_box_and_point_prompts(saved_variant):
    preset, folder = saved_variant
    model = AutoModel.from_pretrained(folder).eval()
    processor = AutoProcessor.from_pretrained(folder)
    assert processor.image_processor.preprocessing == {"lite": "litemedsam", "vit-b": "sam"}[preset]
    image = np.random.default_rng(0).integers(0, 4096, (300, 420), dtype=np.uint16)  # 16-bit, non-square
    with torch.no_grad():
        inputs = processor(images=image, input_boxes=[[[40, 30, 200, 150]]], return_tensors="pt")
        embeddings = model.get_image_embeddings(inputs["pixel_values"])
        outputs = model(image_embeddings=embeddings, input_boxes=inputs["input_boxes"], multimask_output=False)
        masks = processor.post_process_masks(
            outputs.pred_masks, inputs["original_sizes"], inputs["reshaped_input_sizes"]
        )
        assert masks[0].shape == (1, 1, 300, 420)

        inputs = processor(
            images=image, input_points=[[[[100, 120], [10, 10]]]], input_labels=[[[1, 0]]], return_tensors="pt"
        )
        outputs = model(
            image_embeddings=embeddings,
            input_points=inputs["input_points"],
            input_labels=inputs["input_labels"],
            multimask_output=False,
        )
        masks = processor.post_process_masks(
            outputs.pred_masks, inputs["original_sizes"], inputs["reshaped_input_sizes"]
        )
        assert masks[0].shape == (1, 1, 300, 420)
    if preset == "vit-b":
        assert outputs.first_pass_pred_masks is not None  # the paper's refinement pass ran


@pytest.mark.parametrize("saved_variant", ["lite"], indirect=True)  # ViT-B's encoder already ran above
def test_full_forward_with_pixels_lite(saved_variant):
    _, folder = saved_variant
    model = AutoModel.from_pretrained(folder).eval()
    processor = AutoProcessor.from_pretrained(folder)
    inputs = processor(
        images=np.zeros((64, 80, 3), np.uint8) + 30, input_boxes=[[[5, 5, 40, 50]]], return_tensors="pt"
    )
    with torch.no_grad():
        outputs = model(**inputs, multimask_output=False)
    assert outputs.pred_masks.shape == (1, 1, 1, 256, 256)
