"""Inference backends of `UltraSamPredictor`: an object with `encode(pixel_values) -> image_embeddings` and
`decode(image_embeddings, input_points, input_labels, input_boxes, input_masks, multimask_output) -> (iou_scores,
pred_masks)` on the model's tensors, plus `name`, `key` (what its numbers depend on) and `description`.

- `pytorch`: the model itself.
- `onnx` / `onnx-int8`: ONNX Runtime on the graphs of `ultrasam export onnx` (`ultrasam_hf.export`), exported on
  first use into the cache when missing (with a message).
- `auto` (default): `onnx` when onnxruntime is installed, the model runs on the CPU and a float32 export of these
  exact weights exists (model folder `onnx/` or the cache; each was checked against PyTorch when written), else
  `pytorch`. Never int8, which changes numbers.
"""

import importlib.util
import logging

import torch

BACKENDS = ("auto", "pytorch", "onnx", "onnx-int8")
logger = logging.getLogger(__name__)


class TorchBackend:
    name = key = "pytorch"

    def __init__(self, model):
        self.model = model
        self.description = f"PyTorch ({next(model.parameters()).device}, {torch.get_num_threads()} threads)"

    def encode(self, pixel_values):
        return self.model.get_image_embeddings(pixel_values)

    def decode(self, image_embeddings, input_points, input_labels, input_boxes, input_masks, multimask_output):
        outputs = self.model(
            image_embeddings=image_embeddings,
            input_boxes=input_boxes,
            input_points=input_points,
            input_labels=input_labels,
            input_masks=input_masks,
            multimask_output=multimask_output,
        )
        return outputs.iou_scores, outputs.pred_masks


def onnxruntime_available() -> bool:
    return importlib.util.find_spec("onnxruntime") is not None and importlib.util.find_spec("onnx") is not None


def make_backend(name: str, model, processor, device, model_dir=None, verbose: bool = True):
    """The backend called `name` (one of `BACKENDS`) for `model` on `device`; see the module docstring."""
    if name not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {name!r}")
    on_cpu = torch.device(device).type == "cpu"
    if name == "pytorch" or (name == "auto" and not (on_cpu and onnxruntime_available())):
        return TorchBackend(model)
    from ..export.onnx_backend import OnnxBackend
    from ..export.onnx_export import export_onnx, find_export

    precision = "int8" if name == "onnx-int8" else "fp32"
    found = find_export(model, model_dir, precision)
    if name == "auto":
        return TorchBackend(model) if found is None else OnnxBackend(model, found[0], precision)
    if not on_cpu:
        raise ValueError(f"backend={name!r} runs on the CPU; got device={device!r}")
    if not onnxruntime_available():
        raise ImportError(f"backend={name!r} needs onnx and onnxruntime: pip install 'ultrasam-hf[onnx]'")
    if found is None:
        message = f"No {precision} ONNX export of this model yet: exporting it once into the cache"
        (print if verbose else logger.info)(message + " (or run `ultrasam export onnx MODEL` beforehand)")
        folder = export_onnx(model, processor, int8=precision == "int8")
    else:
        folder = found[0]
    return OnnxBackend(model, folder, precision)


__all__ = ["BACKENDS", "TorchBackend", "make_backend", "onnxruntime_available"]
