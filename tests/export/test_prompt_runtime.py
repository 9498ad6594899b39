"""`OnnxBackend(prompt_runtime=...)`: the split decoder's prompts on ONNX Runtime, on the PyTorch backend's split
decoder, or on whichever of the two was faster when the backend was made."""

import time

import numpy as np
import pytest

from ultrasam_hf import UltraSamPredictor
from ultrasam_hf.export.onnx_backend import OnnxBackend
from ultrasam_hf.export.onnx_export import parity_image
from ultrasam_hf.inference.backends import make_backend


def predict(model, processor, backend, **prompt):
    predictor = UltraSamPredictor(model, processor, backend=backend)
    predictor.set_image(parity_image(160))
    return predictor.predict(**prompt)


@pytest.mark.parametrize(
    "prompt", [{"boxes": [20, 30, 120, 150]}, {"points": [[60, 80]], "labels": [1], "multimask_output": True}]
)
def test_pytorch_prompts_equal_onnxruntime_prompts(exported, prompt):
    model, processor, folder = exported
    masks, scores, logits = predict(model, processor, OnnxBackend(model, folder), **prompt)
    torch_masks, torch_scores, torch_logits = predict(
        model, processor, OnnxBackend(model, folder, prompt_runtime="pytorch"), **prompt
    )
    assert logits.shape == torch_logits.shape and scores.shape == torch_scores.shape
    assert np.allclose(torch_logits, logits, atol=1e-4 * max(float(np.abs(logits).max()), 1.0))
    assert np.allclose(torch_scores, scores, atol=1e-4)
    assert (torch_masks == masks).mean() > 0.999


@pytest.mark.parametrize("slower", ["onnxruntime", "pytorch"])
def test_fastest_keeps_the_faster_runtime_and_says_so(exported, monkeypatch, slower):
    model, processor, folder = exported
    run = getattr(OnnxBackend, f"_{slower}_prompt")

    def slow(self, *args):
        time.sleep(0.02)
        return run(self, *args)

    monkeypatch.setattr(OnnxBackend, f"_{slower}_prompt", slow)
    backend = OnnxBackend(model, folder, prompt_runtime="fastest")  # chosen as it is made, before any image
    faster = "pytorch" if slower == "onnxruntime" else "onnxruntime"
    assert backend.prompt_runtime == faster
    assert backend.description.endswith(f"prompts on {faster}")
    masks, _, _ = predict(model, processor, backend, boxes=[20, 30, 120, 150])
    assert masks.shape[:2] == (1, 1) and backend.prompt_runtime == faster


def test_named_onnx_backends_time_their_prompts(exported):
    model, processor, folder = exported
    backend = make_backend("onnx", model, processor, "cpu", model_dir=folder.parent, verbose=False)
    assert isinstance(backend, OnnxBackend) and backend.prompt_runtime in ("onnxruntime", "pytorch")
    assert backend.description.endswith(f"prompts on {backend.prompt_runtime}")


def test_an_unknown_prompt_runtime_is_refused(exported):
    model, _, folder = exported
    with pytest.raises(ValueError, match="prompt_runtime"):
        OnnxBackend(model, folder, prompt_runtime="tensorrt")
