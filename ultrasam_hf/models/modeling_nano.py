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
"""`nano` image encoder: the student architecture for distilling the lite (TinyViT) encoder (trained and shipped as
`ultrasam-nano-us`).

A conv-attention hybrid in the spirit of EfficientViT-SAM / RepViT-SAM / MobileSAM: a strided convolutional stem
to stride 4, inverted-residual (MBConv) stages at strides 8 and 16, global attention blocks at stride 16 (a 16x16
grid at 256 px, so attention is cheap), and a small FPN neck that brings strides 16 and 8 back to the stride-4 grid
and ends in depth-wise + point-wise convolutions, giving SAM's 64x64x256 embedding at 256 px. The TinyViT encoder
runs its first stage at full resolution (256x256x64, expanded 4x), which is where its CPU time goes; this one never
computes wider than 48 channels above stride 4.
"""

import torch
import torch.nn.functional as F
from torch import nn
from transformers.models.sam.modeling_sam import SamLayerNorm, SamVisionEncoderOutput
from transformers.processing_utils import Unpack
from transformers.utils.generic import TransformersKwargs, merge_with_config_defaults
from transformers.utils.output_capturing import OutputRecorder, capture_outputs

from .configuration_ultrasam import UltraSamVisionConfig
from .modeling_tinyvit import (
    UltraSamConv2dBatchNorm,
    UltraSamTinyVitBlock,
    UltraSamTinyVitMBConv,
    UltraSamTinyVitPreTrainedModel,
    check_pixel_values,
)


class UltraSamNanoDownsample(nn.Module):
    """Point-wise expansion, stride-2 depth-wise 3x3, point-wise projection (an MBConv without residual)."""

    def __init__(self, in_width, out_width, expand_ratio):
        super().__init__()
        hidden = int(in_width * expand_ratio)
        self.conv1 = UltraSamConv2dBatchNorm(in_width, hidden)
        self.conv2 = UltraSamConv2dBatchNorm(hidden, hidden, kernel_size=3, stride=2, padding=1, groups=hidden)
        self.conv3 = UltraSamConv2dBatchNorm(hidden, out_width)
        self.activation = nn.GELU()

    def forward(self, hidden_states):
        hidden_states = self.activation(self.conv1(hidden_states))
        hidden_states = self.activation(self.conv2(hidden_states))
        return self.conv3(hidden_states)


class UltraSamNanoStage(nn.Module):
    """A stride-2 downsample, then MBConv blocks (convolutional stage) or TinyViT attention blocks (last stage,
    whose window is the whole grid)."""

    def __init__(self, config: UltraSamVisionConfig, index: int):
        super().__init__()
        dims = config.nano_embed_dims
        self.downsample = UltraSamNanoDownsample(dims[index - 1], dims[index], config.tiny_vit_mbconv_expand_ratio)
        self.is_attention = index == len(dims) - 1
        depth = config.nano_depths[index]
        if self.is_attention:
            # the window is twice the stage's grid (a 32x32 window on 16x16 tokens at 256 px), as the shipped weights'
            # bias tables were trained; the block attends on the grid's tokens only (`padded_window_forward`)
            window = config.image_size // 2 ** (index + 1)
            blocks = [UltraSamTinyVitBlock(config, dims[index], config.nano_num_heads, window) for _ in range(depth)]
        else:
            blocks = [UltraSamTinyVitMBConv(dims[index], config.tiny_vit_mbconv_expand_ratio) for _ in range(depth)]
        self.blocks = nn.ModuleList(blocks)

    def forward(self, hidden_states):
        hidden_states = self.downsample(hidden_states)
        if not self.is_attention:
            for block in self.blocks:
                hidden_states = block(hidden_states)
            return hidden_states
        batch, channels, height, width = hidden_states.shape
        tokens = hidden_states.flatten(2).transpose(1, 2)
        for block in self.blocks:
            tokens = block(tokens, height, width)
        return tokens.transpose(1, 2).reshape(batch, channels, height, width)


class UltraSamNanoNeck(nn.Module):
    """FPN to the stride-4 grid: 1x1 lateral projections to `output_channels`, nearest 2x upsampling and sums, then
    a depth-wise 3x3 + point-wise 1x1 (SAM's neck has a dense 3x3 there, 9x the cost at 64x64x256)."""

    def __init__(self, config: UltraSamVisionConfig):
        super().__init__()
        width = config.output_channels
        self.lateral = nn.ModuleList([nn.Conv2d(dim, width, kernel_size=1) for dim in config.nano_embed_dims])
        self.depthwise = nn.Conv2d(width, width, kernel_size=3, padding=1, groups=width)
        self.pointwise = nn.Conv2d(width, width, kernel_size=1, bias=False)
        self.layer_norm1 = SamLayerNorm(width, data_format="channels_first")
        self.layer_norm2 = SamLayerNorm(width, data_format="channels_first")
        self.activation = nn.GELU()

    def forward(self, features):
        hidden_states = self.lateral[-1](features[-1])
        for lateral, feature in zip(self.lateral[-2::-1], features[-2::-1]):
            hidden_states = F.interpolate(hidden_states, scale_factor=2.0, mode="nearest") + lateral(feature)
        hidden_states = self.activation(self.layer_norm1(self.depthwise(hidden_states)))
        return self.layer_norm2(self.pointwise(hidden_states))


class UltraSamNanoEncoder(UltraSamTinyVitPreTrainedModel):
    """Drop-in replacement of `SamVisionEncoder`: pixels (B, 3, S, S) -> `last_hidden_state` (B, 256, S/4, S/4).
    `hidden_states` are the stem output (stride 4), then each stage's output (B, C, H, W)."""

    _can_record_outputs = {"hidden_states": OutputRecorder(UltraSamNanoStage)}

    def __init__(self, config: UltraSamVisionConfig):
        super().__init__(config)
        stem_width, width = config.nano_embed_dims[0] // 2, config.nano_embed_dims[0]
        self.stem = nn.Sequential(
            UltraSamConv2dBatchNorm(config.num_channels, stem_width, kernel_size=3, stride=2, padding=1),
            nn.GELU(),
            UltraSamConv2dBatchNorm(stem_width, stem_width, kernel_size=3, stride=2, padding=1, groups=stem_width),
            nn.GELU(),
            UltraSamConv2dBatchNorm(stem_width, width),
        )
        self.stem_blocks = nn.ModuleList(
            [UltraSamTinyVitMBConv(width, config.tiny_vit_mbconv_expand_ratio) for _ in range(config.nano_depths[0])]
        )
        self.layers = nn.ModuleList([UltraSamNanoStage(config, i) for i in range(1, len(config.nano_embed_dims))])
        self.neck = UltraSamNanoNeck(config)
        self.post_init()

    @merge_with_config_defaults
    @capture_outputs(tie_last_hidden_states=False)
    def forward(
        self, pixel_values: torch.Tensor | None = None, **kwargs: Unpack[TransformersKwargs]
    ) -> SamVisionEncoderOutput:
        check_pixel_values(pixel_values, self.config.image_size)
        hidden_states = self.stem(pixel_values)
        for block in self.stem_blocks:
            hidden_states = block(hidden_states)
        features = [hidden_states]
        for stage in self.layers:
            features.append(stage(features[-1]))
        return SamVisionEncoderOutput(last_hidden_state=self.neck(features))


__all__ = ["UltraSamNanoEncoder"]
