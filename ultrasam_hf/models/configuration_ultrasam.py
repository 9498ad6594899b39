# Copyright 2025 The ultrasam-hf authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.
"""UltraSam configuration: SAM's configuration plus a TinyViT encoder option, the cascaded refinement pass,
the prompted-classification head and a record of how pixels must be preprocessed."""

import copy

from huggingface_hub.dataclasses import strict
from transformers.models.sam.configuration_sam import (
    SamConfig,
    SamMaskDecoderConfig,
    SamPromptEncoderConfig,
    SamVisionConfig,
)

ENCODER_TYPES = ("vit", "tiny_vit", "nano")
PREPROCESSING_MODES = ("sam", "litemedsam")
CLASSIFICATION_LOSSES = ("cross_entropy", "focal")
# Arguments of transformers' mask-generation pipeline that `UltraSamConfig.mask_generation` may set.
MASK_GENERATION_ARGUMENTS = (
    "points_per_batch",
    "points_per_crop",
    "crops_n_layers",
    "crop_overlap_ratio",
    "crop_n_points_downscale_factor",
    "pred_iou_thresh",
    "stability_score_thresh",
    "stability_score_offset",
    "mask_threshold",
    "crops_nms_thresh",
)


@strict
class UltraSamPromptEncoderConfig(SamPromptEncoderConfig):
    model_type = "ultrasam_prompt_encoder"


@strict
class UltraSamMaskDecoderConfig(SamMaskDecoderConfig):
    r"""
    layer_norm_eps (`float`, *optional*, defaults to 1e-5):
        Epsilon of the two-way transformer's LayerNorms. Meta's SAM (and so MedSAM, LiteMedSAM and the UltraSam
        release) uses PyTorch's default 1e-5 there, where transformers' SAM uses 1e-6.
    """

    model_type = "ultrasam_mask_decoder"
    layer_norm_eps: float = 1e-5


@strict
class UltraSamVisionConfig(SamVisionConfig):
    r"""
    initializer_range (`float`, *optional*, defaults to 0.02):
        Standard deviation of the encoder's random initialisation (SAM's config uses 1e-10).
    encoder_type (`str`, *optional*, defaults to `"vit"`):
        `"vit"` for SAM's ViT (all `SamVisionConfig` fields apply) or `"tiny_vit"` for the LiteMedSAM TinyViT, whose
        stage geometry is given by the `tiny_vit_*` fields. For TinyViT, `hidden_size` is the width of the last stage
        (the features before the neck) and `patch_size` the total stride from pixels to the embedding grid.
    tiny_vit_embed_dims, tiny_vit_depths, tiny_vit_num_heads, tiny_vit_window_sizes (`list[int]`):
        Width, number of blocks, attention heads and window size of each TinyViT stage (stage 0 is convolutional:
        its heads and window are unused).
    tiny_vit_downsample_strides (`list[int]`):
        Stride of the patch-merging layer after each stage but the last (LiteMedSAM keeps the last merge at stride 1
        so that a 256 px input gives a 64x64 embedding).
    tiny_vit_mbconv_expand_ratio (`float`), tiny_vit_local_conv_size (`int`):
        Expansion of the MBConv blocks of stage 0 and kernel of the depth-wise convolution between attention and MLP
        (also used by the `nano` encoder).
    nano_embed_dims, nano_depths (`list[int]`), nano_num_heads (`int`):
        `encoder_type="nano"` (the distillation student of `lite`, `modeling_nano.py`): width and number of blocks at
        strides 4 (MBConv), 8 (MBConv) and 16 (global attention, `nano_num_heads` heads). `hidden_size` is set to
        the last width (the features before the neck, as for TinyViT).
    """

    model_type = "ultrasam_vision_model"

    # transformers' SAM uses 1e-10 here, which leaves a randomly initialised encoder nearly dead; pretrained weights
    # overwrite it anyway, so start from a trainable scale.
    initializer_range: float = 0.02
    encoder_type: str = "vit"
    tiny_vit_embed_dims: list[int] | tuple[int, ...] = (64, 128, 160, 320)
    tiny_vit_depths: list[int] | tuple[int, ...] = (2, 2, 6, 2)
    tiny_vit_num_heads: list[int] | tuple[int, ...] = (2, 4, 5, 10)
    tiny_vit_window_sizes: list[int] | tuple[int, ...] = (7, 7, 14, 7)
    tiny_vit_downsample_strides: list[int] | tuple[int, ...] = (2, 2, 1)
    tiny_vit_mbconv_expand_ratio: float = 4.0
    tiny_vit_local_conv_size: int = 3
    nano_embed_dims: list[int] | tuple[int, ...] = (48, 96, 160)
    nano_depths: list[int] | tuple[int, ...] = (1, 2, 2)
    nano_num_heads: int = 5

    def __post_init__(self, **kwargs):
        if self.encoder_type not in ENCODER_TYPES:
            raise ValueError(f"encoder_type must be one of {ENCODER_TYPES}, got {self.encoder_type!r}")
        if self.encoder_type == "tiny_vit":
            stages = len(self.tiny_vit_embed_dims)
            for name in ("tiny_vit_depths", "tiny_vit_num_heads", "tiny_vit_window_sizes"):
                if len(getattr(self, name)) != stages:
                    raise ValueError(f"{name} needs {stages} entries (one per stage), got {getattr(self, name)}")
            if len(self.tiny_vit_downsample_strides) != stages - 1:
                raise ValueError(
                    f"tiny_vit_downsample_strides needs {stages - 1} entries, got {self.tiny_vit_downsample_strides}"
                )
        if self.encoder_type == "nano":
            if len(self.nano_depths) != len(self.nano_embed_dims):
                raise ValueError(f"nano_depths needs {len(self.nano_embed_dims)} entries, got {self.nano_depths}")
            if self.nano_embed_dims[-1] % self.nano_num_heads:
                raise ValueError(f"nano_num_heads={self.nano_num_heads} must divide {self.nano_embed_dims[-1]}")
            self.hidden_size = self.nano_embed_dims[-1]
        super().__post_init__(**kwargs)


