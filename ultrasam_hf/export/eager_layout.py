"""The split decoder (`cached_decoder.py`) laid out for PyTorch's eager CPU kernels: the same function, its tensors in
the orders those kernels run fastest. The backends `pytorch` and `pytorch-bf16` run it; ONNX graphs keep
`PromptSideGraph`'s layout, which ONNX Runtime runs faster (this layout exported took 14.5 against 13.6 ms).

What differs, measured on 2 threads of an AMX Xeon (`docs/decoder_benchmark.md`):
- Softmaxes over the few prompt tokens run with the image positions innermost, `(K, h, T, P)` over `T`: over a last
  axis of 7 PyTorch's softmax took 1.8 ms (float32), over the tokens axis of this layout 0.09 ms.
- Products with the `(P, C)` image features take them untransposed, `x @ q^T` and then the small `(P, h*T)` result
  transposed: for a transposed image operand, bfloat16 matrix products copy it first (1.2 ms against 0.09 ms).
- Each transposed convolution of the upscaling is one matrix product (columns `(dy, dx, C_out)`), not one per output
  row offset, and the hypernetwork product takes the pixels untransposed, `pixels @ hyper_in^T`: the lite model's
  upscaling of one mask took 2.2 instead of 3.3 ms in bfloat16 (3.9 instead of 4.1 ms in float32; with all four
  masks, 4.6 instead of 4.4 ms).
"""

import torch
from torch.nn import functional as F

from .cached_decoder import ImageSideGraph, PromptSideGraph, _heads, _merge, _split


def tokens_attend_cached_image(attention, tokens, image_keys, image_values):
    """`cached_decoder.tokens_attend_cached_image` with the scaling on the query (the smaller operand)."""
    query = _split(attention.q_proj(tokens), attention.num_attention_heads) * attention.scaling  # (K, h, T, d)
    return attention.out_proj(_merge(torch.softmax(query @ image_keys, dim=-1) @ image_values))


def tokens_attend_image(attention, tokens, image, image_with_positional):
    """`cached_decoder.tokens_attend_image`, its logits computed as `x @ (q W_k)^T` and then transposed."""
    heads = attention.num_attention_heads
    objects, count = tokens.shape[:2]
    query = _split(attention.q_proj(tokens), heads) * attention.scaling  # (K, h, T, d)
    folded_query = torch.einsum("khtd,hdc->khtc", query, _heads(attention.k_proj.weight, heads))
    logits = image_with_positional @ folded_query.reshape(objects, heads * count, -1).transpose(1, 2)  # (K, P, hT)
    weights = torch.softmax(logits.transpose(1, 2), dim=-1)  # (K, h * T, P)
    pooled = (weights @ image).reshape(objects, heads, count, -1)  # weights sum to 1: the bias passes through
    values = torch.einsum("khtc,hdc->khtd", pooled, _heads(attention.v_proj.weight, heads))
    return attention.out_proj(_merge(values + attention.v_proj.bias.reshape(heads, 1, -1)))


def _image_update(attention, weights, tokens_values):
    """`cached_decoder._image_update` on weights `(K, h, T, P)`."""
    heads = attention.num_attention_heads
    objects, count = tokens_values.shape[:2]
    values = _split(attention.v_proj(tokens_values), heads)  # (K, h, T, d)
    out_weight = _heads(attention.out_proj.weight.t(), heads)  # (h, d, C)
    projected = torch.einsum("khtd,hdc->khtc", values, out_weight) + attention.out_proj.bias / heads  # (K, h, T, C)
    return weights.flatten(1, 2).transpose(1, 2) @ projected.reshape(objects, heads * count, -1)


def image_attends_cached_tokens(attention, image_queries, tokens_keys, tokens_values):
    """`cached_decoder.image_attends_cached_tokens` on the image's projected queries laid out `(h, d, P)`."""
    keys = _split(attention.k_proj(tokens_keys), attention.num_attention_heads) * attention.scaling  # (K, h, T, d)
    weights = torch.softmax(keys @ image_queries, dim=2)  # (K, h, T, P): over the tokens, positions innermost
    return _image_update(attention, weights, tokens_values)


