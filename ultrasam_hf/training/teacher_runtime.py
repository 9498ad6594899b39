"""Where a distillation teacher's encoder runs. The teacher is frozen, so on a CPU its embedding of each batch can
come from its ONNX export instead of PyTorch: the same embeddings (max |difference| 2e-6 on the shipped model) about
4x faster at batch 8 on 2 cores, which is half of a distillation step's time there (docs/training_usage.md)."""

import logging

from transformers.modeling_outputs import BaseModelOutput

TEACHER_RUNTIMES = ("auto", "pytorch", "onnx")
logger = logging.getLogger(__name__)


class OnnxTeacherEncoder:
    """Called as the teacher's `vision_encoder` is, `pixel_values -> output.last_hidden_state`, on an `OnnxBackend`."""

    def __init__(self, backend):
        self.backend = backend

    def __call__(self, pixel_values):
        return BaseModelOutput(last_hidden_state=self.backend.encode(pixel_values).to(pixel_values.device))


def teacher_encoder(teacher, folder: str, runtime: str, device, processor, verbose: bool = True):
    """`teacher.vision_encoder`, or its ONNX Runtime graph with `runtime="onnx"`, or with `"auto"` on a CPU where
    onnxruntime is installed. The graph is the teacher folder's `onnx/` export or the cache's, and is exported into
    the cache once when neither exists (checked against PyTorch as every export is)."""
    import torch

    from ..inference.backends import make_backend, onnxruntime_available

    if runtime not in TEACHER_RUNTIMES:
        raise ValueError(f"teacher runtime must be one of {TEACHER_RUNTIMES}, got {runtime!r}")
    on_cpu = torch.device(device).type == "cpu"
    if runtime == "onnx" and not on_cpu:
        raise ValueError(f"--teacher-runtime onnx runs the teacher on the CPU; the run is on {device}")
    if runtime == "pytorch" or not (on_cpu and onnxruntime_available()):
        encoder, description = teacher.vision_encoder, f"PyTorch ({torch.device(device)})"
    else:
        backend = make_backend("onnx", teacher, processor, "cpu", model_dir=folder, verbose=verbose)
        encoder, description = OnnxTeacherEncoder(backend), backend.description
    (print if verbose else logger.info)(f"distillation teacher's encoder: {description}")
    return encoder


__all__ = ["OnnxTeacherEncoder", "TEACHER_RUNTIMES", "teacher_encoder"]
