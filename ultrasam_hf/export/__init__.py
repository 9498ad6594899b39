"""Export of UltraSam models for other runtimes: ONNX graphs (`ultrasam export onnx`) and the ONNX Runtime backend
of `UltraSamPredictor`. Needs the `onnx` extra (`pip install 'ultrasam-hf[onnx]'`)."""

from .onnx_export import MANIFEST, export_onnx, find_export, model_fingerprint

__all__ = ["MANIFEST", "export_onnx", "find_export", "model_fingerprint"]
