"""`backend="pytorch-bf16"`: the encoder and the split decoder's prompt side on bfloat16 copies of the weights. Close to
float32, float32 outputs, mask prompts unchanged, copies remade when the weights change, chosen by name only."""

import argparse

import numpy as np
import pytest
import torch

from ultrasam_hf import UltraSamConfig, UltraSamModel, UltraSamPredictor
from ultrasam_hf.inference import backends
from ultrasam_hf.inference.backends import BACKENDS, TorchBackend, TorchBFloat16Backend, make_backend
from ultrasam_hf.models.errors import UsageError

BOX = [20, 30, 90, 100]


@pytest.fixture()
def predictors():
    torch.manual_seed(0)
    model = UltraSamModel(UltraSamConfig.from_preset("tiny-lite")).eval()
    image = np.random.default_rng(0).integers(0, 255, (120, 160), dtype=np.uint8)
    fp32 = UltraSamPredictor(model, backend=TorchBackend(model))
    bf16 = UltraSamPredictor(model, backend=TorchBFloat16Backend(model))
    fp32.set_image(image)
    bf16.set_image(image)
    return model, fp32, bf16


def test_bf16_backend_is_close_to_float32(predictors):
    _, fp32, bf16 = predictors
    assert bf16.image_embeddings.dtype == torch.float32
    relative = (bf16.image_embeddings - fp32.image_embeddings).norm() / fp32.image_embeddings.norm()
    assert 0 < relative < 0.03  # it did run in bfloat16, and stayed close
    prompts = (
        {"boxes": BOX},
        {"boxes": [BOX, [5, 5, 60, 70]]},  # two objects
        {"points": [[40, 50], [100, 20]], "labels": [1, 0]},
        {"points": [[40, 50]], "labels": [1], "multimask_output": True},  # masks 1-3 of the prompt side
    )
    for prompt in prompts:
        masks, scores, logits = bf16.predict(**prompt)
        expected_masks, expected_scores, expected_logits = fp32.predict(**prompt)
        assert logits.dtype == np.float32 and scores.dtype == np.float32
        assert np.abs(scores - expected_scores).max() < 0.05
        assert np.abs(logits - expected_logits).max() < 0.1 * max(np.abs(expected_logits).max(), 1.0)
        assert (masks == expected_masks).mean() > 0.97


def test_mask_prompts_stay_float32(predictors):
    _, fp32, bf16 = predictors
    embeddings = fp32.image_embeddings
    boxes = torch.tensor([[BOX]], dtype=torch.float32)
    mask_input = torch.randn(1, 1, 4 * embeddings.shape[-1], 4 * embeddings.shape[-1])
    with torch.no_grad():
        expected = fp32.backend.decode(embeddings, None, None, boxes, mask_input, False)
        got = bf16.backend.decode(embeddings, None, None, boxes, mask_input, False)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, atol=0, rtol=0)


def test_bf16_copies_follow_weight_changes(predictors):
    model, _, bf16 = predictors
    image = np.random.default_rng(1).integers(0, 255, (120, 160), dtype=np.uint8)
    bf16.set_image(image)
    before_embeddings = bf16.image_embeddings
    _, _, before_logits = bf16.predict(boxes=BOX)
    with torch.no_grad():  # in place, as an optimizer step or load_state_dict
        next(model.vision_encoder.parameters()).mul_(1.5)
        model.mask_decoder.upscale_conv2.weight.mul_(1.5)
    bf16.set_image(image)
    assert not torch.equal(bf16.image_embeddings, before_embeddings)
    reference = UltraSamPredictor(model, backend=TorchBFloat16Backend(model))  # fresh copies of the new weights
    reference.set_image(image)
    torch.testing.assert_close(bf16.image_embeddings, reference.image_embeddings, atol=0, rtol=0)
    bf16.image_embeddings = before_embeddings  # same embedding: only the decoder change shows
    _, _, after_logits = bf16.predict(boxes=BOX)
    reference.image_embeddings = before_embeddings
    _, _, expected_logits = reference.predict(boxes=BOX)
    assert not np.array_equal(after_logits, before_logits)
    np.testing.assert_array_equal(after_logits, expected_logits)


def test_bf16_embeddings_are_not_shared_with_float32(predictors):
    _, fp32, bf16 = predictors
    assert bf16.image_key() != fp32.image_key()
    with pytest.raises(UsageError, match="embeddings differ"):
        bf16.use_image_of(fp32)


def test_bf16_backend_is_chosen_by_name_only(predictors, monkeypatch, capsys):
    model, _, _ = predictors
    monkeypatch.setattr(backends, "native_bfloat16_cpu", lambda: False)
    backend = make_backend("pytorch-bf16", model, None, "cpu")
    assert isinstance(backend, TorchBFloat16Backend) and backend.description.startswith("PyTorch bfloat16 (cpu")
    assert "no native bfloat16" in capsys.readouterr().out
    assert not isinstance(make_backend("auto", model, None, "cpu", verbose=False), TorchBFloat16Backend)


def test_segment_cli_offers_every_backend():
    from ultrasam_hf.inference.cli import register

    subparsers = argparse.ArgumentParser().add_subparsers()
    register(subparsers)
    action = next(action for action in subparsers.choices["segment"]._actions if action.dest == "backend")
    assert tuple(action.choices) == BACKENDS


def test_bf16_backend_on_a_bfloat16_model(predictors):
    model, _, _ = predictors
    model.to(torch.bfloat16)
    predictor = UltraSamPredictor(model, backend=TorchBFloat16Backend(model))
    predictor.set_image(np.random.default_rng(0).integers(0, 255, (120, 160), dtype=np.uint8))
    assert predictor.image_embeddings.dtype == torch.bfloat16  # the model's own forward decodes it
    masks, scores, _ = predictor.predict(boxes=BOX)
    assert masks.shape == (1, 1, 120, 160) and scores.dtype == np.float32 and np.isfinite(scores).all()
