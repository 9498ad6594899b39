"""Inference backends of `UltraSamPredictor`: an object with `encode(pixel_values) -> image_embeddings` and
`decode(image_embeddings, input_points, input_labels, input_boxes, input_masks, multimask_output) -> (iou_scores,
pred_masks)` on the model's tensors, plus `name`, `key` (what its numbers depend on) and `description`.

- `pytorch`: the model itself; for a float32 model on the CPU, its decoder runs as the split decoder
  (`ultrasam_hf.export.cached_decoder`: the same masks, with the image side of prompts without a mask prompt computed
  once per image embedding, and the projections of mask prompts on the token side), laid out for PyTorch's eager
  kernels (`ultrasam_hf.export.eager_layout`) and computing only the masks asked for.
- `pytorch-bf16`: the same, with the image encoder and the image-sized work of the split decoder's prompt side on
  bfloat16 copies of the weights (prompt tokens, mask prompts and other devices' decoders stay float32). On CPUs with
  native bfloat16 matrix products it encoded 1.3–2.5x faster than `pytorch` and prompted in 9.5 against 11.6 ms (an
  AMX Xeon); it changes Dice by up to 0.4 points (`docs/bf16_backend.md`). vit-b encoded a 1024 px image in 1.7 s
  against 6.4 s for `pytorch` on that CPU (`docs/encoder_benchmark.md`).
- `onnx` / `onnx-int8`: ONNX Runtime on the graphs of `ultrasam export onnx` (`ultrasam_hf.export`), exported on
  first use into the cache when missing (with a message). Prompts without a mask prompt run on ONNX Runtime's split
  decoder or on `pytorch`'s, whichever was faster on this machine when the backend was made (the same masks within
  1e-5).
- `auto` (default): `onnx` when onnxruntime is installed, the model runs on the CPU and a float32 export of these
  exact weights exists (model folder `onnx/` or the cache; each was checked against PyTorch when written), else
  `pytorch`. Never int8 or bfloat16, which change numbers.
"""

import copy
import importlib.util
import logging
from pathlib import Path

import torch

BACKENDS = ("auto", "pytorch", "pytorch-bf16", "onnx", "onnx-int8")
logger = logging.getLogger(__name__)


def _versions(modules) -> tuple:
    """The in-place versions of `modules`' weights: they change with every optimizer step or `load_state_dict`."""
    return tuple(weight._version for module in modules for weight in (*module.parameters(), *module.buffers()))


class TorchBackend:
    name = key = "pytorch"
    label = "PyTorch"

    def __init__(self, model, split_decoder: bool = True):
        self.model = model
        self.split_decoder = split_decoder
        split = ", split decoder" if self._runs_split(torch.float32) else ""
        device = next(model.parameters()).device
        self.description = f"{self.label} ({device}, {torch.get_num_threads()} threads{split})"
        self._split = None  # (weights' versions, ImageSideMemo, PromptSideGraph, TokenSideDecoderGraph), on first use

    def encode(self, pixel_values):
        return self.model.get_image_embeddings(pixel_values)

    def _runs_split(self, embeddings_dtype) -> bool:
        """The split decoder: measured on float32 CPU models only (docs/benchmarks.md); elsewhere the model's own
        forward."""
        parameter = next(self.model.parameters())
        float32_cpu = parameter.device.type == "cpu" and parameter.dtype == embeddings_dtype == torch.float32
        return self.split_decoder and float32_cpu

    def decode(self, image_embeddings, input_points, input_labels, input_boxes, input_masks, multimask_output):
        if self._runs_split(image_embeddings.dtype) and image_embeddings.shape[0] == 1:
            return self._decode_split(
                image_embeddings, input_points, input_labels, input_boxes, input_masks, multimask_output
            )
        outputs = self.model(
            image_embeddings=image_embeddings,
            input_boxes=input_boxes,
            input_points=input_points,
            input_labels=input_labels,
            input_masks=input_masks,
            multimask_output=multimask_output,
        )
        return outputs.iou_scores, outputs.pred_masks

    def _graphs(self):
        """(ImageSideMemo, EagerPromptSide, TokenSideDecoderGraph) of the model. They copy a few weights and the memo
        keeps outputs, so they are remade when any decoder weight changed in place (training, `load_state_dict`),
        which bumps its version."""
        from ..export.cached_decoder import ImageSideMemo, TokenSideDecoderGraph
        from ..export.eager_layout import EagerImageSide, EagerPromptSide

        versions = _versions((self.model.mask_decoder, self.model.prompt_encoder, self.model.shared_image_embedding))
        if self._split is None or self._split[0] != versions:
            image_side = ImageSideMemo(EagerImageSide(self.model).eval())
            self._split = (
                versions,
                image_side,
                EagerPromptSide(self.model).eval(),
                TokenSideDecoderGraph(self.model).eval(),
            )
        return self._split[1:]

    def _decode_split(self, image_embeddings, input_points, input_labels, input_boxes, input_masks, multimask_output):
        """`decode` through the split decoder: prompts without a mask prompt on the image side computed once per
        embedding, mask prompts (refinement passes included) through the token-side decoder."""
        from ..export.cached_decoder import run_prompt_side, selected_masks
        from ..export.graphs import sparse_prompts

        image_side, prompt_side, token_side = self._graphs()
        if input_points is not None and input_labels is None:
            input_labels = torch.ones_like(input_points[..., 0], dtype=torch.int)

        def decode_pass(points, labels, boxes, masks, multimask):
            coords, labels = sparse_prompts(
                *(None if prompt is None else prompt[0] for prompt in (points, labels, boxes))
            )
            if masks is None:
                return run_prompt_side(image_side, prompt_side, image_embeddings, coords, labels, multimask)
            mask_input = masks.reshape(-1, 1, *masks.shape[-2:]).float()  # (1, 1 or K, h, w): shared or one each
            iou, logits = token_side(image_embeddings, coords, labels, mask_input, torch.ones(1))
            selected = selected_masks(multimask)
            return logits[None, :, selected], iou[None, :, selected]

        masks, iou, _, _ = self.model.cascade(
            decode_pass, input_points, input_labels, input_boxes, input_masks, multimask_output
        )
        return iou, masks


