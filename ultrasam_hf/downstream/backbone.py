"""The UltraSam image encoder as a transformers backbone, with a ViTDet-style simple feature pyramid.

The encoder (SAM's ViT or LiteMedSAM's TinyViT) gives single-scale features; the pyramid taps four of its hidden
states and resamples each to one of the strides 4/8/16/32 — transposed convolutions to go finer, identity, max
pooling (after strided convolutions when more than a factor 2) to go coarser — then projects it to `fpn_channels`
(1x1 conv, LayerNorm, 3x3 conv, LayerNorm, as ViTDet). The paper taps ViT-B blocks 2, 5, 8, 11; for TinyViT the taps
are the stage outputs. SAM's neck is not used (the pyramid replaces it).

Registered with `AutoConfig` / `AutoBackbone`, so `Mask2FormerConfig(backbone_config=UltraSamBackboneConfig(...))`
builds it through transformers' own `load_backbone`, and saved Mask2Former folders load again with
`from_pretrained` once `ultrasam_hf.downstream` is imported.
"""

import math

import torch
import torch.nn.functional as F
from huggingface_hub.dataclasses import strict
from torch import nn
from transformers import AutoBackbone, AutoConfig, PreTrainedConfig
from transformers.backbone_utils import BackboneConfigMixin, BackboneMixin
from transformers.modeling_outputs import BackboneOutput
from transformers.models.sam.modeling_sam import SamVisionEncoder

from ..models.configuration_ultrasam import UltraSamConfig, UltraSamVisionConfig
from ..models.modeling_tinyvit import UltraSamTinyVitEncoder
from ..models.modeling_ultrasam import UltraSamPreTrainedModel

PYRAMID_STRIDES = (4, 8, 16, 32)


def default_feature_indices(vision_config: UltraSamVisionConfig) -> list[int]:
    """ViT: four evenly spaced blocks (2, 5, 8, 11 for ViT-B, as the paper); TinyViT: the four stage outputs."""
    if vision_config.encoder_type == "tiny_vit":
        stages = len(vision_config.tiny_vit_embed_dims)
        return [min(i, stages - 1) for i in range(len(PYRAMID_STRIDES))]
    layers = vision_config.num_hidden_layers
    return [max(round((i + 1) * layers / 4) - 1, 0) for i in range(4)]


def tap_geometry(vision_config: UltraSamVisionConfig, index: int) -> tuple[int, int]:
    """(channels, stride) of encoder hidden state `index` (ViT block or TinyViT stage output, after its merge)."""
    if vision_config.encoder_type == "tiny_vit":
        dims, strides = vision_config.tiny_vit_embed_dims, vision_config.tiny_vit_downsample_strides
        merged = index < len(dims) - 1
        return dims[index + 1] if merged else dims[index], math.prod(strides[: index + 1])
    return vision_config.hidden_size, vision_config.patch_size


