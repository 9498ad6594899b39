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
"""The UltraSam image encoder as a transformers backbone, with a ViTDet-style simple feature pyramid.

The encoder (SAM's ViT or LiteMedSAM's TinyViT) gives single-scale features; the pyramid taps four of its hidden
states and resamples each to one of the strides 4/8/16/32 — transposed convolutions to go finer, identity, max
pooling (after strided convolutions when more than a factor 2) to go coarser — then projects it to `fpn_channels`
(1x1 conv, LayerNorm, 3x3 conv, LayerNorm, as ViTDet; the LayerNorms are SAM's channels-first `SamLayerNorm`). The
paper taps ViT-B blocks 2, 5, 8, 11; for TinyViT the taps are the stage outputs. SAM's neck is not used (the pyramid
replaces it).

`ultrasam_hf.registration` registers it with `AutoConfig` / `AutoBackbone`, so
`Mask2FormerConfig(backbone_config=UltraSamBackboneConfig(...))` builds it through transformers' own `load_backbone`,
and saved Mask2Former folders load again with `from_pretrained` once `ultrasam_hf` is imported.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn
from transformers.backbone_utils import BackboneMixin
from transformers.modeling_outputs import BackboneOutput
from transformers.models.sam.modeling_sam import SamLayerNorm
from transformers.processing_utils import Unpack
from transformers.utils.generic import TransformersKwargs, can_return_tuple

from .configuration_ultrasam import UltraSamVisionConfig
from .configuration_ultrasam_backbone import PYRAMID_STRIDES, UltraSamBackboneConfig
from .modeling_tinyvit import UltraSamTinyVitEncoder
from .modeling_ultrasam import UltraSamPreTrainedModel
from .modeling_vit import UltraSamVisionEncoder


def tap_geometry(vision_config: UltraSamVisionConfig, index: int) -> tuple[int, int]:
    """(channels, stride) of encoder hidden state `index` (ViT block or TinyViT stage output, after its merge)."""
    if vision_config.encoder_type == "tiny_vit":
        dims, strides = vision_config.tiny_vit_embed_dims, vision_config.tiny_vit_downsample_strides
        merged = index < len(dims) - 1
        return dims[index + 1] if merged else dims[index], math.prod(strides[: index + 1])
    return vision_config.hidden_size, vision_config.patch_size


def _layer_norm_2d(channels: int) -> SamLayerNorm:
    return SamLayerNorm(channels, data_format="channels_first")  # ViTDet's LayerNorm2d (eps 1e-6)


class UltraSamPyramidLevel(nn.Module):
    """Resample one encoder feature map from `in_stride` to `out_stride`, then project it to `out_channels`. A level
    that needs strided convolutions projects first, so that they run at `out_channels` (for lite's 320-channel stride-4
    taps, 25x fewer FLOPs than at the encoder's width)."""

    def __init__(self, in_channels: int, in_stride: int, out_stride: int, out_channels: int):
        super().__init__()
        layers, channels = [], in_channels
        self.project_first = out_stride > 2 * in_stride
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
            width = out_channels if self.project_first else channels
            for _ in range(steps - 1):
                layers += [
                    nn.Conv2d(width, width, kernel_size=3, stride=2, padding=1),
                    _layer_norm_2d(width),
                    nn.GELU(),
                ]
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        self.resample = nn.Sequential(*layers)
        self.proj_in = nn.Conv2d(channels, out_channels, kernel_size=1, bias=False)
        self.layer_norm1 = _layer_norm_2d(out_channels)
        self.conv = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=False)
        self.layer_norm2 = _layer_norm_2d(out_channels)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if self.project_first:
            features = self.resample(self.proj_in(features))
        else:
            features = self.proj_in(self.resample(features))
        return self.layer_norm2(self.conv(self.layer_norm1(features)))


