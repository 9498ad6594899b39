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
"""TinyViT image encoder in LiteMedSAM's layout, written without timm.

LiteMedSAM's variant of MobileSAM's TinyViT embeds patches with two 1x1 convolutions (stride 1) and keeps the last
patch merge at stride 1, so a 256 px image gives a 64x64 grid that SAM's neck turns into a 64x64x256 embedding.
Module names follow LiteMedSAM's `image_encoder.*` one-to-one (`convert/litemedsam.py` holds the renaming):
`Conv2d_BN.c/bn` -> `conv/batch_norm`, `patch_embed.seq.0/2` -> `conv1/conv2`, `norm` -> `layer_norm`, `neck.0..3`
-> `neck.conv1/layer_norm1/conv2/layer_norm2` (SAM's neck).
"""

import itertools

import torch
import torch.nn.functional as F
from torch import nn
from transformers import initialization as init
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.models.sam.modeling_sam import SamPreTrainedModel, SamVisionEncoderOutput, SamVisionNeck
from transformers.processing_utils import Unpack
from transformers.utils.generic import TransformersKwargs, merge_with_config_defaults
from transformers.utils.output_capturing import OutputRecorder, capture_outputs

from .configuration_ultrasam import UltraSamVisionConfig


def check_pixel_values(pixel_values, size: int) -> None:
    """SAM's encoder input check: pixels given, at the square input size of the config."""
    if pixel_values is None:
        raise ValueError("You have to specify pixel_values")
    if pixel_values.shape[-2:] != (size, size):
        raise ValueError(f"Input image size {tuple(pixel_values.shape[-2:])} doesn't match model ({size}*{size}).")


class UltraSamConv2dBatchNorm(nn.Module):
    """Bias-free convolution followed by batch norm (TinyViT's `Conv2d_BN`)."""

    def __init__(self, in_channels, out_channels, kernel_size=1, stride=1, padding=0, groups=1):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, groups=groups, bias=False)
        self.batch_norm = nn.BatchNorm2d(out_channels)

    def forward(self, hidden_states):
        return self.batch_norm(self.conv(hidden_states))