@strict
class UltraSamBackboneConfig(BackboneConfigMixin, PreTrainedConfig):
    r"""
    vision_config (`UltraSamVisionConfig` or `dict`):
        The encoder (`encoder_type="vit"` or `"tiny_vit"`); `image_size` is the backbone's input size.
    feature_indices (`list[int]`, *optional*):
        Encoder hidden state feeding each pyramid level, finest first: ViT block indices (0-based) or TinyViT stage
        indices. Defaults to `default_feature_indices(vision_config)`.
    fpn_channels (`int`, *optional*, defaults to 256):
        Channels of every pyramid level.
    out_features / out_indices: which of `stage1..stage4` (strides 4, 8, 16, 32) are returned; all by default.

    Example:

    ```python
    >>> import torch
    >>> from ultrasam_hf import UltraSamConfig
    >>> from ultrasam_hf.downstream import UltraSamBackbone, UltraSamBackboneConfig
    >>> config = UltraSamBackboneConfig.from_ultrasam_config(UltraSamConfig.from_preset("tiny-lite"), fpn_channels=32)
    >>> [tuple(f.shape) for f in UltraSamBackbone(config)(torch.rand(1, 3, 64, 64)).feature_maps]
    [(1, 32, 16, 16), (1, 32, 8, 8), (1, 32, 4, 4), (1, 32, 2, 2)]
    ```
    """

    model_type = "ultrasam_backbone"
    sub_configs = {"vision_config": UltraSamVisionConfig}

    vision_config: dict | UltraSamVisionConfig | None = None
    feature_indices: list[int] | tuple[int, ...] | None = None
    fpn_channels: int = 256
    initializer_range: float = 0.02
    _out_features: list[str] | None = None
    _out_indices: list[int] | None = None

    def __post_init__(self, **kwargs):
        if self.vision_config is None:
            self.vision_config = UltraSamVisionConfig()
        elif isinstance(self.vision_config, dict):
            self.vision_config = UltraSamVisionConfig(**self.vision_config)
        if self.feature_indices is None:
            self.feature_indices = default_feature_indices(self.vision_config)
        self.feature_indices = list(self.feature_indices)
        if len(self.feature_indices) != len(PYRAMID_STRIDES):
            raise ValueError(f"feature_indices needs {len(PYRAMID_STRIDES)} entries, got {self.feature_indices}")
        self.stage_names = [f"stage{i + 1}" for i in range(len(PYRAMID_STRIDES))]
        out_indices, out_features = kwargs.pop("out_indices", None), kwargs.pop("out_features", None)
        if out_indices is None and out_features is None:
            out_features = list(self.stage_names)  # the whole pyramid, as Mask2Former expects
        self.set_output_features_output_indices(out_indices=out_indices, out_features=out_features)
        super().__post_init__(**kwargs)

    @classmethod
    def from_ultrasam_config(cls, config: UltraSamConfig, image_size: int | None = None, **kwargs):
        """The backbone of an UltraSam model's encoder; `image_size` changes the input size (TinyViT any multiple of
        its stride; ViT interpolates its position embeddings when weights are loaded with `load_encoder_weights`)."""
        vision = config.vision_config.to_dict()
        if image_size is not None:
            vision["image_size"] = image_size
        for key in ("model_type", "transformers_version"):
            vision.pop(key, None)
        return cls(vision_config=UltraSamVisionConfig(**vision), **kwargs)


