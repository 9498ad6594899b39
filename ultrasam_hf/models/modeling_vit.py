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
"""UltraSam's ViT (`vit-b`): SAM's `SamVisionEncoder`, with one change to its SDPA attention.

SAM adds a decomposed relative-position bias to every attention logit: `rel_h[q, key_row] + rel_w[q, key_col]`.
transformers' `SamVisionSdpaAttention` materializes it as an `(heads, N, N)` mask (for a global block at 1024 px,
12 x 4,096 x 4,096: 400 MB per image in bfloat16), which also bars SDPA's flash kernel. The bias is a dot product
too: with the query extended by its `rel_h` and `rel_w` rows and the key by the one-hot codes of its row and column,

    (scale * q) . k + rel_h[q, key_row] + rel_w[q, key_col] = [scale * q, rel_h, rel_w] . [k, onehot(row), onehot(col)]

so SDPA runs without a mask on head dimension 64 + H + W (92 for a 14x14 window, 192 for a 64x64 global block).
The same logits up to rounding, no bias in memory, and SDPA's fused kernels: on GPUs flash in bfloat16 / float16
(memory-efficient in float32), and on the CPU its flash kernel, which took a whole ViT-B encode from 7.4 to 6.4 s in
float32 and from 3.5 to 1.7 s in bfloat16 (2 threads of an AMX Xeon, `docs/encoder_benchmark.md`).
"""

import torch
import torch.nn.functional as F
from transformers.models.sam.modeling_sam import SamVisionEncoder, SamVisionSdpaAttention


class UltraSamVisionSdpaAttention(SamVisionSdpaAttention):
    """`SamVisionSdpaAttention` with the relative-position bias folded into queries and keys (see the module
    docstring)."""

    fold = True  # False: transformers' masked product (tests and benchmarks compare the two)

    def forward(self, hidden_states: torch.Tensor, output_attentions=False):
        # ONNX Runtime has no fused attention for the folded product: the masked one ran a ViT-B encode in 4.8
        # against 6.3 s there, so exported graphs keep it.
        exporting = torch.onnx.is_in_onnx_export()
        if output_attentions or exporting or not (self.use_rel_pos and self.fold):
            return super().forward(hidden_states, output_attentions)
        batch_size, height, width, _ = hidden_states.shape
        heads, tokens = self.num_attention_heads, height * width
        query, key, value = (
            self.qkv(hidden_states).reshape(batch_size, tokens, 3, heads, -1).permute(2, 0, 3, 1, 4).unbind(0)
        )
        head_dim = query.shape[-1]
        query_aug, key_aug = self.fold_relative_positions(query, key, height, width)
        # Rounded up to a multiple of 8, as the fused kernels ask (`(n + 7) // 8`: traced sizes divide like ONNX's
        # truncating Div, which rounds `-n // 8` the wrong way).
        folded_dim = (query_aug.shape[-1] + 7) // 8 * 8
        query_aug = F.pad(query_aug, (0, folded_dim - query_aug.shape[-1]))
        key_aug = F.pad(key_aug, (0, folded_dim - key_aug.shape[-1]))
        # Flash kernels (CUDA in 16-bit dtypes; the CPU's only fused kernel) take one head dimension for q, k and v,
        # so the values are padded to it; CUDA's memory-efficient kernel (float32) takes them as they are.
        if not (query.device.type == "cuda" and query.dtype == torch.float32):
            value = F.pad(value, (0, folded_dim - head_dim))
        attn_output = F.scaled_dot_product_attention(query_aug, key_aug, value, scale=1.0)[..., :head_dim]
        attn_output = attn_output.reshape(batch_size, heads, height, width, head_dim)
        attn_output = attn_output.permute(0, 2, 3, 1, 4).reshape(batch_size, height, width, -1)
        return self.proj(attn_output), None

    def fold_relative_positions(self, query, key, height: int, width: int):
        """`(query, key)` of shape `(B, heads, H*W, head_dim)` -> the extended `(B, heads, H*W, head_dim + H + W)`
        pair whose plain dot product is SAM's scaled logit plus its decomposed relative-position bias."""
        batch_size, heads, tokens, head_dim = query.shape
        rel_pos_h = self.get_rel_pos(height, height, self.rel_pos_h).to(query.dtype)  # (H, H, head_dim)
        rel_pos_w = self.get_rel_pos(width, width, self.rel_pos_w).to(query.dtype)  # (W, W, head_dim)
        grid_query = query.reshape(batch_size, heads, height, width, head_dim)
        rel_h = torch.einsum("bnhwc,hkc->bnhwk", grid_query, rel_pos_h).reshape(batch_size, heads, tokens, height)
        rel_w = torch.einsum("bnhwc,wkc->bnhwk", grid_query, rel_pos_w).reshape(batch_size, heads, tokens, width)
        rows = torch.eye(height, dtype=key.dtype, device=key.device).repeat_interleave(width, dim=0)  # (H*W, H)
        cols = torch.eye(width, dtype=key.dtype, device=key.device).repeat(height, 1)  # (H*W, W)
        query_aug = torch.cat([query * self.scale, rel_h, rel_w], dim=-1)
        key_aug = torch.cat([key, rows.expand(batch_size, heads, -1, -1), cols.expand(batch_size, heads, -1, -1)], -1)
        return query_aug, key_aug


class UltraSamVisionEncoder(SamVisionEncoder):
    """`SamVisionEncoder` whose SDPA attention layers are `UltraSamVisionSdpaAttention` (the same parameters and names;
    `attn_implementation="eager"` keeps SAM's eager attention)."""

    def __init__(self, config):
        super().__init__(config)
        for layer in self.layers:
            if type(layer.attn) is SamVisionSdpaAttention:
                # Same parameters, only `forward` differs: retyping keeps the module as SAM initialized it (and the
                # random stream as it was, so seeded models stay the same).
                layer.attn.__class__ = UltraSamVisionSdpaAttention


__all__ = ["UltraSamVisionSdpaAttention", "UltraSamVisionEncoder"]
