"""SAM's prompt decoder split in two: what depends on the image only, computed once per image, and what a prompt
adds, computed per click. Same function as `PromptDecoderGraph` without a mask prompt, with half its FLOPs per prompt
(1.72 instead of 3.59 GFLOP for a box on the lite model; `docs/onnx_export.md`).

Why it is exact: SAM's two-way transformer runs on `T` <= ~10 prompt tokens and 4,096 image tokens, and its cost is
the image-side projections (4,096 x 256 x 128 per projection, three per layer, plus the output projections).

- The first layer sees the image embedding only, so its image-side keys, values and queries are cached per image
  (`ImageSideGraph`).
- Later layers multiply by the prompt tokens first. A token-to-image logit `q . (x W_k + b_k)` equals
  `(q W_k) . x + q . b_k`. Here `q W_k` has `heads x T` rows, and `q . b_k` is constant over image positions, so the
  softmax removes it. An attention-weighted value `sum_p a_p (x_p W_v + b_v)` equals `(sum_p a_p x_p) W_v + b_v`.
  In the image-to-token direction, the image side's query projection folds into the token keys. Its output
  projection folds into the token values: `(A V) W_o = A (V W_o)`, rank `heads x T`, not 128.
- The two 2x2 stride-2 transposed convolutions are per-pixel linear maps (`256 -> 4 x 64`, `64 -> 4 x 32`). They run
  as matrix products on channels-last pixels, one per output row offset. Everything after them is per pixel, so the
  pixels stay in sub-pixel order and only the masks are reordered into image rows.

The image-side cache is valid without a mask prompt: the dense embedding is then the no-mask embedding, a property
of the model. Mask prompts change it per prompt; `TokenSideDecoderGraph` runs them with every layer token-side.
"""

import torch
from torch import nn
from torch.nn import functional as F

from .graphs import PromptDecoderGraph


def _heads(weight: torch.Tensor, heads: int) -> torch.Tensor:
    """A projection's `(heads * d, C)` weight as `(heads, d, C)`."""
    return weight.reshape(heads, -1, weight.shape[-1])


def _split(x: torch.Tensor, heads: int) -> torch.Tensor:
    """`(K, T, heads * d)` -> `(K, heads, T, d)`."""
    return x.reshape(x.shape[0], x.shape[1], heads, -1).transpose(1, 2)


def _merge(x: torch.Tensor) -> torch.Tensor:
    """`(K, heads, T, d)` -> `(K, T, heads * d)`."""
    return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], -1)


def tokens_attend_cached_image(attention, tokens, image_keys, image_values):
    """Token-to-image attention on the image's projected keys `(h, d, P)` and values `(h, P, d)` (first layer,
    cached)."""
    query = _split(attention.q_proj(tokens), attention.num_attention_heads)  # (K, h, T, d)
    weights = torch.softmax(query @ image_keys * attention.scaling, dim=-1)
    return attention.out_proj(_merge(weights @ image_values))


def tokens_attend_image(attention, tokens, image, image_with_positional):
    """Token-to-image attention on image features `(K, P, C)`, projections applied on the token side."""
    heads = attention.num_attention_heads
    objects, count = tokens.shape[:2]
    query = _split(attention.q_proj(tokens), heads)  # (K, h, T, d)
    # q . (x W_k + b_k) = (q W_k) . x + const over positions: the constant leaves the softmax unchanged
    folded_query = torch.einsum("khtd,hdc->khtc", query, _heads(attention.k_proj.weight, heads))
    folded_query = folded_query.reshape(objects, heads * count, -1)
    logits = folded_query @ image_with_positional.transpose(1, 2)
    weights = torch.softmax(logits * attention.scaling, dim=-1)  # (K, h * T, P)
    pooled = (weights @ image).reshape(objects, heads, count, -1)  # weights sum to 1: the bias passes through
    values = torch.einsum("khtc,hdc->khtd", pooled, _heads(attention.v_proj.weight, heads))
    values = values + attention.v_proj.bias.reshape(heads, 1, -1)
    return attention.out_proj(_merge(values))


def _image_update(attention, weights, tokens_values):
    """`out_proj` of the image-to-token attention as a rank-(heads x T) product: `(A V) W_o = A (V W_o)`. Each head's
    weights sum to 1 over the tokens, so `out_proj`'s bias rides along as `bias / heads` on every token's row."""
    heads = attention.num_attention_heads
    objects, count = tokens_values.shape[0], tokens_values.shape[1]
    values = _split(attention.v_proj(tokens_values), heads)  # (K, h, T, d)
    out_weight = _heads(attention.out_proj.weight.t(), heads)  # (h, d, C)
    # an einsum, not a MatMul node with a 3D constant: ONNX Runtime's per-channel int8 quantisation rejects those
    projected = torch.einsum("khtd,hdc->khtc", values, out_weight) + attention.out_proj.bias / heads  # (K, h, T, C)
    return weights.reshape(objects, -1, heads * count) @ projected.reshape(objects, heads * count, -1)