class TorchBFloat16Backend(TorchBackend):
    """`pytorch-bf16`: `TorchBackend` with the image encoder and the split decoder's image-sized prompt work in
    bfloat16 (copies of the weights, remade when the model's weights change); embeddings and outputs keep the model's
    dtype."""

    name = key = "pytorch-bf16"
    label = "PyTorch bfloat16"

    def __init__(self, model, split_decoder: bool = True):
        super().__init__(model, split_decoder)
        self._encoder = None  # (weights' versions, bfloat16 copy of the vision encoder)

    def encode(self, pixel_values):
        versions = _versions((self.model.vision_encoder,))
        if self._encoder is None or self._encoder[0] != versions:
            self._encoder = (versions, copy.deepcopy(self.model.vision_encoder).to(torch.bfloat16).eval())
        outputs = self._encoder[1](pixel_values.to(torch.bfloat16), return_dict=True)
        return outputs.last_hidden_state.to(next(self.model.parameters()).dtype)

    def _graphs(self):
        from ..export.eager_layout import BFloat16PromptSide

        image_side, prompt_side, token_side = super()._graphs()
        if not isinstance(prompt_side, BFloat16PromptSide):  # the float32 graphs were just (re)made
            prompt_side = BFloat16PromptSide(prompt_side)
            self._split = (*self._split[:2], prompt_side, token_side)
        return image_side, prompt_side, token_side


def native_bfloat16_cpu() -> bool | None:
    """Whether this CPU multiplies bfloat16 matrices natively (AVX512-BF16 or AMX); None where it cannot tell."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    return any(flag in flags.split() for flag in ("avx512_bf16", "amx_bf16"))


def onnxruntime_available() -> bool:
    return importlib.util.find_spec("onnxruntime") is not None and importlib.util.find_spec("onnx") is not None


def make_backend(name: str, model, processor, device, model_dir=None, verbose: bool = True):
    """The backend called `name` (one of `BACKENDS`) for `model` on `device`; see the module docstring."""
    if name not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {name!r}")
    on_cpu = torch.device(device).type == "cpu"
    say = print if verbose else logger.info
    if name == "pytorch-bf16":
        if on_cpu and native_bfloat16_cpu() is False:
            say("This CPU has no native bfloat16 matrix products (AVX512-BF16, AMX): pytorch-bf16 may be slower.")
        return TorchBFloat16Backend(model)
    if name == "pytorch" or (name == "auto" and not (on_cpu and onnxruntime_available())):
        return TorchBackend(model)
    from ..export.onnx_backend import OnnxBackend
    from ..export.onnx_export import export_onnx, find_export, stale_export_reason

    precision = "int8" if name == "onnx-int8" else "fp32"
    found = find_export(model, model_dir, precision)
    stale = found and stale_export_reason(model, found[1])
    if name == "auto":
        if stale:  # still correct: used as it is, since `auto` never exports
            say(f"The ONNX export in {found[0]} is slower than a new one: {stale}.")
            say("`ultrasam export onnx MODEL` (or backend 'onnx') rewrites it.")
        return (
            TorchBackend(model) if found is None else OnnxBackend(model, found[0], precision, prompt_runtime="fastest")
        )
    if not on_cpu:
        raise ValueError(f"backend={name!r} runs on the CPU; got device={device!r}")
    if not onnxruntime_available():
        raise ImportError(f"backend={name!r} needs onnx and onnxruntime: pip install 'ultrasam-hf[onnx]'")
    if found is None or stale:
        why = (
            f"The ONNX export in {found[0]} is stale: {stale}"
            if stale
            else f"No {precision} ONNX export of this model yet"
        )
        say(f"{why}: exporting it once into the cache (or run `ultrasam export onnx MODEL` beforehand)")
        folder = export_onnx(model, processor, int8=precision == "int8")
    else:
        folder = found[0]
    return OnnxBackend(model, folder, precision, prompt_runtime="fastest")


__all__ = [
    "BACKENDS",
    "TorchBFloat16Backend",
    "TorchBackend",
    "make_backend",
    "native_bfloat16_cpu",
    "onnxruntime_available",
]