def image_attends_tokens(attention, image_with_positional, tokens_keys, tokens_values):
    """`cached_decoder.image_attends_tokens` with the positions innermost."""
    heads = attention.num_attention_heads
    objects, count = tokens_keys.shape[:2]
    keys = _split(attention.k_proj(tokens_keys), heads) * attention.scaling  # (K, h, T, d)
    folded_keys = torch.einsum("khtd,hdc->khtc", keys, _heads(attention.q_proj.weight, heads))
    offsets = torch.einsum("khtd,hd->kht", keys, attention.q_proj.bias.reshape(heads, -1))
    logits = image_with_positional @ folded_keys.reshape(objects, heads * count, -1).transpose(1, 2)  # (K, P, hT)
    logits = logits.transpose(1, 2).reshape(objects, heads, count, -1) + offsets[..., None]
    return _image_update(attention, torch.softmax(logits, dim=2), tokens_values)


class EagerImageSide(ImageSideGraph):
    """`ImageSideGraph` with the first layer's image-side queries laid out `(h, d, P)`, as `EagerPromptSide` takes
    them."""

    def forward(self, image_embeddings):
        image, keys, values, queries = super().forward(image_embeddings)
        return image, keys, values, queries.transpose(1, 2).contiguous()


class EagerPromptSide(PromptSideGraph):
    """`PromptSideGraph` laid out for PyTorch's eager kernels, on `EagerImageSide`'s tensors."""

    tokens_attend_cached_image = staticmethod(tokens_attend_cached_image)
    tokens_attend_image = staticmethod(tokens_attend_image)
    image_attends_cached_tokens = staticmethod(image_attends_cached_tokens)
    image_attends_tokens = staticmethod(image_attends_tokens)

    def __init__(self, model):
        super().__init__(model)
        for name, conv in (("conv1", self.mask_decoder.upscale_conv1), ("conv2", self.mask_decoder.upscale_conv2)):
            columns = conv.weight.detach().permute(0, 2, 3, 1).reshape(conv.in_channels, -1)  # (C_in, (dy, dx, C_out))
            self.register_buffer(f"{name}_columns", columns.contiguous())
            self.register_buffer(f"{name}_column_bias", conv.bias.detach().repeat(4))

    def upscale(self, image, hyper_in):
        """`PromptSideGraph.upscale` with one product per convolution: pixel rows in `(y, x, dy1, dx1, dy2, dx2)`
        order until the masks are reordered."""
        decoder, norm, side = self.mask_decoder, self.mask_decoder.upscale_layer_norm, self.side
        objects, channels = image.shape[0], norm.normalized_shape[0]
        hidden = torch.addmm(self.conv1_column_bias, image.reshape(-1, image.shape[-1]), self.conv1_columns)
        hidden = F.layer_norm(hidden.reshape(-1, channels), norm.normalized_shape, norm.weight, norm.bias, norm.eps)
        pixels = decoder.activation(
            torch.addmm(self.conv2_column_bias, decoder.activation(hidden), self.conv2_columns)
        )
        masks = pixels.reshape(objects, -1, hyper_in.shape[-1]) @ hyper_in.transpose(1, 2)  # (K, s * s * 16, M)
        # (K, y, x, dy1, dx1, dy2, dx2, M) -> (K, M), rows 4y + 2 dy1 + dy2, columns 4x + 2 dx1 + dx2
        masks = masks.reshape(objects, side, side, 2, 2, 2, 2, -1).permute(0, 7, 1, 3, 5, 2, 4, 6)
        return masks.reshape(objects, -1, 4 * side, 4 * side)


__all__ = ["EagerImageSide", "EagerPromptSide"]