def image_attends_cached_tokens(attention, image_queries, tokens_keys, tokens_values):
    """Image-to-token attention with the image's projected queries `(h, P, d)` cached (first layer)."""
    keys = _split(attention.k_proj(tokens_keys), attention.num_attention_heads)  # (K, h, T, d)
    weights = torch.softmax(image_queries @ keys.transpose(2, 3) * attention.scaling, dim=-1)  # (K, h, P, T)
    return _image_update(attention, weights.transpose(1, 2), tokens_values)


def image_attends_tokens(attention, image_with_positional, tokens_keys, tokens_values):
    """Image-to-token attention on image features `(K, P, C)`: the image-side query projection folds into the
    token keys, `(x W_q + b_q) . k = x . (W_q^T k) + b_q . k`."""
    heads = attention.num_attention_heads
    objects, count = tokens_keys.shape[:2]
    keys = _split(attention.k_proj(tokens_keys), heads)  # (K, h, T, d)
    folded_keys = torch.einsum("khtd,hdc->khtc", keys, _heads(attention.q_proj.weight, heads))
    offsets = torch.einsum("khtd,hd->kht", keys, attention.q_proj.bias.reshape(heads, -1))
    logits = image_with_positional @ folded_keys.reshape(objects, heads * count, -1).transpose(1, 2)
    logits = (logits + offsets.reshape(objects, 1, heads * count)) * attention.scaling
    weights = torch.softmax(logits.reshape(objects, -1, heads, count), dim=-1)  # (K, P, h, T)
    return _image_update(attention, weights, tokens_values)


def _image_positional_tokens(model) -> torch.Tensor:
    """The model's dense positional encoding as image tokens `(P, C)`, rows in `y * s + x` order."""
    return model.get_image_wide_positional_embeddings().detach()[0].flatten(1).t().contiguous()


class ImageSideGraph(nn.Module):
    """`image_embeddings (1, C, s, s)` -> the prompt-independent tensors `PromptSideGraph` takes (`P = s * s`): the
    image tokens with the no-mask embedding added `(P, C)`, and the first layer's image-side keys `(h, d, P)`,
    values and queries `(h, P, d)`, laid out as `PromptSideGraph` multiplies them."""

    def __init__(self, model):
        super().__init__()
        self.mask_decoder = model.mask_decoder
        self.register_buffer("no_mask", model.prompt_encoder.no_mask_embed.weight.detach().reshape(1, -1))
        self.register_buffer("image_positional", _image_positional_tokens(model))

    def no_mask_embedding(self) -> torch.Tensor:
        """The dense embedding without a mask prompt, `(1, C)` (a copy made with the graph: export and inference)."""
        return self.no_mask

    def forward(self, image_embeddings):
        image = image_embeddings[0].flatten(1).t() + self.no_mask_embedding()  # (P, C), rows in y * s + x order
        first = self.mask_decoder.transformer.layers[0]
        with_positional = image + self.image_positional
        heads = first.cross_attn_token_to_image.num_attention_heads
        keys = first.cross_attn_token_to_image.k_proj(with_positional).reshape(len(image), heads, -1).permute(1, 2, 0)
        values = first.cross_attn_token_to_image.v_proj(image).reshape(len(image), heads, -1).transpose(0, 1)
        queries = first.cross_attn_image_to_token.q_proj(with_positional).reshape(len(image), heads, -1)
        return image.contiguous(), keys.contiguous(), values.contiguous(), queries.transpose(0, 1).contiguous()