class UltraSamBackbone(BackboneMixin, UltraSamPreTrainedModel):
    r"""
    UltraSam encoder + simple feature pyramid, returning `feature_maps` at strides 4, 8, 16, 32 (those selected by
    `out_features`), each `(batch, fpn_channels, image_size / stride, image_size / stride)`.
    """

    config_class = UltraSamBackboneConfig
    config: UltraSamBackboneConfig
    base_model_prefix = "ultrasam_backbone"
    main_input_name = "pixel_values"

    def __init__(self, config: UltraSamBackboneConfig):
        super().__init__(config)
        vision = config.vision_config
        self.encoder = (
            UltraSamTinyVitEncoder(vision) if vision.encoder_type == "tiny_vit" else UltraSamVisionEncoder(vision)
        )
        self.encoder.neck = nn.Identity()  # the pyramid replaces SAM's neck
        self.levels = nn.ModuleList(
            UltraSamPyramidLevel(*tap_geometry(vision, index), stride, config.fpn_channels)
            for index, stride in zip(config.feature_indices, PYRAMID_STRIDES)
        )
        self.num_features = [config.fpn_channels] * len(PYRAMID_STRIDES)
        self.post_init()

    def _taps(self, hidden_states: tuple[torch.Tensor, ...], pixel_values: torch.Tensor) -> list[torch.Tensor]:
        """Channels-first encoder features, one per pyramid level. `hidden_states[0]` is the patch embedding, then
        one per ViT block (channels-last) or per TinyViT stage (tokens)."""
        vision = self.config.vision_config
        taps = []
        for index in self.config.feature_indices:
            state = hidden_states[index + 1]
            if vision.encoder_type == "tiny_vit":  # (B, H*W, C) tokens
                stride = tap_geometry(vision, index)[1]
                height, width = pixel_values.shape[-2] // stride, pixel_values.shape[-1] // stride
                state = state.transpose(1, 2).reshape(state.shape[0], -1, height, width)
            else:
                state = state.permute(0, 3, 1, 2)
            taps.append(state)
        return taps

    @can_return_tuple
    def forward(self, pixel_values: torch.Tensor, **kwargs: Unpack[TransformersKwargs]) -> BackboneOutput:
        r"""
        Returns `feature_maps` (those of `out_features`); with `output_hidden_states`, `hidden_states` are the four
        encoder features the pyramid taps (channels-first); with `output_attentions`, the encoder's attentions.
        """
        output_hidden_states = kwargs.get("output_hidden_states", self.config.output_hidden_states)
        output_attentions = kwargs.get("output_attentions", self.config.output_attentions)
        encoder_outputs = self.encoder(pixel_values, output_hidden_states=True, output_attentions=output_attentions)
        taps = self._taps(encoder_outputs.hidden_states, pixel_values)
        feature_maps = self.pyramid(taps)
        return BackboneOutput(
            feature_maps=feature_maps,
            hidden_states=tuple(taps) if output_hidden_states else None,
            attentions=encoder_outputs.attentions if output_attentions else None,
        )

    def encoder_taps(self, pixel_values: torch.Tensor) -> list[torch.Tensor]:
        """The four channels-first encoder features the pyramid reads: what a frozen encoder computes once per image
        (`ultrasam_hf.downstream.instance` caches them and trains only `pyramid` and the head)."""
        hidden_states = self.encoder(pixel_values, output_hidden_states=True).hidden_states
        return self._taps(hidden_states, pixel_values)

    def pyramid(self, taps) -> tuple[torch.Tensor, ...]:
        """The pyramid levels on encoder taps: the `feature_maps` of `out_features`."""
        return tuple(
            level(tap) for name, level, tap in zip(self.stage_names, self.levels, taps) if name in self.out_features
        )

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
                    value = F.interpolate(
                        value.permute(0, 3, 1, 2), size=target.shape[1:3], mode="bicubic", align_corners=False
                    )
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
            from .modeling_ultrasam import UltraSamModel

            model_or_path = UltraSamModel.from_pretrained(model_or_path)
        config = UltraSamBackboneConfig.from_ultrasam_config(
            model_or_path.config, image_size=image_size, **config_kwargs
        )
        backbone = cls(config)
        backbone.load_encoder_weights(model_or_path.vision_encoder.state_dict())
        return backbone


__all__ = ["UltraSamBackbone", "UltraSamPyramidLevel"]
