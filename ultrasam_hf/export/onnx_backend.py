"""ONNX Runtime backend of `UltraSamPredictor`: the exported graphs on the CPU, same inputs and outputs (torch
tensors) as the PyTorch backend, so the predictor's pre- and post-processing are shared."""

import logging
import os
import time
from pathlib import Path

import numpy as np
import torch

from .cached_decoder import ImageSideMemo, run_prompt_side, selected_masks, uses_split_decoder
from .graphs import BOX_BOTTOM_RIGHT, BOX_TOP_LEFT, prompt_arrays
from .onnx_export import read_manifest

PROMPT_RUNTIMES = ("onnxruntime", "pytorch", "fastest")
logger = logging.getLogger(__name__)


def session_options(threads: int | None = None):
    """ONNX Runtime options for a shared CPU: `threads` intra-op threads (default: torch's count, i.e. this
    process's CPU budget) and no spin-waiting, which on a busy machine burns the cores other processes need."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = int(threads or os.environ.get("ULTRASAM_ORT_THREADS") or torch.get_num_threads())
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only: ORT warns about unused initializers of a folded graph
    return options


class OnnxBackend:
    """Runs `encoder(_int8).onnx` / `decoder(_int8).onnx` of an export folder made from `model` (whose config drives
    the refinement cascade, run by `UltraSamModel.cascade` as in PyTorch). Prompts without a mask prompt go through
    the split decoder (`decoder_image.onnx` once per image embedding, then `decoder_prompt.onnx`) where the export
    has it and `split_decoder` is on (off: every prompt through `decoder.onnx`, the baseline of the benchmarks).

    `prompt_runtime` runs that split decoder's prompts: `"onnxruntime"`, `"pytorch"` (the float32 PyTorch backend's
    split decoder, `export/eager_layout.py`: the same masks within 1e-5, and on some CPUs faster than ONNX Runtime:
    11.6 against 14.4 ms on a 2-core AMX Xeon, `docs/benchmarks.md`), or `"fastest"`: both timed on a box when the
    backend is made, the faster kept (the choice is logged and ends `description`; float32 models only)."""

    def __init__(
        self,
        model,
        folder,
        precision: str = "fp32",
        threads: int | None = None,
        split_decoder: bool = True,
        prompt_runtime: str = "onnxruntime",
    ):
        try:
            import onnxruntime
        except ImportError as error:
            raise ImportError("The onnx backend needs onnxruntime: pip install 'ultrasam-hf[onnx]'") from error
        self.folder = Path(folder)
        self.manifest = read_manifest(self.folder)
        if self.manifest is None:
            raise FileNotFoundError(f"{self.folder} holds no ONNX export (no ultrasam_onnx.json)")
        if precision not in self.manifest["graphs"]:
            raise FileNotFoundError(
                f"{self.folder} has no {precision} graphs (it has {sorted(self.manifest['graphs'])}); "
                f"run `ultrasam export onnx MODEL --out {self.folder}{' --int8' if precision == 'int8' else ''}`"
            )
        self.model = model
        self.precision = precision
        self.name = "onnxruntime" if precision == "fp32" else f"onnxruntime-{precision}"
        self.key = f"{self.name}:{self.manifest['model_fingerprint']}"
        options = session_options(threads)
        graphs = self.manifest["graphs"][precision]
        self.encoder = onnxruntime.InferenceSession(
            str(self.folder / graphs["encoder"]), options, providers=["CPUExecutionProvider"]
        )
        self.decoder = onnxruntime.InferenceSession(
            str(self.folder / graphs["decoder"]), options, providers=["CPUExecutionProvider"]
        )
        self.image_side = self.prompt_side = None
        if split_decoder and "decoder_prompt" in graphs:  # exports made before it have the full decoder only
            self.image_side, self.prompt_side = (
                onnxruntime.InferenceSession(
                    str(self.folder / graphs[name]), options, providers=["CPUExecutionProvider"]
                )
                for name in ("decoder_image", "decoder_prompt")
            )
        if prompt_runtime not in PROMPT_RUNTIMES:
            raise ValueError(f"prompt_runtime must be one of {PROMPT_RUNTIMES}, got {prompt_runtime!r}")
        float32 = next(model.parameters()).dtype == torch.float32  # "fastest" weighs PyTorch's float32 split decoder
        usable = self.prompt_side is not None and (prompt_runtime != "fastest" or float32)
        self.prompt_runtime = prompt_runtime if usable else "onnxruntime"
        self._torch = None  # the PyTorch backend whose split decoder runs prompts, on first use
        self.image_side_outputs = ImageSideMemo(self._run_image_side)
        self.mask_size = int(self.manifest["preprocessing"]["mask_size"])
        split = ", split decoder" if self.prompt_side is not None else ""
        self.description = f"ONNX Runtime {precision} ({options.intra_op_num_threads} threads{split}, {self.folder})"
        if self.prompt_runtime == "fastest":
            self._choose_prompt_runtime()

    def encode(self, pixel_values: torch.Tensor) -> torch.Tensor:
        pixels = np.ascontiguousarray(pixel_values.detach().cpu().numpy(), dtype=np.float32)
        return torch.from_numpy(self.encoder.run(None, {"pixel_values": pixels})[0])

    def _run_image_side(self, image_embeddings: torch.Tensor) -> dict:
        embeddings = np.ascontiguousarray(image_embeddings.detach().cpu().numpy(), dtype=np.float32)
        outputs = self.image_side.run(None, {"image_embeddings": embeddings})
        return dict(zip([output.name for output in self.image_side.get_outputs()], outputs))

    def decode_pass(self, image_embeddings, input_points, input_labels, input_boxes, input_masks, multimask_output):
        """One decoder pass for one image, `UltraSamModel._decode`'s inputs and outputs."""
        if image_embeddings.shape[0] != 1:
            raise ValueError(f"the onnx backend decodes one image at a time, got {image_embeddings.shape[0]}")
        coords, labels = prompt_arrays(input_points, input_labels, input_boxes)
        has_mask = input_masks is not None
        if self.prompt_side is not None and uses_split_decoder(
            image_embeddings, input_points, input_boxes, input_masks
        ):
            run = self._pytorch_prompt if self.prompt_runtime == "pytorch" else self._onnxruntime_prompt
            return run(image_embeddings, coords, labels, multimask_output)
        if has_mask:
            masks = input_masks.detach().cpu().numpy().astype(np.float32)
            masks = masks.reshape(-1, 1, *masks.shape[-2:])  # (1 or K, 1, h, w): per image or per prompt
        else:
            masks = np.zeros((1, 1, self.mask_size, self.mask_size), np.float32)
        iou, logits = self.decoder.run(
            None,
            {
                "image_embeddings": np.ascontiguousarray(image_embeddings.detach().cpu().numpy(), dtype=np.float32),
                "point_coords": coords,
                "point_labels": labels,
                "mask_input": masks,
                "has_mask_input": np.array([float(has_mask)], np.float32),
            },
        )
        return self._select(iou, logits, multimask_output)

    def _onnxruntime_prompt(self, image_embeddings, coords, labels, multimask_output):
        feeds = {**self.image_side_outputs(image_embeddings), "point_coords": coords, "point_labels": labels}
        iou, logits = self.prompt_side.run(None, feeds)
        return self._select(iou, logits, multimask_output)

    def _pytorch_prompt(self, image_embeddings, coords, labels, multimask_output):
        from ..inference.backends import TorchBackend

        if self._torch is None:
            self._torch = TorchBackend(self.model)
        image_side, prompt_side, _ = self._torch._graphs()
        coords, labels = torch.from_numpy(coords), torch.from_numpy(labels)
        with torch.no_grad():
            return run_prompt_side(image_side, prompt_side, image_embeddings, coords, labels, multimask_output)

    def _choose_prompt_runtime(self, warm_up: int = 2, rounds: int = 5) -> None:
        """Keep the faster prompt runtime on this machine, timed on one box on a blank embedding (their speed does not
        depend on the values): `warm_up` calls each, then `rounds` alternating timed calls each, medians compared."""
        config = self.model.config
        side, size = config.prompt_encoder_config.image_embedding_size, config.prompt_encoder_config.image_size
        blank = torch.zeros(1, config.mask_decoder_config.hidden_size, side, side)
        box = np.array([[[0.25 * size, 0.25 * size], [0.75 * size, 0.75 * size]]], np.float32)
        prompt = (blank, box, np.array([[BOX_TOP_LEFT, BOX_BOTTOM_RIGHT]], np.int64), False)
        runs = {"onnxruntime": self._onnxruntime_prompt, "pytorch": self._pytorch_prompt}
        times = {name: [] for name in runs}
        for name, run in runs.items():
            for _ in range(warm_up):
                run(*prompt)
        for _ in range(rounds):
            for name, run in runs.items():
                start = time.perf_counter()
                run(*prompt)
                times[name].append(time.perf_counter() - start)
        medians = {name: float(np.median(values)) for name, values in times.items()}
        self.prompt_runtime = min(medians, key=medians.get)
        self.description += f", prompts on {self.prompt_runtime}"
        logger.info(
            "prompts on %s: %.1f ms with ONNX Runtime, %.1f ms with PyTorch",
            self.prompt_runtime,
            1000 * medians["onnxruntime"],
            1000 * medians["pytorch"],
        )

    @staticmethod
    def _select(iou, logits, multimask_output):
        selected = selected_masks(multimask_output)
        return torch.from_numpy(logits[None, :, selected]), torch.from_numpy(iou[None, :, selected])

    def decode(self, image_embeddings, input_points, input_labels, input_boxes, input_masks, multimask_output):
        """`(iou_scores, pred_masks)` as `UltraSamModel.forward` returns them."""

        def decode(points, labels, boxes, masks, multimask):
            return self.decode_pass(image_embeddings, points, labels, boxes, masks, multimask)

        masks, iou, _, _ = self.model.cascade(
            decode, input_points, input_labels, input_boxes, input_masks, multimask_output
        )
        return iou, masks


__all__ = ["OnnxBackend", "session_options"]
