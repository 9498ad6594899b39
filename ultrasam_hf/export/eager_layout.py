"""The split decoder (`cached_decoder.py`) laid out for PyTorch's eager CPU kernels: the same function, its tensors in
the orders those kernels run fastest. The backends `pytorch` and `pytorch-bf16` run it; ONNX graphs keep
`PromptSideGraph`'s layout, which ONNX Runtime runs faster (this layout exported took 14.5 against 13.6 ms).

What differs, measured on 2 threads of an AMX Xeon (`docs/decoder_benchmark.md`):
- Softmaxes over the few prompt tokens run with the image positions innermost, `(K, h, T, P)` over `T`: over a last
  axis of 7 PyTorch's softmax took 1.8 ms (float32), over the tokens axis of this layout 0.09 ms.
- Products with the `(P, C)` image features take them untransposed, `x @ q^T` and then the small `(P, h*T)` result
  transposed: for a transposed image operand, bfloat16 matrix products copy it first (1.2 ms against 0.09 ms).
- The image-sized tensors may be bfloat16 while the prompt tokens stay float32 (`BFloat16PromptSide`): small operands
  are cast to the image's dtype before a product with the image, and the small results back.
- Each transposed convolution of the upscaling is one matrix product (columns `(dy, dx, C_out)`), not one per output
  row offset, and the hypernetwork product takes the pixels untransposed, `pixels @ hyper_in^T`: the lite model's
  upscaling of one mask took 2.2 instead of 3.3 ms in bfloat16 (3.9 instead of 4.1 ms in float32; with all four
  masks, 4.6 instead of 4.4 ms).
"""

import copy

import torch
from torch import nn
from torch.nn import functional as F

from .cached_decoder import ImageSideGraph, PromptSideGraph, _heads, _merge, _split


def tokens_attend_cached_image(attention, tokens, image_keys, image_values):
    """`cached_decoder.tokens_attend_cached_image` with the scaling on the query (the smaller operand)."""
    query = _split(attention.q_proj(tokens), attention.num_attention_heads) * attention.scaling  # (K, h, T, d)
    weights = torch.softmax(query.to(image_keys.dtype) @ image_keys, dim=-1)
    return attention.out_proj(_merge((weights @ image_values).to(tokens.dtype)))


def tokens_attend_image(attention, tokens, image, image_with_positional):
    """`cached_decoder.tokens_attend_image`, its logits computed as `x @ (q W_k)^T` and then transposed."""
    heads = attention.num_attention_heads
    objects, count = tokens.shape[:2]
    query = _split(attention.q_proj(tokens), heads) * attention.scaling  # (K, h, T, d)
    folded_query = torch.einsum("khtd,hdc->khtc", query, _heads(attention.k_proj.weight, heads))
    folded_query = folded_query.reshape(objects, heads * count, -1).to(image.dtype)
    logits = image_with_positional @ folded_query.transpose(1, 2)  # (K, P, h * T)
    weights = torch.softmax(logits.transpose(1, 2), dim=-1)  # (K, h * T, P)
    pooled = (weights @ image).to(tokens.dtype).reshape(objects, heads, count, -1)  # weights sum to 1: bias passes
    values = torch.einsum("khtc,hdc->khtd", pooled, _heads(attention.v_proj.weight, heads))
    return attention.out_proj(_merge(values + attention.v_proj.bias.reshape(heads, 1, -1)))


def _image_update(attention, weights, tokens_values):
    """`cached_decoder._image_update` on weights `(K, h, T, P)`."""
    heads = attention.num_attention_heads
    objects, count = tokens_values.shape[:2]
    values = _split(attention.v_proj(tokens_values), heads)  # (K, h, T, d)
    out_weight = _heads(attention.out_proj.weight.t(), heads)  # (h, d, C)
    projected = torch.einsum("khtd,hdc->khtc", values, out_weight) + attention.out_proj.bias / heads  # (K, h, T, C)
    return weights.flatten(1, 2).transpose(1, 2) @ projected.reshape(objects, heads * count, -1).to(weights.dtype)


def image_attends_cached_tokens(attention, image_queries, tokens_keys, tokens_values):
    """`cached_decoder.image_attends_cached_tokens` on the image's projected queries laid out `(h, d, P)`."""
    keys = _split(attention.k_proj(tokens_keys), attention.num_attention_heads) * attention.scaling  # (K, h, T, d)
    weights = torch.softmax(keys.to(image_queries.dtype) @ image_queries, dim=2)  # (K, h, T, P): positions innermost
    return _image_update(attention, weights, tokens_values)