class UltraSamTinyVitPatchEmbeddings(nn.Module):
    def __init__(self, config: UltraSamVisionConfig):
        super().__init__()
        width = config.tiny_vit_embed_dims[0]
        self.num_channels = config.num_channels
        self.conv1 = UltraSamConv2dBatchNorm(config.num_channels, width // 2)
        self.activation = nn.GELU()
        self.conv2 = UltraSamConv2dBatchNorm(width // 2, width)

    def forward(self, pixel_values):
        if pixel_values.shape[1] != self.num_channels:
            raise ValueError(
                f"Expected {self.num_channels} channels, got pixel_values of shape {tuple(pixel_values.shape)}"
            )
        return self.conv2(self.activation(self.conv1(pixel_values)))


class UltraSamTinyVitMBConv(nn.Module):
    """Inverted residual block of the convolutional first stage."""

    def __init__(self, width, expand_ratio):
        super().__init__()
        hidden = int(width * expand_ratio)
        self.conv1 = UltraSamConv2dBatchNorm(width, hidden)
        self.conv2 = UltraSamConv2dBatchNorm(hidden, hidden, kernel_size=3, padding=1, groups=hidden)
        self.conv3 = UltraSamConv2dBatchNorm(hidden, width)
        self.activation = nn.GELU()

    def forward(self, hidden_states):
        residual = hidden_states
        hidden_states = self.activation(self.conv1(hidden_states))
        hidden_states = self.activation(self.conv2(hidden_states))
        hidden_states = self.conv3(hidden_states)
        return self.activation(hidden_states + residual)


class UltraSamTinyVitPatchMerging(nn.Module):
    """Channels-last (B, H*W, C) or channels-first input -> (B, H'*W', C') tokens."""

    def __init__(self, in_width, out_width, stride):
        super().__init__()
        self.conv1 = UltraSamConv2dBatchNorm(in_width, out_width)
        self.conv2 = UltraSamConv2dBatchNorm(
            out_width, out_width, kernel_size=3, stride=stride, padding=1, groups=out_width
        )
        self.conv3 = UltraSamConv2dBatchNorm(out_width, out_width)
        self.activation = nn.GELU()

    def forward(self, hidden_states, height, width):
        if hidden_states.ndim == 3:
            hidden_states = hidden_states.transpose(1, 2).reshape(hidden_states.shape[0], -1, height, width)
        hidden_states = self.activation(self.conv1(hidden_states))
        hidden_states = self.activation(self.conv2(hidden_states))
        hidden_states = self.conv3(hidden_states)
        return hidden_states.flatten(2).transpose(1, 2)


class UltraSamTinyVitAttention(nn.Module):
    """Window attention with a learned bias per head and per (|dy|, |dx|) offset inside the window."""

    def __init__(self, width, num_heads, window_size, layer_norm_eps):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = width // num_heads
        self.scale = self.head_dim**-0.5
        self.layer_norm = nn.LayerNorm(width, eps=layer_norm_eps)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

        self.window_size = window_size
        indices = self.bias_indices(window_size)
        self.attention_biases = nn.Parameter(torch.zeros(num_heads, window_size * window_size))  # one per (|dy|, |dx|)
        self.register_buffer("attention_bias_idxs", indices, persistent=False)

    @staticmethod
    def bias_indices(window_size: int) -> torch.Tensor:
        """(N, N) index of the bias shared by every pair of window positions with the same (|dy|, |dx|)."""
        points = list(itertools.product(range(window_size), range(window_size)))
        offsets, indices = {}, []
        for p1 in points:
            for p2 in points:
                indices.append(offsets.setdefault((abs(p1[0] - p2[0]), abs(p1[1] - p2[1])), len(offsets)))
        return torch.tensor(indices, dtype=torch.long).view(len(points), len(points))

    def forward(self, hidden_states):
        batch, tokens, _ = hidden_states.shape
        qkv = self.qkv(self.layer_norm(hidden_states)).view(batch, tokens, self.num_heads, 3 * self.head_dim)
        query, key, value = qkv.permute(0, 2, 1, 3).split(self.head_dim, dim=-1)
        bias = self.attention_biases[:, self.attention_bias_idxs]
        attention = ((query @ key.transpose(-2, -1)) * self.scale + bias).softmax(dim=-1)
        output = attention @ value
        return self.proj(output.transpose(1, 2).reshape(batch, tokens, -1)), attention

    def padded_window_forward(self, hidden_states, height, width):
        """`forward` on a (height, width) grid zero-padded at the bottom and right to one window, for the grid's
        tokens only. Every padding token is the zero token, so all share one key and one value: they enter as one
        extra key whose logit adds the log of the summed exp(bias) over the padded positions. Exact, on
        (window / grid)^2 times fewer tokens (the nano encoder's 16x16 grid in a 32x32 window: 4x). The attention it
        returns has that extra key as its last column."""
        batch, tokens, channels = hidden_states.shape
        window = self.window_size
        # window positions as Python lists, so that an exported graph holds them as constants
        real = [row * window + col for row in range(height) for col in range(width)]
        padding = [i for i in range(window * window) if i // window >= height or i % window >= width]
        real, padding = (torch.tensor(p, device=hidden_states.device) for p in (real, padding))
        bias_rows = self.attention_bias_idxs[real]  # the grid's tokens as queries
        qkv = self.qkv(self.layer_norm(hidden_states)).view(batch, tokens, self.num_heads, 3 * self.head_dim)
        query, key, value = qkv.permute(0, 2, 1, 3).split(self.head_dim, dim=-1)
        zero = self.qkv(self.layer_norm(hidden_states.new_zeros(1, 1, channels)))
        _, zero_key, zero_value = (
            zero.view(1, 1, self.num_heads, 3 * self.head_dim).transpose(1, 2).split(self.head_dim, dim=-1)
        )
        grid_bias = self.attention_biases[:, bias_rows[:, real]]
        padding_bias = torch.logsumexp(self.attention_biases[:, bias_rows[:, padding]], dim=-1)
        logits = torch.cat(
            [
                (query @ key.transpose(-2, -1)) * self.scale + grid_bias,
                (query @ zero_key.transpose(-2, -1)) * self.scale + padding_bias[..., None],
            ],
            dim=-1,
        )
        attention = logits.softmax(dim=-1)
        output = attention[..., :tokens] @ value + attention[..., tokens:] * zero_value
        return self.proj(output.transpose(1, 2).reshape(batch, tokens, -1)), attention


class UltraSamTinyVitMLP(nn.Module):
    def __init__(self, width, hidden, layer_norm_eps):
        super().__init__()
        self.layer_norm = nn.LayerNorm(width, eps=layer_norm_eps)
        self.fc1 = nn.Linear(width, hidden)
        self.fc2 = nn.Linear(hidden, width)
        self.activation = nn.GELU()

    def forward(self, hidden_states):
        return self.fc2(self.activation(self.fc1(self.layer_norm(hidden_states))))


class UltraSamTinyVitBlock(GradientCheckpointingLayer):
    def __init__(self, config: UltraSamVisionConfig, width, num_heads, window_size):
        super().__init__()
        self.window_size = window_size
        self.attn = UltraSamTinyVitAttention(width, num_heads, window_size, config.layer_norm_eps)
        self.mlp = UltraSamTinyVitMLP(width, int(width * config.mlp_ratio), config.layer_norm_eps)
        kernel = config.tiny_vit_local_conv_size
        self.local_conv = UltraSamConv2dBatchNorm(width, width, kernel_size=kernel, padding=kernel // 2, groups=width)

    def _window_attention(self, hidden_states, height, width):
        batch, tokens, channels = hidden_states.shape
        window = self.window_size
        if height == window and width == window:
            return self.attn(hidden_states)[0]
        if height <= window and width <= window:  # one window, part of it padding
            return self.attn.padded_window_forward(hidden_states, height, width)[0]
        grid = hidden_states.view(batch, height, width, channels)
        pad_bottom, pad_right = (window - height % window) % window, (window - width % window) % window
        grid = F.pad(grid, (0, 0, 0, pad_right, 0, pad_bottom))
        padded_h, padded_w = height + pad_bottom, width + pad_right
        rows, cols = padded_h // window, padded_w // window
        windows = grid.view(batch, rows, window, cols, window, channels).transpose(2, 3)
        windows = self.attn(windows.reshape(batch * rows * cols, window * window, channels))[0]
        grid = windows.view(batch, rows, cols, window, window, channels).transpose(2, 3)
        grid = grid.reshape(batch, padded_h, padded_w, channels)[:, :height, :width]
        return grid.reshape(batch, tokens, channels)

    def forward(self, hidden_states, height, width):
        batch, tokens, channels = hidden_states.shape
        hidden_states = hidden_states + self._window_attention(hidden_states, height, width)
        grid = hidden_states.transpose(1, 2).reshape(batch, channels, height, width)
        hidden_states = self.local_conv(grid).view(batch, channels, tokens).transpose(1, 2)
        return hidden_states + self.mlp(hidden_states)


class UltraSamTinyVitStage(nn.Module):
    """One stage: MBConv blocks (stage 0) or attention blocks, then an optional patch merge."""

    def __init__(self, config: UltraSamVisionConfig, index: int):
        super().__init__()
        width = config.tiny_vit_embed_dims[index]
        depth = config.tiny_vit_depths[index]
        if index == 0:
            self.blocks = nn.ModuleList(
                [UltraSamTinyVitMBConv(width, config.tiny_vit_mbconv_expand_ratio) for _ in range(depth)]
            )
        else:
            heads, window = config.tiny_vit_num_heads[index], config.tiny_vit_window_sizes[index]
            self.blocks = nn.ModuleList([UltraSamTinyVitBlock(config, width, heads, window) for _ in range(depth)])
        self.is_convolutional = index == 0
        self.downsample = None
        self.stride = 1
        if index < len(config.tiny_vit_embed_dims) - 1:
            self.stride = config.tiny_vit_downsample_strides[index]
            self.downsample = UltraSamTinyVitPatchMerging(width, config.tiny_vit_embed_dims[index + 1], self.stride)

    def forward(self, hidden_states, height, width):
        for block in self.blocks:
            hidden_states = block(hidden_states) if self.is_convolutional else block(hidden_states, height, width)
        if self.downsample is not None:
            hidden_states = self.downsample(hidden_states, height, width)
            height, width = (height - 1) // self.stride + 1, (width - 1) // self.stride + 1
        return hidden_states, height, width


class UltraSamTinyVitPreTrainedModel(SamPreTrainedModel):
    config: UltraSamVisionConfig
    _no_split_modules = ["UltraSamTinyVitBlock"]

    def _init_weights(self, module: nn.Module):
        super()._init_weights(module)
        if isinstance(module, UltraSamTinyVitAttention):
            init.zeros_(module.attention_biases)
            # non-persistent: rebuilt here because from_pretrained materialises buffers from the meta device
            init.copy_(module.attention_bias_idxs, module.bias_indices(module.window_size))


class UltraSamTinyVitEncoder(UltraSamTinyVitPreTrainedModel):
    """Drop-in replacement of `SamVisionEncoder`: pixels (B, 3, H, W) -> `last_hidden_state` (B, 256, H/4, W/4).

    `hidden_states` are the patch embedding (B, C, H, W) then each stage's output tokens (B, H*W, C), after its patch
    merge; `attentions` are those of each attention block, per window (B * windows, heads, N, N).
    """

    _can_record_outputs = {
        "hidden_states": OutputRecorder(UltraSamTinyVitStage, index=0),
        "attentions": OutputRecorder(UltraSamTinyVitAttention, index=1),
    }

    def __init__(self, config: UltraSamVisionConfig):
        super().__init__(config)
        self.patch_embed = UltraSamTinyVitPatchEmbeddings(config)
        self.layers = nn.ModuleList([UltraSamTinyVitStage(config, i) for i in range(len(config.tiny_vit_embed_dims))])
        self.neck = SamVisionNeck(config)
        self.gradient_checkpointing = False
        self.post_init()

    def get_input_embeddings(self):
        return self.patch_embed

    @merge_with_config_defaults
    @capture_outputs(tie_last_hidden_states=False)
    def forward(
        self, pixel_values: torch.Tensor | None = None, **kwargs: Unpack[TransformersKwargs]
    ) -> SamVisionEncoderOutput:
        check_pixel_values(pixel_values, self.config.image_size)
        hidden_states = self.patch_embed(pixel_values)
        height, width = hidden_states.shape[-2:]
        hidden_states, height, width = self._run_stages(hidden_states, height, width, 0, len(self.layers))
        return SamVisionEncoderOutput(last_hidden_state=self._neck(hidden_states, height, width))

    # ------------------------------------------------------------------------------------- split at a stage
    # `from_stage(k, up_to_stage(k, pixels))` is `forward(pixels)`, bit for bit: the early part (patch embedding +
    # stages 0..k-1) can run once and be cached while the late part (stages k.. + neck) trains on top of it.

    def _check_stage(self, stage: int) -> int:
        if isinstance(stage, bool) or not isinstance(stage, int) or not 0 <= stage <= len(self.layers):
            raise ValueError(f"stage must be an int in [0, {len(self.layers)}] (the number of stages), got {stage!r}")
        return stage

    def _run_stages(self, hidden_states, height, width, start: int, stop: int):
        for stage in self.layers[start:stop]:
            hidden_states, height, width = stage(hidden_states, height, width)
        return hidden_states, height, width

    def _neck(self, hidden_states, height, width):
        # SAM's neck takes channels-last features, like the ViT's.
        return self.neck(hidden_states.view(hidden_states.shape[0], height, width, -1))

    def modules_up_to_stage(self, stage: int) -> list[str]:
        """Names of the submodules `up_to_stage(stage, ...)` runs: `patch_embed` and `layers.0` .. `layers.{stage-1}`."""
        return ["patch_embed", *(f"layers.{index}" for index in range(self._check_stage(stage)))]

    def up_to_stage(self, stage: int, pixel_values: torch.Tensor) -> torch.Tensor:
        """The input of stage `stage` (0: the patch embedding; `len(layers)`: the last stage's output, the neck's
        input) as a channels-first feature map `(B, C, H, W)`."""
        self._check_stage(stage)
        check_pixel_values(pixel_values, self.config.image_size)
        hidden_states = self.patch_embed(pixel_values)
        height, width = hidden_states.shape[-2:]
        hidden_states, height, width = self._run_stages(hidden_states, height, width, 0, stage)
        if hidden_states.ndim == 3:  # tokens (B, H*W, C) -> (B, C, H, W)
            hidden_states = hidden_states.transpose(1, 2).reshape(hidden_states.shape[0], -1, height, width)
        return hidden_states

    def from_stage(self, stage: int, features: torch.Tensor) -> SamVisionEncoderOutput:
        """Stages `stage`.. and the neck on `features`, the `(B, C, H, W)` output of `up_to_stage(stage, ...)`."""
        self._check_stage(stage)
        if features.ndim != 4:
            raise ValueError(f"features must be (B, C, H, W) from up_to_stage, got shape {tuple(features.shape)}")
        height, width = features.shape[-2:]
        if stage == 0:
            hidden_states = features  # stage 0 is convolutional: channels-first, like the patch embedding
        elif stage < len(self.layers):
            hidden_states = features.flatten(2).transpose(1, 2)  # the tokens a patch merge returns, same strides
        else:  # the last stage's tokens are contiguous: same memory layout into the neck's convolution
            hidden_states = features.permute(0, 2, 3, 1).reshape(features.shape[0], height * width, -1)
        hidden_states, height, width = self._run_stages(hidden_states, height, width, stage, len(self.layers))
        return SamVisionEncoderOutput(last_hidden_state=self._neck(hidden_states, height, width))
