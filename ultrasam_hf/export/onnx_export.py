"""Export an UltraSam model as two ONNX graphs (image encoder; prompt encoder + mask decoder) with a manifest, and
find such an export again.

An export folder holds `encoder.onnx`, `decoder.onnx`, the same decoder split into `decoder_image.onnx` (once per
image) and `decoder_prompt.onnx` (per prompt without a mask prompt; `cached_decoder.py`), optionally
`encoder_int8.onnx` / `decoder_int8.onnx`, and
`ultrasam_onnx.json` (written last, so a folder without it is an interrupted export): the preprocessing a client
must apply, the graphs' inputs and outputs, the fingerprint of the weights they were made from, and the parity
measured against PyTorch at export time. An export is used only for a model with the same fingerprint.

Where exports are looked for: `<model folder>/onnx/`, then the cache `$ULTRASAM_CACHE/onnx/<fingerprint>/` (the
default `--out` of `ultrasam export onnx`).
"""

import hashlib
import json
import warnings
from pathlib import Path

import numpy as np
import torch

from ..inference.default_model import cache_dir
from ..models.transforms import low_res_size
from .cached_decoder import ImageSideGraph, PromptSideGraph, TokenSideDecoderGraph
from .graphs import ImageEncoderGraph

MANIFEST = "ultrasam_onnx.json"
FORMAT_VERSION = 1
# What the graphs compute is unchanged between revisions; how fast is not. 2: an attention stage whose grid fits in
# one window attends on the grid's tokens (`padded_window_forward`), which revision 1 zero-padded to the window
# (the nano encoder: 2.6x slower, same embeddings). A manifest without the key is revision 1.
GRAPH_REVISION = 2
OPSET = 17
GRAPHS = {"fp32": ("encoder.onnx", "decoder.onnx"), "int8": ("encoder_int8.onnx", "decoder_int8.onnx")}
# a graph whose masks differ from PyTorch's by more than this is not written as usable
MIN_MASK_IOU = 0.99
ENCODER_INPUTS, ENCODER_OUTPUTS = ["pixel_values"], ["image_embeddings"]
DECODER_INPUTS = ["image_embeddings", "point_coords", "point_labels", "mask_input", "has_mask_input"]
DECODER_OUTPUTS = ["iou_scores", "low_res_masks"]
# the decoder split in an image-side and a prompt-side graph (a click costs about half the full decoder's time)
SPLIT_DECODER = {"decoder_image": "decoder_image.onnx", "decoder_prompt": "decoder_prompt.onnx"}
IMAGE_SIDE_OUTPUTS = ["image_tokens", "first_keys", "first_values", "first_queries"]
PROMPT_SIDE_INPUTS = [*IMAGE_SIDE_OUTPUTS, "point_coords", "point_labels"]
# the axes that vary per call: the number of objects and of points per object. ONNX Runtime optimises a graph for the
# shapes it knows, so a benchmark of these graphs exports them with the same axes (`scripts/benchmark_decoder.py`)
PROMPT_AXES = {"point_coords": {0: "objects", 1: "points"}, "point_labels": {0: "objects", 1: "points"}}
OUTPUT_AXES = {"iou_scores": {0: "objects"}, "low_res_masks": {0: "objects"}}
# (input names, output names, dynamic axes) of each decoder graph
DECODER_LAYOUT = (DECODER_INPUTS, DECODER_OUTPUTS, {**PROMPT_AXES, "mask_input": {0: "mask_objects"}, **OUTPUT_AXES})
IMAGE_SIDE_LAYOUT = (["image_embeddings"], IMAGE_SIDE_OUTPUTS, None)
PROMPT_SIDE_LAYOUT = (PROMPT_SIDE_INPUTS, DECODER_OUTPUTS, {**PROMPT_AXES, **OUTPUT_AXES})


def model_fingerprint(model) -> str:
    """SHA-256 of a model's weights and configuration: what its graphs depend on."""
    digest = hashlib.sha256()
    config = model.config.to_dict()
    for volatile in ("_name_or_path", "transformers_version", "architectures", "auto_map", "dtype"):
        config.pop(volatile, None)
    digest.update(json.dumps(config, sort_keys=True, default=str).encode())
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def cache_folder(fingerprint: str) -> Path:
    return cache_dir() / "onnx" / fingerprint[:20]