def image_attends_tokens(attention, image_with_positional, tokens_keys, tokens_values):
    """`cached_decoder.image_attends_tokens` with the positions innermost."""
    heads = attention.num_attention_heads
    objects, count = tokens_keys.shape[:2]
    keys = _split(attention.k_proj(tokens_keys), heads) * attention.scaling  # (K, h, T, d)
    folded_keys = torch.einsum("khtd,hdc->khtc", keys, _heads(attention.q_proj.weight, heads))
    offsets = torch.einsum("khtd,hd->kht", keys, attention.q_proj.bias.reshape(heads, -1))
    folded_keys = folded_keys.reshape(objects, heads * count, -1).to(image_with_positional.dtype)
    logits = (image_with_positional @ folded_keys.transpose(1, 2)).transpose(1, 2)  # (K, h * T, P)
    logits = logits.reshape(objects, heads, count, -1) + offsets[..., None].to(logits.dtype)
    return _image_update(attention, torch.softmax(logits, dim=2), tokens_values)


def transposed_convolution_columns(conv: nn.ConvTranspose2d) -> tuple[torch.Tensor, torch.Tensor]:
    """A 2x2 stride-2 transposed convolution as one per-pixel product: `(C_in, (dy, dx, C_out))` columns and their
    bias."""
    return conv.weight.permute(0, 2, 3, 1).reshape(conv.in_channels, -1), conv.bias.repeat(4)


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
            columns, bias = transposed_convolution_columns(conv)
            self.register_buffer(f"{name}_columns", columns.detach().contiguous())
            self.register_buffer(f"{name}_column_bias", bias.detach())

    def upscale_columns(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The two transposed convolutions as `(columns, bias)` pairs (copies made with the graph)."""
        return self.conv1_columns, self.conv1_column_bias, self.conv2_columns, self.conv2_column_bias

    def upscale(self, image, hyper_in):
        """`PromptSideGraph.upscale` with one product per convolution: pixel rows in `(y, x, dy1, dx1, dy2, dx2)`
        order until the masks are reordered."""
        decoder, norm, side = self.mask_decoder, self.mask_decoder.upscale_layer_norm, self.side
        objects, channels = image.shape[0], norm.normalized_shape[0]
        columns1, bias1, columns2, bias2 = self.upscale_columns()
        hidden = torch.addmm(bias1, image.reshape(-1, image.shape[-1]), columns1)
        hidden = F.layer_norm(hidden.reshape(-1, channels), norm.normalized_shape, norm.weight, norm.bias, norm.eps)
        pixels = decoder.activation(torch.addmm(bias2, decoder.activation(hidden), columns2))
        hyper_in = hyper_in.to(pixels.dtype).transpose(1, 2)  # (K, c, M)
        masks = pixels.reshape(objects, -1, hyper_in.shape[1]) @ hyper_in  # (K, s * s * 16, M)
        # (K, y, x, dy1, dx1, dy2, dx2, M) -> (K, M), rows 4y + 2 dy1 + dy2, columns 4x + 2 dx1 + dx2
        masks = masks.reshape(objects, side, side, 2, 2, 2, 2, -1).permute(0, 7, 1, 3, 5, 2, 4, 6)
        return masks.reshape(objects, -1, 4 * side, 4 * side)


class BFloat16PromptSide(nn.Module):
    """`EagerPromptSide` with its image-sized work in bfloat16 (`backend="pytorch-bf16"`): the image side's tensors,
    cast once per image, and bfloat16 copies of what multiplies or normalises image tokens (the positional encoding,
    the image tokens' layer norms, the upscaling). The prompt tokens and every token-side layer stay float32: the
    coordinates' sine encoding needs its precision, and on 7 tokens bfloat16 kernels cost more than they save
    (`docs/decoder_benchmark.md`). Outputs float32; speed and Dice in `docs/bf16_backend.md`."""

    def __init__(self, graph: EagerPromptSide):
        super().__init__()
        self.graph = graph
        low = copy.deepcopy(graph)  # the model's own layer norms are cast below: copies, not the model's
        decoder, low_dtype = low.mask_decoder, torch.bfloat16
        for norm in (*(layer.layer_norm4 for layer in decoder.transformer.layers), decoder.upscale_layer_norm):
            norm.to(low_dtype)
        for name in ("image_positional", "conv1_columns", "conv1_column_bias", "conv2_columns", "conv2_column_bias"):
            setattr(low, name, getattr(low, name).to(low_dtype))
        self.low = low
        self.cast = None  # (the image side's image tensor, its four tensors in bfloat16): one image at a time

    def forward(self, image, first_keys, first_values, first_queries, point_coords, point_labels, selected=None):
        if self.cast is None or self.cast[0] is not image:  # `ImageSideMemo` makes new tensors for a new image
            tensors = (image, first_keys, first_values, first_queries)
            self.cast = (image, tuple(tensor.to(torch.bfloat16) for tensor in tensors))
        image, *first = self.cast[1]
        prompt_tokens = self.graph.tokens(point_coords, point_labels)
        iou_scores, masks = self.low.heads(*self.low.transformer(prompt_tokens, image, first), selected)
        return iou_scores.float(), masks.float()


__all__ = ["BFloat16PromptSide", "EagerImageSide", "EagerPromptSide", "transposed_convolution_columns"]