def _layer_norm_2d(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(1, channels)  # LayerNorm over channels of a (B, C, H, W) map, as ViTDet's LayerNorm2d


class UltraSamPyramidLevel(nn.Module):
    """Resample one encoder feature map from `in_stride` to `out_stride`, then project it to `out_channels`."""

    def __init__(self, in_channels: int, in_stride: int, out_stride: int, out_channels: int):
        super().__init__()
        layers, channels = [], in_channels
        if out_stride < in_stride:  # finer: 2x transposed convolutions (ViTDet's scale 4 / 2)
            steps = int(math.log2(in_stride // out_stride))
            for step in range(steps):
                width = max(channels // 2, out_channels // 2, 1)
                layers.append(nn.ConvTranspose2d(channels, width, kernel_size=2, stride=2))
                if step < steps - 1:
                    layers += [_layer_norm_2d(width), nn.GELU()]
                channels = width
        elif out_stride > in_stride:  # coarser: strided convolutions, then ViTDet's max pool for the last factor 2
            steps = int(math.log2(out_stride // in_stride))
            for _ in range(steps - 1):
                layers += [nn.Conv2d(channels, channels, kernel_size=3, stride=2, padding=1), _layer_norm_2d(channels), nn.GELU()]
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        self.resample = nn.Sequential(*layers)
        self.proj_in = nn.Conv2d(channels, out_channels, kernel_size=1, bias=False)
        self.layer_norm1 = _layer_norm_2d(out_channels)
        self.conv = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=False)
        self.layer_norm2 = _layer_norm_2d(out_channels)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        features = self.resample(features)
        return self.layer_norm2(self.conv(self.layer_norm1(self.proj_in(features))))


class UltraSamBackbone(BackboneMixin, UltraSamPreTrainedModel):
    r"""
    UltraSam encoder + simple feature pyramid, returning `feature_maps` at strides 4, 8, 16, 32 (those selected by
    `out_features`), each `(batch, fpn_channels, image_size / stride, image_size / stride)`.
    """

    config_class = UltraSamBackboneConfig
    config: UltraSamBackboneConfig
    base_model_prefix = "ultrasam_backbone"
    main_input_name = "pixel_values"
    has_attentions = False

    def __init__(self, config: UltraSamBackboneConfig):
        super().__init__(config)
        vision = config.vision_config
        self.encoder = UltraSamTinyVitEncoder(vision) if vision.encoder_type == "tiny_vit" else SamVisionEncoder(vision)
        self.encoder.neck = nn.Identity()  # the pyramid replaces SAM's neck
        self.levels = nn.ModuleList(
            UltraSamPyramidLevel(*tap_geometry(vision, index), stride, config.fpn_channels)
            for index, stride in zip(config.feature_indices, PYRAMID_STRIDES)
        )
        self.num_features = [config.fpn_channels] * len(PYRAMID_STRIDES)
        self.post_init()

    def _taps(self, pixel_values: torch.Tensor) -> list[torch.Tensor]:
        """Channels-first encoder features, one per pyramid level."""
        vision = self.config.vision_config
        hidden_states = self.encoder(pixel_values, output_hidden_states=True).hidden_states
        taps = []
        for index in self.config.feature_indices:
            if vision.encoder_type == "tiny_vit":
                state = hidden_states[index]
                if state.ndim == 3:  # (B, H*W, C) tokens
                    stride = tap_geometry(vision, index)[1]
                    height, width = pixel_values.shape[-2] // stride, pixel_values.shape[-1] // stride
                    state = state.transpose(1, 2).reshape(state.shape[0], -1, height, width)
            else:
                state = hidden_states[index + 1].permute(0, 3, 1, 2)  # [0] is the patch embedding; channels-last
            taps.append(state)
        return taps

    def forward(self, pixel_values: torch.Tensor, output_hidden_states=None, output_attentions=None, return_dict=None, **kwargs):
        taps = self._taps(pixel_values)
        feature_maps = tuple(
            level(tap) for name, level, tap in zip(self.stage_names, self.levels, taps) if name in self.out_features
        )
        return BackboneOutput(feature_maps=feature_maps, hidden_states=tuple(taps) if output_hidden_states else None)

    def load_encoder_weights(self, state_dict: dict[str, torch.Tensor]) -> dict:
        """Load an UltraSam / SAM encoder state dict (keys relative to `vision_encoder.`, neck ignored), resizing ViT
        position embeddings and global-attention relative positions to this backbone's input size. Returns the
        result of `load_state_dict(strict=False)`."""
        own = self.encoder.state_dict()
        converted = {}
        for key, value in state_dict.items():
            if key.startswith("neck.") or key not in own:
                continue
            target = own[key]
            if value.shape != target.shape:
                if key == "pos_embed":  # (1, H, W, C)
                    value = F.interpolate(value.permute(0, 3, 1, 2), size=target.shape[1:3], mode="bicubic", align_corners=False)
                    value = value.permute(0, 2, 3, 1)
                elif key.endswith(("rel_pos_h", "rel_pos_w")):  # (2 * size - 1, head_dim)
                    value = F.interpolate(value.T[None], size=target.shape[0], mode="linear", align_corners=False)[0].T
                else:
                    raise ValueError(f"{key}: checkpoint shape {tuple(value.shape)} != backbone {tuple(target.shape)}")
            converted[key] = value
        return self.encoder.load_state_dict(converted, strict=False)

    @classmethod
    def from_ultrasam(cls, model_or_path, image_size: int | None = None, **config_kwargs) -> "UltraSamBackbone":
        """Backbone initialised from an UltraSam model (instance or folder), at `image_size` (default: the model's)."""
        if isinstance(model_or_path, (str, bytes)) or hasattr(model_or_path, "__fspath__"):
            from ..models.modeling_ultrasam import UltraSamModel

            model_or_path = UltraSamModel.from_pretrained(model_or_path)
        config = UltraSamBackboneConfig.from_ultrasam_config(model_or_path.config, image_size=image_size, **config_kwargs)
        backbone = cls(config)
        backbone.load_encoder_weights(model_or_path.vision_encoder.state_dict())
        return backbone


AutoConfig.register(UltraSamBackboneConfig.model_type, UltraSamBackboneConfig, exist_ok=True)
AutoBackbone.register(UltraSamBackboneConfig, UltraSamBackbone, exist_ok=True)

__all__ = ["UltraSamBackbone", "UltraSamBackboneConfig", "UltraSamPyramidLevel", "default_feature_indices", "PYRAMID_STRIDES"]
