"""The official UltraSam release's mmdet layout, both ways.

The release (`UltraSam.pth`, mmengine `{"state_dict", "meta"}`) was fine-tuned from SAM ViT-B weights that the
release's `weights/convert_sam_bb_to_mmdet.py` / `convert_sam_to_mmdet.py` renamed. [`sam_to_mmdet_state_dict`]
applies those rules (documented in `docs/converters.md`) to a `segment_anything`-layout state dict, so tests can
produce the release's layout from any SAM; [`mmdet_to_sam_state_dict`] inverts them and is what the converter uses.
"""

from __future__ import annotations

import re

import torch

from ..models.errors import CheckpointError

ATTENTION_MODULES = (
    "self_attn",
    "cross_attn_token_to_image",
    "cross_attn_image_to_token",
    "final_attn_token_to_image",
)
# rows of `prompt_encoder.label_encoder.label_embedding.weight`, in order, and how many rows each takes
LABEL_EMBEDDING_ROWS = (
    ("prompt_encoder.no_mask_embed.weight", 1),
    ("prompt_encoder.point_embeddings.0.weight", 1),
    ("prompt_encoder.point_embeddings.1.weight", 1),
    ("prompt_encoder.point_embeddings.2.weight", 1),
    ("prompt_encoder.point_embeddings.3.weight", 1),
    ("prompt_encoder.not_a_point_embed.weight", 1),
    ("mask_decoder.mask_tokens.weight", 4),
    ("mask_decoder.iou_token.weight", 1),
)
LABEL_EMBEDDING_KEY = "prompt_encoder.label_encoder.label_embedding.weight"


def _backbone_key(key: str) -> str:
    key = "backbone." + key[len("image_encoder.") :]
    key = key.replace("blocks.", "layers.")
    key = key.replace("patch_embed.proj.", "patch_embed.projection.")
    key = key.replace("norm", "ln")
    key = key.replace("neck", "channel_reduction")
    key = key.replace("mlp.lin1", "ffn.layers.0.0").replace("mlp.lin2", "ffn.layers.1")
    return key


def sam_to_mmdet_state_dict(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a `segment_anything`-layout SAM state dict to the UltraSam release's mmdet layout (forward rules)."""
    out: dict[str, torch.Tensor] = {}
    attention: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in state_dict.items():
        if key.startswith("image_encoder."):
            out[_backbone_key(key)] = value
        elif key.startswith("mask_decoder.transformer."):
            key = "decoder." + key[len("mask_decoder.transformer.") :]
            key = key.replace("mlp.lin1", "mlp.layers.0.0").replace("mlp.lin2", "mlp.layers.1")
            key = key.replace("norm_final_attn", "post_norm")
            found = re.match(rf"(.*\b(?:{'|'.join(ATTENTION_MODULES)}))\.(q|k|v|out)_proj\.(weight|bias)$", key)
            if found:
                module, proj, kind = found.groups()
                if proj == "out":
                    out[f"{module}.attn.out_proj.{kind}"] = value
                elif kind == "weight":
                    out[f"{module}.attn.{proj}_proj_weight"] = value
                else:
                    attention.setdefault(module, {})[proj] = value
                continue
            out[key] = value
        elif key in ("mask_decoder.mask_tokens.weight", "mask_decoder.iou_token.weight") or key.startswith(
            ("prompt_encoder.no_mask_embed.", "prompt_encoder.point_embeddings.", "prompt_encoder.not_a_point_embed.")
        ):
            continue  # stacked into the label embedding below
        elif key.startswith("mask_decoder."):
            out["bbox_head." + key[len("mask_decoder.") :]] = value
        else:  # prompt_encoder.pe_layer.*, prompt_encoder.mask_downscaling.*
            out[key] = value
    for module, biases in attention.items():
        out[f"{module}.attn.in_proj_bias"] = torch.cat([biases["q"], biases["k"], biases["v"]])
    out[LABEL_EMBEDDING_KEY] = torch.cat([state_dict[name] for name, _ in LABEL_EMBEDDING_ROWS], dim=0)
    return out


def _inverse_backbone_key(key: str) -> str:
    key = "image_encoder." + key[len("backbone.") :]
    key = key.replace("ffn.layers.0.0", "mlp.lin1").replace("ffn.layers.1", "mlp.lin2")
    key = key.replace("channel_reduction", "neck")
    key = re.sub(r"\bln(\d)\b", r"norm\1", key)
    key = key.replace("patch_embed.projection.", "patch_embed.proj.")
    key = re.sub(r"^image_encoder\.layers\.", "image_encoder.blocks.", key)
    return key


def mmdet_to_sam_state_dict(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Invert [`sam_to_mmdet_state_dict`]: the release's mmdet layout back to the `segment_anything` layout.

    Keys outside the known prefixes are kept as they are, so that the strict load names them."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        if key.startswith("backbone."):
            out[_inverse_backbone_key(key)] = value
        elif key.startswith("decoder."):
            key = "mask_decoder.transformer." + key[len("decoder.") :]
            key = key.replace("mlp.layers.0.0", "mlp.lin1").replace("mlp.layers.1", "mlp.lin2")
            key = key.replace("post_norm", "norm_final_attn")
            found = re.match(r"(.*)\.attn\.(q|k|v)_proj_weight$", key)
            if found:
                out[f"{found.group(1)}.{found.group(2)}_proj.weight"] = value
                continue
            found = re.match(r"(.*)\.attn\.in_proj_bias$", key)
            if found:
                for name, chunk in zip("qkv", value.chunk(3)):
                    out[f"{found.group(1)}.{name}_proj.bias"] = chunk
                continue
            found = re.match(r"(.*)\.attn\.out_proj\.(weight|bias)$", key)
            if found:
                out[f"{found.group(1)}.out_proj.{found.group(2)}"] = value
                continue
            out[key] = value
        elif key.startswith("bbox_head."):
            out["mask_decoder." + key[len("bbox_head.") :]] = value
        elif key == LABEL_EMBEDDING_KEY:
            expected_rows = sum(rows for _, rows in LABEL_EMBEDDING_ROWS)
            if value.shape[0] != expected_rows:
                raise CheckpointError(
                    f"{LABEL_EMBEDDING_KEY} has {value.shape[0]} rows, expected {expected_rows} (no_mask_embed, "
                    "4 point embeddings, not_a_point_embed, 4 mask tokens, iou token)."
                )
            start = 0
            for name, rows in LABEL_EMBEDDING_ROWS:
                out[name] = value[start : start + rows].clone()
                start += rows
        else:
            out[key] = value
    return out


__all__ = ["sam_to_mmdet_state_dict", "mmdet_to_sam_state_dict", "LABEL_EMBEDDING_ROWS"]