def read_manifest(folder) -> dict | None:
    path = Path(folder) / MANIFEST
    return json.loads(path.read_text()) if path.is_file() else None


def stale_export_reason(model, manifest: dict) -> str | None:
    """Why an export of `model`'s weights is slower than one made now (`GRAPH_REVISION`), or None. Only graphs
    that a revision changed are stale: revision 2 changed the nano encoder's."""
    if manifest.get("graph_revision", 1) < 2 and model.config.vision_config.encoder_type == "nano":
        return (
            "its encoder graph attends on a zero-padded window (made before graph revision 2: "
            "the same embeddings, about 2.6x slower)"
        )
    return None


def find_export(model, model_dir=None, precision: str = "fp32") -> tuple[Path, dict] | None:
    """The export folder (and its manifest) made from this model's weights that has `precision` graphs, looking in
    `model_dir/onnx` then in the cache, a current one before a stale one (`stale_export_reason`); None when there
    is none. Hashes the weights only when a candidate exists."""
    candidates = [Path(model_dir) / "onnx"] if model_dir is not None and Path(model_dir).is_dir() else []
    if not any((c / MANIFEST).is_file() for c in candidates) and not (cache_dir() / "onnx").is_dir():
        return None
    fingerprint = model_fingerprint(model)
    found = []
    for folder in [*candidates, cache_folder(fingerprint)]:
        manifest = read_manifest(folder)
        if (
            manifest is not None
            and manifest.get("format_version") == FORMAT_VERSION
            and manifest.get("model_fingerprint") == fingerprint
            and precision in manifest.get("graphs", {})
        ):
            found.append((folder, manifest))
    current = [match for match in found if stale_export_reason(model, match[1]) is None]
    return (current or found or [None])[0]


def preprocessing_record(model, processor) -> dict:
    """What a client without this package must do to pixels and prompts (the processor's recipe, spelled out)."""
    image_processor = processor.image_processor
    size = int(model.config.vision_config.image_size)
    mode = image_processor.preprocessing
    return {
        "mode": mode,
        "input_size": size,
        "resize": f"long side to {size} px (bilinear), aspect ratio kept, rounded half up",
        "min_max_to_unit_range": mode == "litemedsam" and bool(image_processor.do_normalize),
        "rescale_factor": image_processor.rescale_factor if image_processor.do_rescale else None,
        "image_mean": list(image_processor.image_mean) if image_processor.do_normalize else None,
        "image_std": list(image_processor.image_std) if image_processor.do_normalize else None,
        "pad": f"bottom-right with zeros to {size}x{size}, after normalisation",
        "layout": "float32 (batch, 3, height, width), RGB",
        "prompts": "points (x, y) and boxes (x0, y0, x1, y1) scaled from original pixels to the resized image",
        "mask_size": low_res_size(model.config),
        "image_processor": image_processor.to_dict(),
    }


def _export_graph(module, args, path, input_names, output_names, dynamic_axes, opset):
    # The TorchScript exporter: quick on these graphs, exact, and handles the dynamic prompt count that
    # torch.export's 0/1 specialisation rejects.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            args,
            str(path),
            input_names=input_names,
            output_names=output_names,
            dynamic_axes=dynamic_axes,
            opset_version=opset,
            dynamo=False,
            do_constant_folding=True,
        )


def export_graphs(model, out_dir, opset: int = OPSET) -> None:
    """Write `encoder.onnx`, `decoder.onnx`, `decoder_image.onnx` and `decoder_prompt.onnx` of `model` (float32,
    CPU) into `out_dir`."""
    model = model.float().eval().cpu()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    size = int(model.config.vision_config.image_size)
    with torch.no_grad():
        pixel_values = torch.rand(1, 3, size, size)
        _export_graph(
            ImageEncoderGraph(model).eval(),
            (pixel_values,),
            out_dir / GRAPHS["fp32"][0],
            ENCODER_INPUTS,
            ENCODER_OUTPUTS,
            {"pixel_values": {0: "batch"}, "image_embeddings": {0: "batch"}},
            opset,
        )
        embeddings = model.get_image_embeddings(pixel_values)
        mask_size = low_res_size(model.config)
        example = (
            embeddings,
            torch.tensor([[[10.0, 20.0], [0.0, 0.0]]]),
            torch.tensor([[1, -1]]),
            torch.zeros(1, 1, mask_size, mask_size),
            torch.zeros(1),
        )
        # `PromptDecoderGraph`'s function with the projections on the token side (half its FLOPs)
        _export_graph(
            TokenSideDecoderGraph(model).eval(),
            example,
            out_dir / GRAPHS["fp32"][1],
            *DECODER_LAYOUT,
            opset,
        )
        image_side = ImageSideGraph(model).eval()
        _export_graph(
            image_side,
            (embeddings,),
            out_dir / SPLIT_DECODER["decoder_image"],
            *IMAGE_SIDE_LAYOUT,
            opset,
        )
        _export_graph(
            PromptSideGraph(model).eval(),
            (*image_side(embeddings), *example[1:3]),
            out_dir / SPLIT_DECODER["decoder_prompt"],
            *PROMPT_SIDE_LAYOUT,
            opset,
        )