@strict
class UltraSamConfig(SamConfig):
    r"""
    num_mask_refinements (`int`, *optional*, defaults to 0):
        Number of cascaded decoder passes after the first one. UltraSam uses 1: the second pass takes the first
        pass's low-resolution logits as mask prompt (and, at inference, the box of the first-pass mask instead of
        point prompts). With 0 the model is exactly `SamModel`.
    preprocessing (`str`, *optional*, defaults to `"sam"`):
        How the checkpoint expects its pixels: `"sam"` (ImageNet mean/std after resizing the long side and padding)
        or `"litemedsam"` (long side resized, min-max to [0, 1], padded). `UltraSamProcessor` follows it.
    preset (`str`, *optional*):
        Name of the preset the configuration was made from, for the record.
    classifier_hidden_size (`int`, *optional*, defaults to 256):
        Hidden width of the prompted-classification MLP.
    classification_loss (`str`, *optional*, defaults to `"cross_entropy"`):
        `"cross_entropy"` (one class per prompt) or `"focal"` (multi-label sigmoid focal loss, as the paper).
    multimask_output_default (`bool`, *optional*, defaults to `True`):
        What the checkpoint was trained to output: `True` (SAM) for the three multimask outputs, `False` for a
        checkpoint trained on the single-mask output only (its other mask tokens are untrained).
        `UltraSamPredictor.predict` uses it when `multimask_output` is not given, and so do `ultrasam segment` and
        `ultrasam demo`, and so does the automatic mask generation of `pipeline("mask-generation")`.
    mask_generation (`dict`, *optional*):
        This checkpoint's settings of automatic mask generation (`pipeline("mask-generation")` on a saved folder, the
        Hub widget): any of the pipeline's arguments in `MASK_GENERATION_ARGUMENTS` (`points_per_crop` is the number
        of grid points per side). Arguments given to the pipeline win; `None` keeps transformers' SAM defaults.

    Example:

    ```python
    >>> from ultrasam_hf import UltraSamConfig, UltraSamModel
    >>> model = UltraSamModel(UltraSamConfig.from_preset("lite"))
    ```
    """

    model_type = "ultrasam"
    sub_configs_defaults = {
        "prompt_encoder_config": UltraSamPromptEncoderConfig,
        "mask_decoder_config": UltraSamMaskDecoderConfig,
        "vision_config": UltraSamVisionConfig,
    }

    num_mask_refinements: int = 0
    preprocessing: str = "sam"
    preset: str | None = None
    classifier_hidden_size: int = 256
    classification_loss: str = "cross_entropy"
    multimask_output_default: bool = True
    mask_generation: dict | None = None

    def __post_init__(self, **kwargs):
        if self.preprocessing not in PREPROCESSING_MODES:
            raise ValueError(f"preprocessing must be one of {PREPROCESSING_MODES}, got {self.preprocessing!r}")
        if self.classification_loss not in CLASSIFICATION_LOSSES:
            raise ValueError(
                f"classification_loss must be one of {CLASSIFICATION_LOSSES}, got {self.classification_loss!r}"
            )
        if self.num_mask_refinements < 0:
            raise ValueError(f"num_mask_refinements must be >= 0, got {self.num_mask_refinements}")
        unknown = sorted(set(self.mask_generation or {}) - set(MASK_GENERATION_ARGUMENTS))
        if unknown:
            raise ValueError(f"mask_generation has unknown arguments {unknown}; allowed: {MASK_GENERATION_ARGUMENTS}")
        super().__post_init__(**kwargs)

    @classmethod
    def from_preset(cls, name: str, **overrides) -> "UltraSamConfig":
        """Build one of the named variants (`vit-b`, `lite`, `nano`, `tiny`, `tiny-lite`); `overrides` set top-level
        fields."""
        if name not in PRESETS:
            raise ValueError(f"Unknown UltraSam preset {name!r}; choose one of {sorted(PRESETS)}")
        kwargs = copy.deepcopy(PRESETS[name])
        kwargs.update(overrides)
        return cls(preset=name, **kwargs)


