"""The PyTorch backend's split decoder (float32 CPU models) against the model's own forward: same masks and scores
for prompts with and without mask prompts, refinement passes included, remade when the weights change."""

import numpy as np
import pytest
import torch

from ultrasam_hf import UltraSamConfig, UltraSamModel, UltraSamPredictor
from ultrasam_hf.inference.backends import TorchBackend

PROMPTS = [
    {"boxes": [20, 30, 90, 100]},
    {"points": [[40, 50]], "multimask_output": True},
    {"points": [[40, 50], [100, 20]], "labels": [1, 0]},
    {"boxes": [[20, 30, 90, 100], [0, 0, 60, 50], [70, 60, 150, 110]], "multimask_output": True},
    {"boxes": [20, 30, 90, 100], "points": [[50, 60]]},
]


def predictors(preset):
    torch.manual_seed(0)
    model = UltraSamModel(UltraSamConfig.from_preset(preset)).eval()
    split = UltraSamPredictor(model, backend=TorchBackend(model))
    forward = UltraSamPredictor(model, backend=TorchBackend(model, split_decoder=False))
    image = np.random.default_rng(0).integers(0, 255, (120, 160), dtype=np.uint8)
    split.set_image(image)
    forward.set_image(image)
    return model, split, forward


def assert_same(split, forward, prompt):
    masks, scores, logits = split.predict(**prompt)
    expected_masks, expected_scores, expected_logits = forward.predict(**prompt)
    scale = max(float(np.abs(expected_logits).max()), 1.0)
    np.testing.assert_allclose(logits, expected_logits, atol=1e-5 * scale, rtol=0)
    np.testing.assert_allclose(scores, expected_scores, atol=1e-5)
    assert (masks != expected_masks).mean() < 1e-4  # only where a logit is within float error of 0


@pytest.mark.parametrize("preset", ["tiny-lite", "tiny"])  # lite layout; vit-b layout with a refinement pass
def test_split_decoder_matches_the_model_forward(preset):
    model, split, forward = predictors(preset)
    for prompt in PROMPTS:
        assert_same(split, forward, prompt)
    # mask prompts (the token-side decoder): with a box, alone, and one per object
    _, _, logits = forward.predict(boxes=[20, 30, 90, 100])
    assert_same(split, forward, {"boxes": [20, 30, 90, 100], "mask_input": logits[:, 0]})
    assert_same(split, forward, {"mask_input": logits[:, 0]})
    boxes = [[20, 30, 90, 100], [0, 0, 60, 50]]
    _, _, logits = forward.predict(boxes=boxes)
    assert_same(split, forward, {"boxes": boxes, "mask_input": logits[:, 0]})


def test_split_decoder_follows_weight_changes():
    model, split, forward = predictors("tiny-lite")
    split.predict(boxes=[20, 30, 90, 100])
    with torch.no_grad():  # in place, as an optimizer step or load_state_dict
        model.mask_decoder.upscale_conv2.weight.mul_(1.5)
        model.prompt_encoder.no_mask_embed.weight.add_(0.3)
        model.mask_decoder.transformer.layers[0].cross_attn_token_to_image.k_proj.weight.mul_(0.5)
    assert_same(split, forward, {"boxes": [20, 30, 90, 100]})


def test_split_decoder_only_for_float32_cpu_models(monkeypatch):
    model, split, _ = predictors("tiny-lite")
    calls = []
    monkeypatch.setattr(TorchBackend, "_decode_split", lambda self, *args: calls.append(1))
    model.to(torch.bfloat16)
    boxes = torch.tensor([[[20.0, 30.0, 90.0, 100.0]]])
    embeddings = split.image_embeddings.to(torch.bfloat16)
    with torch.no_grad():
        iou, masks = split.backend.decode(embeddings, None, None, boxes, None, False)  # the model's own forward
    assert calls == [] and masks.dtype == torch.bfloat16 and masks.shape[:3] == (1, 1, 1)
