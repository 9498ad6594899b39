"""The official UltraSam release (`UltraSam.pth`, mmdet 3 / mmengine layout) -> `UltraSamModel` (`vit-b` preset,
one refinement pass).

Download: https://s3.unistra.fr/camma_public/github/ultrasam/UltraSam.pth

Three differences between the release's forward and SAM's are settled here (details in `docs/converters.md`):

- Decoder MLP identity. The release builds the two-way transformer's MLP as an mmcv `FFN`, whose `forward` returns
  `identity + out` unless `add_identity=False`, and the layer adds its own residual on top. With mmcv's default the
  release computes `norm3(2 q + mlp(q))`, which equals `norm3(q + mlp(q) / 2)` (LayerNorm is scale-invariant up to
  its eps), so `ffn_identity="add"` halves `mlp.lin2` of every decoder layer; `"none"` keeps the weights as they are.
  `"auto"` reads the training config stored by mmengine in `meta["cfg"]` and falls back to mmcv's default.
- LayerNorm eps: the release's decoder norms are mmcv `LN` (= `nn.LayerNorm`, eps 1e-5), its ViT norms 1e-6, as
  Meta's SAM and as `UltraSamConfig` (mask-decoder eps 1e-5, vision 1e-6): nothing to convert.
- Prompt coordinates: the release adds +0.5 to coordinates in its data pipeline, transformers' prompt encoder adds
  it inside; `UltraSamProcessor` therefore adds nothing.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import torch

from ..hub.repo_ids import SAM_REPOS
from ..models.errors import CheckpointError, UsageError
from .checkpoint_io import SourceInfo, read_checkpoint, save_converted, unwrap_state_dict
from .mmdet_layout import mmdet_to_sam_state_dict
from .sam import SAM_CITATION, convert_sam_state_dict, infer_sam_config, sam_processor

ULTRASAM_URL = "https://s3.unistra.fr/camma_public/github/ultrasam/UltraSam.pth"
FFN_IDENTITY_MODES = ("auto", "add", "none")
ULTRASAM_CITATION = (
    """@article{meyer2026ultrasam,
  title={UltraSam: A Foundation Model for Ultrasound using Large Open-Access Segmentation Datasets},
  author={Meyer, Adrien and Murali, Aditya and Zarin, Farahdiba and Mutter, Didier and Padoy, Nicolas},
  journal={International Journal of Computer Assisted Radiology and Surgery},
  year={2026},
  doi={10.1007/s11548-025-03517-8}
}
"""
    + SAM_CITATION
)


def ffn_identity_from_config_text(cfg_text: str | None) -> str | None:
    """`"none"` if the training config sets `add_identity=False` for the decoder FFN, `"add"` if it has an FFN
    config without it (mmcv's default is True), `None` if the text says nothing about it."""
    if not cfg_text:
        return None
    if re.search(r"add_identity\s*[=:]\s*False", cfg_text):
        return "none"
    if re.search(r"add_identity\s*[=:]\s*True", cfg_text) or re.search(r"ffn_cfg|feedforward_channels", cfg_text):
        return "add"
    return None


def resolve_ffn_identity(mode: str, meta) -> tuple[str, str]:
    """`(mode, reason)` with `mode` in {"add", "none"}."""
    if mode not in FFN_IDENTITY_MODES:
        raise UsageError(f"ffn_identity must be one of {FFN_IDENTITY_MODES}, got {mode!r}")
    if mode != "auto":
        return mode, "chosen explicitly"
    cfg_text = meta.get("cfg") if isinstance(meta, dict) else None
    found = ffn_identity_from_config_text(cfg_text if isinstance(cfg_text, str) else None)
    if found is not None:
        return found, "read from the training config stored in the checkpoint's meta['cfg']"
    warnings.warn(
        "The checkpoint carries no training config (meta['cfg']); assuming mmcv FFN's default add_identity=True for "
        "the decoder MLP. Pass ffn_identity='none' (--ffn-identity none) if the model was trained with "
        "add_identity=False.",
        UserWarning,
        stacklevel=3,
    )
    return "add", "mmcv FFN default (add_identity=True); no training config in the checkpoint"


def fold_ffn_identity(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Halve `mlp.lin2` of every two-way-transformer layer (segment_anything layout), turning the release's
    `norm3(2 q + mlp(q))` into SAM's `norm3(q + mlp'(q))` with `mlp' = mlp / 2`."""
    folded = dict(state_dict)
    names = [
        k for k in state_dict if re.match(r"mask_decoder\.transformer\.layers\.\d+\.mlp\.lin2\.(weight|bias)$", k)
    ]
    if not names:
        raise CheckpointError(
            "No decoder MLP (mask_decoder.transformer.layers.*.mlp.lin2) found to fold the FFN identity into."
        )
    for name in names:
        folded[name] = state_dict[name] * 0.5
    return folded


def convert_ultrasam_state_dict(
    state_dict, meta=None, ffn_identity: str = "auto", num_mask_refinements: int = 1, config=None
):
    """A loaded `UltraSamModel` from the release's mmdet-layout state dict; returns `(model, ffn_mode, reason)`.
    `config` defaults to the `vit-b` geometry read from the shapes, with `num_mask_refinements` passes."""
    sam_layout = mmdet_to_sam_state_dict(state_dict)
    has_decoder = any(re.match(r"mask_decoder\.transformer\.layers\.\d+\.mlp\.lin2\.", key) for key in sam_layout)
    if "image_encoder.patch_embed.proj.weight" not in sam_layout or not has_decoder:  # before any FFN warning
        raise CheckpointError(
            "Not an UltraSam (mmdet-layout) checkpoint: no image encoder patch embedding or decoder MLP "
            f"(first keys: {sorted(state_dict)[:5]}). Use --from sam, medsam or litemedsam for other layouts."
        )
    mode, reason = resolve_ffn_identity(ffn_identity, meta or {})
    if mode == "add":
        sam_layout = fold_ffn_identity(sam_layout)
    config = config or infer_sam_config(sam_layout, num_mask_refinements=num_mask_refinements)
    model = convert_sam_state_dict(sam_layout, config=config)
    return model, mode, reason


def convert_ultrasam(
    checkpoint: str | Path, out_dir: str | Path, ffn_identity: str = "auto", command: str | None = None
):
    """Convert the official `UltraSam.pth` to a folder (safetensors, config, processor config, model card)."""
    raw = read_checkpoint(checkpoint)
    meta = raw.get("meta") if isinstance(raw.get("meta"), dict) else {}
    state_dict = unwrap_state_dict(raw, source=checkpoint)
    model, mode, reason = convert_ultrasam_state_dict(state_dict, meta, ffn_identity)
    info = SourceInfo(
        source="ultrasam",
        title="UltraSam",
        checkpoint=Path(checkpoint).name,
        licence="other: the licence of the official weights (see https://github.com/CAMMA-public/UltraSam) applies",
        license_id="other",
        license_name="ultrasam-official-weights",
        license_link="https://github.com/CAMMA-public/UltraSam",
        base_model=SAM_REPOS["vit_b"],  # the release fine-tuned SAM ViT-B
        citation=ULTRASAM_CITATION,
        homepage=ULTRASAM_URL,
        intended_use="Promptable (point / box) segmentation of ultrasound images, research only; SAM ViT-B fine-tuned "
        "on US-43d with one cascaded refinement pass.",
        notes=[
            f"Decoder MLP identity: `{mode}` ({reason}). "
            + (
                "`mlp.lin2` of both decoder layers halved (exact up to LayerNorm eps)."
                if mode == "add"
                else "weights unchanged."
            ),
            "No +0.5 coordinate shift in preprocessing: transformers adds it inside the prompt encoder, as the "
            "release's pipeline does before its model.",
        ],
    )
    command = command or f"ultrasam convert --from ultrasam {checkpoint} --out {out_dir} --ffn-identity {ffn_identity}"
    save_converted(model, sam_processor("sam"), out_dir, info, command)
    return model