# Presets. `vit-b` is the paper's model: transformers' SAM ViT-B defaults at 1024 px with one refinement pass.
# `lite` is LiteMedSAM's geometry (TinyViT, 256 px -> 64x64x256). The two tiny ones keep tests fast.
_SAM_VIT_B = {
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "global_attn_indexes": [2, 5, 8, 11],
}
PRESETS = {
    "vit-b": {
        "vision_config": _SAM_VIT_B,
        "num_mask_refinements": 1,
        "preprocessing": "sam",
    },
    "lite": {
        "vision_config": {
            "encoder_type": "tiny_vit",
            "image_size": 256,
            "patch_size": 4,
            "hidden_size": 320,
            "layer_norm_eps": 1e-5,  # TinyViT's nn.LayerNorm defaults; the neck keeps SAM's 1e-6
        },
        "prompt_encoder_config": {"image_size": 256, "patch_size": 4},
        "num_mask_refinements": 0,
        "preprocessing": "litemedsam",
    },
    # the student for distilling `lite` (random weights; trained: ultrasam-nano-us): same prompt encoder, decoder and
    # embedding, a ~10x cheaper encoder
    "nano": {
        "vision_config": {
            "encoder_type": "nano",
            "image_size": 256,
            "patch_size": 4,
            "layer_norm_eps": 1e-5,
        },
        "prompt_encoder_config": {"image_size": 256, "patch_size": 4},
        "num_mask_refinements": 0,
        "preprocessing": "litemedsam",
    },
    "tiny": {
        "vision_config": {
            "image_size": 64,
            "patch_size": 8,
            "hidden_size": 96,
            "output_channels": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "window_size": 4,
            "global_attn_indexes": [1],
            "num_pos_feats": 16,
        },
        "prompt_encoder_config": {"hidden_size": 32, "image_size": 64, "patch_size": 8, "mask_input_channels": 8},
        "mask_decoder_config": {
            "hidden_size": 32,
            "mlp_dim": 64,
            "num_attention_heads": 2,
            "iou_head_hidden_dim": 32,
        },
        "num_mask_refinements": 1,
        "preprocessing": "sam",
        "classifier_hidden_size": 32,
    },
    "tiny-lite": {
        "vision_config": {
            "encoder_type": "tiny_vit",
            "image_size": 64,
            "patch_size": 4,
            "hidden_size": 48,
            "output_channels": 32,
            "num_pos_feats": 16,
            "tiny_vit_embed_dims": [16, 32, 40, 48],
            "tiny_vit_depths": [1, 1, 2, 1],
            "tiny_vit_num_heads": [1, 2, 2, 2],
            "tiny_vit_window_sizes": [4, 4, 8, 4],
        },
        "prompt_encoder_config": {"hidden_size": 32, "image_size": 64, "patch_size": 4, "mask_input_channels": 8},
        "mask_decoder_config": {
            "hidden_size": 32,
            "mlp_dim": 64,
            "num_attention_heads": 2,
            "iou_head_hidden_dim": 32,
        },
        "num_mask_refinements": 0,
        "preprocessing": "litemedsam",
        "classifier_hidden_size": 32,
    },
}

__all__ = [
    "UltraSamConfig",
    "UltraSamMaskDecoderConfig",
    "UltraSamPromptEncoderConfig",
    "UltraSamVisionConfig",
    "MASK_GENERATION_ARGUMENTS",
    "PRESETS",
]