class PromptSideGraph(nn.Module):
    """`ImageSideGraph`'s tensors + `point_coords (K, N, 2)`, `point_labels (K, N)` -> `iou_scores (K, M)`,
    `low_res_masks (K, M, 4s, 4s)`, as `PromptDecoderGraph` with `has_mask_input = 0`."""

    # the attention functions in the layout ONNX Runtime runs fastest; `EagerPromptSide` (`eager_layout.py`) swaps in
    # the layout of PyTorch's eager kernels
    tokens_attend_cached_image = staticmethod(tokens_attend_cached_image)
    tokens_attend_image = staticmethod(tokens_attend_image)
    image_attends_cached_tokens = staticmethod(image_attends_cached_tokens)
    image_attends_tokens = staticmethod(image_attends_tokens)

    def __init__(self, model):
        super().__init__()
        self.prompts = PromptDecoderGraph(model)  # the sparse prompt layout, shared
        self.mask_decoder = model.mask_decoder
        self.register_buffer("image_positional", _image_positional_tokens(model))
        self.side = model.config.prompt_encoder_config.image_embedding_size
        # a 2x2 stride-2 transposed convolution is, per output row offset dy, a per-pixel linear map
        # (C_in -> 2 x C_out, columns in (dx, C_out) order)
        for name, conv in (
            ("upscale1", self.mask_decoder.upscale_conv1),
            ("upscale2", self.mask_decoder.upscale_conv2),
        ):
            weight = conv.weight.detach().permute(2, 0, 3, 1).reshape(2, conv.in_channels, -1)  # (dy, C_in, ...)
            self.register_buffer(f"{name}_weight", weight.contiguous())
            self.register_buffer(f"{name}_bias", conv.bias.detach().repeat(2))

    def tokens(self, point_coords, point_labels):
        return self.with_output_tokens(self.prompts.embed_sparse(point_coords, point_labels))

    def with_output_tokens(self, sparse):
        """The decoder's output tokens followed by the sparse prompt embeddings `(K, N, C)`."""
        decoder = self.mask_decoder
        output_tokens = torch.cat([decoder.iou_token.weight, decoder.mask_tokens.weight], dim=0)
        return torch.cat([output_tokens.expand(sparse.shape[0], -1, -1), sparse], dim=1)

    def transformer(self, prompt_tokens, image, first=None):
        """The two-way transformer on `prompt_tokens (K, T, C)` and the image tokens `image (K or 1, P, C)`: the first
        layer on `first` (`ImageSideGraph`'s keys, values and queries of `image`) when given, else token-side like
        the later layers (a dense prompt that differs per object: mask prompts)."""
        transformer = self.mask_decoder.transformer
        positional = self.image_positional
        queries, keys = prompt_tokens, image
        for index, layer in enumerate(transformer.layers):
            cached = index == 0 and first is not None
            if layer.skip_first_layer_pe:
                queries = layer.self_attn(query=queries[None], key=queries[None], value=queries[None])[0][0]
            else:
                query = (queries + prompt_tokens)[None]
                queries = queries + layer.self_attn(query=query, key=query, value=queries[None])[0][0]
            queries = layer.layer_norm1(queries)
            if cached:
                attended = self.tokens_attend_cached_image(
                    layer.cross_attn_token_to_image, queries + prompt_tokens, first[0], first[1]
                )
            else:
                keys_with_positional = keys + positional  # shared by both cross-attentions of this layer
                attended = self.tokens_attend_image(
                    layer.cross_attn_token_to_image, queries + prompt_tokens, keys, keys_with_positional
                )
            queries = layer.layer_norm2(queries + attended)
            queries = layer.layer_norm3(queries + layer.mlp(queries))
            if cached:
                update = self.image_attends_cached_tokens(
                    layer.cross_attn_image_to_token, first[2], queries + prompt_tokens, queries
                )
                keys = layer.layer_norm4(image + update)
            else:
                update = self.image_attends_tokens(
                    layer.cross_attn_image_to_token, keys_with_positional, queries + prompt_tokens, queries
                )
                keys = layer.layer_norm4(keys + update)
        final = transformer.final_attn_token_to_image
        attended = self.tokens_attend_image(final, queries + prompt_tokens, keys, keys + positional)
        return transformer.layer_norm_final_attn(queries + attended), keys

    def upscale(self, image, hyper_in):
        """The decoder's two transposed convolutions and the hypernetwork product, channels last.
        `image (K, s*s, C)`, `hyper_in (K, M, c)` -> `(K, M, 4s, 4s)`.

        Each convolution runs as one matrix product per output row offset (`dy1`, then `dy2`). Pixels stay in
        sub-pixel order, `(y, x, dx1, dx2)` per `(dy1, dy2)`, through the layer norm, the activations and the
        hypernetwork product, which are all per pixel: only the masks, 4 values per pixel instead of 64 or 32
        channels, are reordered into the upscaled image's rows."""
        decoder = self.mask_decoder
        objects, side, norm = image.shape[0], self.side, decoder.upscale_layer_norm
        hidden = image.reshape(-1, image.shape[-1])
        masks = []
        for weight1 in self.upscale1_weight:  # dy1
            upscaled = torch.addmm(self.upscale1_bias, hidden, weight1).reshape(-1, norm.normalized_shape[0])
            upscaled = decoder.activation(
                F.layer_norm(upscaled, norm.normalized_shape, norm.weight, norm.bias, norm.eps)
            )
            for weight2 in self.upscale2_weight:  # dy2
                pixels = decoder.activation(torch.addmm(self.upscale2_bias, upscaled, weight2))
                pixels = pixels.reshape(objects, -1, hyper_in.shape[-1])  # (K, s * s * 2 * 2, c): (y, x, dx1, dx2)
                masks.append(hyper_in @ pixels.transpose(1, 2))
        # (K, M, dy1, dy2, y, x, dx1, dx2) -> rows 4y + 2 dy1 + dy2, columns 4x + 2 dx1 + dx2
        masks = torch.stack(masks, dim=2).reshape(objects, -1, 2, 2, side, side, 2, 2)
        return masks.permute(0, 1, 4, 2, 3, 5, 6, 7).reshape(objects, -1, 4 * side, 4 * side)

    def forward(self, image, first_keys, first_values, first_queries, point_coords, point_labels, selected=None):
        """`selected` (a slice of the `M` masks, PyTorch only): the masks to compute, e.g. `slice(0, 1)` for the
        single-mask output; the others' hypernetwork and upscaling products are skipped."""
        prompt_tokens = self.tokens(point_coords, point_labels)
        first = (first_keys, first_values, first_queries)
        return self.heads(*self.transformer(prompt_tokens, image, first), selected)

    def heads(self, queries, keys, selected=None):
        """IoU scores and mask logits from the transformer's tokens and image features, of the masks `selected` (a
        slice; all when None)."""
        decoder = self.mask_decoder
        mlps, iou_scores = decoder.output_hypernetworks_mlps, decoder.iou_prediction_head(queries[:, 0, :])
        indices = range(len(mlps)) if selected is None else range(len(mlps))[selected]
        hyper_in = torch.stack([mlps[i](queries[:, 1 + i, :]) for i in indices], dim=1)
        return iou_scores if selected is None else iou_scores[:, selected], self.upscale(keys, hyper_in)


