"""Meta's `segment_anything` layout (SAM `sam_vit_{b,l,h}_*.pth`, MedSAM `medsam_vit_b.pth`) -> `UltraSamModel`.

The renaming follows transformers' `convert_sam_to_hf.py`; the encoder size (ViT-B/L/H) is read from the tensor
shapes. SAM and MedSAM are plain SAM: the converted config has `num_mask_refinements=0`, so the model computes
exactly what `SamModel` (and Meta's code) computes.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from ..hub.repo_ids import MEDSAM_REPO, SAM_REPOS
from ..models.configuration_ultrasam import PRESETS, UltraSamConfig
from ..models.errors import CheckpointError, UsageError
from .checkpoint_io import SourceInfo, load_state_dict, load_strictly, save_converted

# width -> (depth, heads, global-attention layers) of Meta's three encoders
VIT_SIZES = {
    768: ("b", 12, 12, [2, 5, 8, 11]),
    1024: ("l", 24, 16, [5, 11, 17, 23]),
    1280: ("h", 32, 16, [7, 15, 23, 31]),
}

SAM_CITATION = """@inproceedings{kirillov2023segany,
  title={Segment Anything},
  author={Kirillov, Alexander and Mintun, Eric and Ravi, Nikhila and Mao, Hanzi and Rolland, Chloe and Gustafson, Laura and Xiao, Tete and Whitehead, Spencer and Berg, Alexander C. and Lo, Wan-Yen and Doll{\\'a}r, Piotr and Girshick, Ross},
  booktitle={ICCV},
  year={2023}
}"""
MEDSAM_CITATION = """@article{MedSAM,
  title={Segment Anything in Medical Images},
  author={Ma, Jun and He, Yuting and Li, Feifei and Han, Lin and You, Chenyu and Wang, Bo},
  journal={Nature Communications},
  volume={15},
  pages={654},
  year={2024}
}"""


def _mlp_head(match: re.Match) -> str:
    """SAM's `MLP.layers.i` -> transformers' `proj_in` / `layers.(i-1)` / `proj_out` (depth 3 heads)."""
    prefix, index, rest = match.group(1), int(match.group(2)), match.group(3)
    return f"{prefix}.__mlp{index}__.{rest}"


def _finish_mlp_heads(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    depths: dict[str, int] = {}
    for key in state_dict:
        found = re.match(r"(.*)\.__mlp(\d+)__\.", key)
        if found:
            depths[found.group(1)] = max(depths.get(found.group(1), 0), int(found.group(2)) + 1)
    renamed = {}
    for key, value in state_dict.items():
        found = re.match(r"(.*)\.__mlp(\d+)__\.(.*)", key)
        if found:
            prefix, index, rest = found.group(1), int(found.group(2)), found.group(3)
            last = depths[prefix] - 1
            name = "proj_in" if index == 0 else "proj_out" if index == last else f"layers.{index - 1}"
            key = f"{prefix}.{name}.{rest}"
        renamed[key] = value
    return renamed


# (pattern, replacement) applied in order to every key of the segment_anything layout
SAM_RULES = (
    (r"^image_encoder\.", "vision_encoder."),
    (r"^vision_encoder\.blocks\.", "vision_encoder.layers."),
    (r"^vision_encoder\.patch_embed\.proj\.", "vision_encoder.patch_embed.projection."),
    (r"\.norm(\d)\.", r".layer_norm\1."),
    (r"\.norm_final_attn\.", ".layer_norm_final_attn."),
    (r"\.neck\.0\.", ".neck.conv1."),
    (r"\.neck\.1\.", ".neck.layer_norm1."),
    (r"\.neck\.2\.", ".neck.conv2."),
    (r"\.neck\.3\.", ".neck.layer_norm2."),
    (r"^prompt_encoder\.point_embeddings\.", "prompt_encoder.point_embed."),
    (r"^prompt_encoder\.mask_downscaling\.0\.", "prompt_encoder.mask_embed.conv1."),
    (r"^prompt_encoder\.mask_downscaling\.1\.", "prompt_encoder.mask_embed.layer_norm1."),
    (r"^prompt_encoder\.mask_downscaling\.3\.", "prompt_encoder.mask_embed.conv2."),
    (r"^prompt_encoder\.mask_downscaling\.4\.", "prompt_encoder.mask_embed.layer_norm2."),
    (r"^prompt_encoder\.mask_downscaling\.6\.", "prompt_encoder.mask_embed.conv3."),
    (r"^mask_decoder\.output_upscaling\.0\.", "mask_decoder.upscale_conv1."),
    (r"^mask_decoder\.output_upscaling\.1\.", "mask_decoder.upscale_layer_norm."),
    (r"^mask_decoder\.output_upscaling\.3\.", "mask_decoder.upscale_conv2."),
)
POSITIONAL_KEY = "prompt_encoder.pe_layer.positional_encoding_gaussian_matrix"


def sam_to_hf_state_dict(state_dict: dict[str, torch.Tensor], extra_rules=()) -> dict[str, torch.Tensor]:
    """Rename a `segment_anything`-layout state dict to `UltraSamModel`'s names (`extra_rules` run first)."""
    converted = {}
    for key, value in state_dict.items():
        if key == POSITIONAL_KEY:
            converted["shared_image_embedding.positional_embedding"] = value
            converted["prompt_encoder.shared_embedding.positional_embedding"] = value
            continue
        new_key = key
        for pattern, replacement in (*extra_rules, *SAM_RULES):
            new_key = re.sub(pattern, replacement, new_key)
        new_key = re.sub(
            r"^(mask_decoder\.(?:output_hypernetworks_mlps\.\d+|iou_prediction_head))\.layers\.(\d+)\.(.*)$",
            lambda m: _mlp_head(m),
            new_key,
        )
        converted[new_key] = value
    return _finish_mlp_heads(converted)


def infer_sam_config(
    state_dict: dict[str, torch.Tensor], num_mask_refinements: int = 0, **overrides
) -> UltraSamConfig:
    """An `UltraSamConfig` whose ViT matches the checkpoint (B/L/H from the patch-embedding width and depth)."""
    key = "image_encoder.patch_embed.proj.weight"
    if key not in state_dict:
        raise CheckpointError(
            f"Not a segment_anything-layout checkpoint: {key!r} is missing "
            f"(first keys: {sorted(state_dict)[:5]}). Use --from litemedsam or --from ultrasam for other layouts."
        )
    width = state_dict[key].shape[0] if state_dict[key].dim() == 4 else None
    blocks = [int(m.group(1)) for k in state_dict if (m := re.match(r"image_encoder\.blocks\.(\d+)\.", k))]
    depth = 1 + max(blocks, default=-1)
    if width not in VIT_SIZES or VIT_SIZES[width][1] != depth:
        known = ", ".join(f"ViT-{n.upper()} {w}/{d}" for w, (n, d, _, _) in VIT_SIZES.items())
        raise CheckpointError(f"Unknown SAM encoder: width {width}, depth {depth} (known: {known}).")
    name, depth, heads, global_attn = VIT_SIZES[width]
    kwargs = {k: v for k, v in PRESETS["vit-b"].items()}
    kwargs["vision_config"] = {
        **PRESETS["vit-b"]["vision_config"],
        "hidden_size": width,
        "num_hidden_layers": depth,
        "num_attention_heads": heads,
        "global_attn_indexes": global_attn,
    }
    kwargs["num_mask_refinements"] = num_mask_refinements
    kwargs.update(overrides)
    return UltraSamConfig(preset="vit-b" if name == "b" else None, **kwargs)


def convert_sam_state_dict(state_dict: dict[str, torch.Tensor], config: UltraSamConfig | None = None, **overrides):
    """A loaded `UltraSamModel` (eval mode) from a `segment_anything`-layout state dict."""
    from ..models.modeling_ultrasam import UltraSamModel

    config = config or infer_sam_config(state_dict, **overrides)
    model = UltraSamModel(config)
    return load_strictly(model, sam_to_hf_state_dict(state_dict))


def sam_processor(preprocessing: str = "sam", input_size: int = 1024):
    """The processor saved next to a converted SAM-family model."""
    from ..models.image_processing_ultrasam import UltraSamImageProcessor
    from ..models.processing_ultrasam import UltraSamProcessor

    if preprocessing == "sam":
        image_processor = UltraSamImageProcessor.from_preset("vit-b")
    else:  # MedSAM: min-max to [0, 1] at 1024 px, no mean/std; masks decoded at 1/4
        mask = input_size // 4
        image_processor = UltraSamImageProcessor(
            preprocessing=preprocessing,
            size={"longest_edge": input_size},
            pad_size={"height": input_size, "width": input_size},
            mask_size={"longest_edge": mask},
            mask_pad_size={"height": mask, "width": mask},
        )
    return UltraSamProcessor(image_processor)


def convert_sam(checkpoint: str | Path, out_dir: str | Path, source: str = "sam", command: str | None = None):
    """Convert a SAM (`source="sam"`) or MedSAM (`"medsam"`) checkpoint to a folder; returns the loaded model."""
    if source not in ("sam", "medsam"):
        raise UsageError(f"source must be 'sam' or 'medsam', got {source!r}")
    state_dict = load_state_dict(checkpoint)
    # MedSAM feeds min-max normalised pixels ([0, 1], no ImageNet mean/std) to the encoder.
    preprocessing = "sam" if source == "sam" else "litemedsam"
    model = convert_sam_state_dict(state_dict, preprocessing=preprocessing)
    vision = model.config.vision_config
    size = {768: "ViT-B", 1024: "ViT-L", 1280: "ViT-H"}[vision.hidden_size]
    if source == "sam":
        info = SourceInfo(
            source="sam",
            title=f"Segment Anything (SAM) {size}",
            checkpoint=Path(checkpoint).name,
            licence="Apache-2.0",
            base_model=SAM_REPOS[{"ViT-B": "vit_b", "ViT-L": "vit_l", "ViT-H": "vit_h"}[size]],
            citation=SAM_CITATION,
            homepage="https://github.com/facebookresearch/segment-anything",
            intended_use="Promptable segmentation of natural images (points, boxes, masks); the baseline UltraSam "
            "was fine-tuned from. Pixels: long side 1024, ImageNet mean/std, padded.",
        )
    else:
        info = SourceInfo(
            source="medsam",
            title=f"MedSAM {size}",
            checkpoint=Path(checkpoint).name,
            licence="Apache-2.0",
            base_model=MEDSAM_REPO if size == "ViT-B" else None,
            citation=MEDSAM_CITATION,
            homepage="https://github.com/bowang-lab/MedSAM",
            intended_use="Box-prompted segmentation of medical images (CT, MR, ultrasound, ...), research only.",
            notes=[
                "Preprocessing recorded as `litemedsam` at 1024 px: min-max to [0, 1] without mean/std, as MedSAM's "
                "inference code. MedSAM stretches images to 1024x1024; the processor keeps the aspect ratio and pads."
            ],
        )
    command = command or f"ultrasam convert --from {source} {checkpoint} --out {out_dir}"
    save_converted(model, sam_processor(preprocessing), out_dir, info, command)
    return model