def parity_image(size: int = 320) -> np.ndarray:
    """A deterministic ultrasound-like test frame (speckle, a dark round lesion, a bright layer) for the export-time
    parity check when no real image is given."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size]
    image = 90 + 40 * np.sin(xx / 23.0) * np.cos(yy / 31.0) + rng.gamma(2.0, 12.0, (size, size))
    image[(yy - size * 0.55) ** 2 + (xx - size * 0.45) ** 2 < (size * 0.18) ** 2] *= 0.25
    image[int(size * 0.15) : int(size * 0.2)] += 80
    return np.clip(image, 0, 255).astype(np.uint8)


def compare_predictors(reference, candidate, image, prompts) -> dict:
    """Max |difference| of embeddings and low-res logits, and the worst mask IoU (at the image size), of two
    predictors over `prompts` (a list of `predict` keyword dicts) on `image`."""
    reference.set_image(image)
    candidate.set_image(image)
    stats = {
        "max_abs_embedding_diff": float((reference.image_embeddings - candidate.image_embeddings).abs().max()),
        "max_abs_logit_diff": 0.0,
        "min_mask_iou": 1.0,
    }
    for prompt in prompts:
        ref_masks, _, ref_logits = reference.predict(**prompt)
        masks, _, logits = candidate.predict(**prompt)
        stats["max_abs_logit_diff"] = max(stats["max_abs_logit_diff"], float(np.abs(ref_logits - logits).max()))
        for ref_mask, mask in zip(ref_masks.reshape(-1, *ref_masks.shape[-2:]), masks.reshape(-1, *masks.shape[-2:])):
            union = np.logical_or(ref_mask, mask).sum()
            iou = 1.0 if union == 0 else np.logical_and(ref_mask, mask).sum() / union
            stats["min_mask_iou"] = min(stats["min_mask_iou"], float(iou))
    return stats


def parity_prompts(height: int, width: int) -> list[dict]:
    """A box, two clicks (one negative), two objects at once, a box with a click: the checkpoint's default output
    (the untrained multimask tokens of a single-mask checkpoint give near-zero logits whose sign is noise)."""
    box = [width * 0.25, height * 0.35, width * 0.65, height * 0.75]
    clicks = {"points": [[width * 0.45, height * 0.55], [width * 0.1, height * 0.1]], "labels": [1, 0]}
    return [
        {"boxes": box},
        clicks,
        {"boxes": [box, [0, 0, width * 0.5, height * 0.3]]},
        {"boxes": box, **clicks},
    ]


def check_parity(predictor, folder, precision: str, image=None) -> dict:
    """Compare the graphs in `folder` with the PyTorch `predictor` on `image` (default `parity_image()`)."""
    from ..inference.backends import TorchBackend
    from .onnx_backend import OnnxBackend

    image = parity_image() if image is None else image
    # the reference is the model's own forward, not the split decoder the exported graphs share with PyTorch
    reference_backend = TorchBackend(predictor.model, split_decoder=False)
    reference = type(predictor)(predictor.model, predictor.processor, backend=reference_backend)
    candidate = type(predictor)(
        predictor.model, predictor.processor, backend=OnnxBackend(predictor.model, folder, precision=precision)
    )
    reference.set_image(image)
    prompts = parity_prompts(*reference.original_size)
    stats = compare_predictors(reference, candidate, image, prompts)
    # the refinement path: logits of a first call as mask prompt
    _, _, logits = reference.predict(**prompts[0])
    stats_mask = compare_predictors(reference, candidate, image, [{**prompts[0], "mask_input": logits[:, 0]}])
    stats["max_abs_logit_diff"] = max(stats["max_abs_logit_diff"], stats_mask["max_abs_logit_diff"])
    stats["min_mask_iou"] = min(stats["min_mask_iou"], stats_mask["min_mask_iou"])
    return stats


def export_onnx(model, processor, out_dir=None, int8: bool = False, opset: int = OPSET, image=None) -> Path:
    """
    Export `model` (with `processor`, whose recipe the manifest records) to `out_dir` (default: the cache folder
    of its fingerprint), check the graphs against PyTorch on `image` (default: `parity_image()`), and write the
    manifest. `int8` adds dynamically quantised graphs (their parity is recorded, not enforced: int8 changes
    numbers by design). Raises when the float32 graphs' masks differ from PyTorch's (IoU < 0.99).
    """
    import onnxruntime

    from ..inference.predictor import UltraSamPredictor

    fingerprint = model_fingerprint(model)
    out_dir = Path(out_dir) if out_dir is not None else cache_folder(fingerprint)
    (out_dir / MANIFEST).unlink(missing_ok=True)  # the folder is incomplete until the manifest is written again
    export_graphs(model, out_dir, opset)
    graphs = {"fp32": {**dict(zip(("encoder", "decoder"), GRAPHS["fp32"])), **SPLIT_DECODER}}
    manifest = {
        "format": "ultrasam-onnx",
        "format_version": FORMAT_VERSION,
        "graph_revision": GRAPH_REVISION,
        "model_fingerprint": fingerprint,
        "preset": model.config.preset,
        "num_mask_refinements": model.config.num_mask_refinements,
        "multimask_output_default": model.config.multimask_output_default,
        "embedding_shape": [
            int(model.config.vision_config.output_channels),
            *[int(model.config.prompt_encoder_config.image_embedding_size)] * 2,
        ],
        "preprocessing": preprocessing_record(model, processor),
        "graphs": graphs,
        "inputs": {
            "encoder": ENCODER_INPUTS,
            "decoder": DECODER_INPUTS,
            "decoder_image": ["image_embeddings"],
            "decoder_prompt": PROMPT_SIDE_INPUTS,
        },
        "outputs": {
            "encoder": ENCODER_OUTPUTS,
            "decoder": DECODER_OUTPUTS,
            "decoder_image": IMAGE_SIDE_OUTPUTS,
            "decoder_prompt": DECODER_OUTPUTS,
        },
        "decoder_layout": "see ultrasam_hf/export/graphs.py: labels 1/0 clicks, -1 padding point, 2/3 box corners, "
        "-10 no point; low_res_masks holds all mask tokens (0: single-mask output, 1..: multimask outputs); "
        "decoder_image (once per image) then decoder_prompt give decoder's outputs for has_mask_input = 0",
        "decoder_graph": "TokenSideDecoderGraph",  # what decoder.onnx is exported from (was PromptDecoderGraph)
        "opset": opset,
        "torch_version": torch.__version__,
        "onnxruntime_version": onnxruntime.__version__,
    }
    predictor = UltraSamPredictor(model, processor, device="cpu", backend="pytorch")
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2))  # provisional: the parity check reads it
    try:
        parity = {"fp32": check_parity(predictor, out_dir, "fp32", image)}
        if parity["fp32"]["min_mask_iou"] < MIN_MASK_IOU:
            raise RuntimeError(
                f"the exported graphs' masks differ from PyTorch's (min IoU {parity['fp32']['min_mask_iou']:.4f} "
                f"< {MIN_MASK_IOU}): not used; {out_dir} kept for inspection"
            )
        if int8:
            from .quantize import quantize_graphs

            quantize_graphs(out_dir)
            graphs["int8"] = dict(zip(("encoder", "decoder"), GRAPHS["int8"]))
            (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2))
            parity["int8"] = check_parity(predictor, out_dir, "int8", image)
    except BaseException:
        (out_dir / MANIFEST).unlink(missing_ok=True)
        raise
    manifest["parity"] = {**parity, "image": "given" if image is not None else "parity_image()"}
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return out_dir


__all__ = [
    "MANIFEST",
    "check_parity",
    "compare_predictors",
    "export_graphs",
    "export_onnx",
    "find_export",
    "model_fingerprint",
    "parity_image",
    "stale_export_reason",
]