class TokenSideDecoderGraph(PromptSideGraph):
    """`PromptDecoderGraph`'s inputs and outputs (mask prompts included) with every layer's projections on the token
    side: no image-side cache, 2.08 instead of 3.59 GFLOP for a box on the lite model. It is the graph for prompts
    whose dense embedding changes per prompt (a mask prompt: refinement passes, propagation through a cine loop)."""

    def forward(self, image_embeddings, point_coords, point_labels, mask_input, has_mask_input):
        encoder = self.prompts.prompt_encoder
        no_mask = encoder.no_mask_embed.weight.reshape(1, -1, 1, 1)
        dense = has_mask_input * encoder.mask_embed(mask_input) + (1 - has_mask_input) * no_mask
        image = (image_embeddings + dense).flatten(2).transpose(1, 2)  # (1 or K, P, C)
        prompt_tokens = self.tokens(point_coords, point_labels)
        image = image.expand(prompt_tokens.shape[0], -1, -1)
        return self.heads(*self.transformer(prompt_tokens, image))


class ImageSideMemo:
    """`compute(image_embeddings)` (the image side of the split decoder) for the last embedding tensor seen, computed
    once: a predictor decodes many prompts on the same tensor. An in-place change of the tensor bumps its version
    and recomputes it."""

    def __init__(self, compute):
        self.compute = compute
        self.entry = None  # (embedding tensor, its version, outputs)

    def __call__(self, image_embeddings: torch.Tensor):
        entry = self.entry
        if entry is not None and entry[0] is image_embeddings and entry[1] == image_embeddings._version:
            return entry[2]
        self.entry = (image_embeddings, image_embeddings._version, self.compute(image_embeddings))
        return self.entry[2]


def selected_masks(multimask_output: bool) -> slice:
    """The decoder's masks an output uses: the three candidates (1-3) for the multimask output, else mask 0."""
    return slice(1, None) if multimask_output else slice(0, 1)


def run_prompt_side(image_side, prompt_side, image_embeddings, point_coords, point_labels, multimask_output):
    """One pass of a prompt without a mask prompt through the split decoder, computing only the masks the output uses:
    `(low_res_masks, iou_scores)` with a leading image axis, as a decoder pass returns them."""
    selected = selected_masks(multimask_output)
    iou_scores, masks = prompt_side(*image_side(image_embeddings), point_coords, point_labels, selected)
    return masks[None], iou_scores[None]


def uses_split_decoder(image_embeddings, input_points, input_boxes, input_masks) -> bool:
    """Whether a decoder pass can take the split decoder: one image, point or box prompts, no mask prompt."""
    has_prompt = input_points is not None or input_boxes is not None
    return image_embeddings.shape[0] == 1 and input_masks is None and has_prompt


__all__ = [
    "ImageSideGraph",
    "ImageSideMemo",
    "PromptSideGraph",
    "TokenSideDecoderGraph",
    "run_prompt_side",
    "selected_masks",
    "uses_split_decoder",
]
