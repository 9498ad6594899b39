"""The two graphs an UltraSam model is exported as, written as `nn.Module`s over the model's own submodules.

- `ImageEncoderGraph`: `pixel_values (B, 3, S, S)` (already preprocessed) -> `image_embeddings (B, C, s, s)`.
- `PromptDecoderGraph`: one decoder pass of one image for `K` objects, prompts in the model-input frame:

  `image_embeddings (1, C, s, s)`, `point_coords (K, N, 2)`, `point_labels (K, N)` (int64), `mask_input (1 or K,
  1, 4s, 4s)`, `has_mask_input (1,)` -> `iou_scores (K, M)`, `low_res_masks (K, M, 4s, 4s)` with all `M`
  mask tokens (token 0 is the single-mask output, tokens 1.. the multimask ones: the caller slices).

  Points and boxes share one sparse layout, as segment-anything's ONNX decoder: labels 1 / 0 for positive /
  negative clicks, -1 for the padding point SAM appends when there is no box, 2 / 3 for a box's top-left /
  bottom-right corner, -10 for "no point" (zero embedding). `prompt_arrays` builds it from the model's inputs.

The cascaded refinement passes of `num_mask_refinements > 0` are not in the graph: the runtime calls this pass
through `UltraSamModel.cascade`, the same loop the PyTorch model runs.
"""

import numpy as np
import torch
from torch import nn

NOT_A_POINT, NO_POINT, BOX_TOP_LEFT, BOX_BOTTOM_RIGHT = -1, -10, 2, 3


class ImageEncoderGraph(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.vision_encoder = model.vision_encoder

    def forward(self, pixel_values):
        return self.vision_encoder(pixel_values, return_dict=True).last_hidden_state


class PromptDecoderGraph(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.prompt_encoder = model.prompt_encoder
        self.mask_decoder = model.mask_decoder
        self.input_size = model.config.prompt_encoder_config.image_size
        # constant for a model: computed once here, stored in the graph
        self.register_buffer("image_positional_embeddings", model.get_image_wide_positional_embeddings().detach())

    def embed_sparse(self, point_coords, point_labels):
        """`SamPromptEncoder._embed_points` and `_embed_boxes` on the shared layout (same arithmetic)."""
        encoder = self.prompt_encoder
        embedding = encoder.shared_embedding((point_coords + 0.5)[None], (self.input_size, self.input_size))[0]
        labels = point_labels[..., None]
        embedding = torch.where(labels == NOT_A_POINT, encoder.not_a_point_embed.weight, embedding)
        embedding = torch.where(labels != NO_POINT, embedding, torch.zeros_like(embedding))
        for label in range(4):  # 0 / 1 clicks, 2 / 3 box corners
            embedding = torch.where(labels == label, embedding + encoder.point_embed[label].weight, embedding)
        return embedding

    def forward(self, image_embeddings, point_coords, point_labels, mask_input, has_mask_input):
        decoder = self.mask_decoder
        objects = point_coords.shape[0]
        sparse = self.embed_sparse(point_coords, point_labels)[None]  # (1, K, N, C)
        no_mask = self.prompt_encoder.no_mask_embed.weight.reshape(1, -1, 1, 1)
        dense = has_mask_input * self.prompt_encoder.mask_embed(mask_input) + (1 - has_mask_input) * no_mask
        # `SamMaskDecoder.forward` without its final slice, so that one graph serves both output modes
        output_tokens = torch.cat([decoder.iou_token.weight, decoder.mask_tokens.weight], dim=0)
        tokens = torch.cat([output_tokens.repeat(1, objects, 1, 1), sparse], dim=2)
        image = (image_embeddings + dense).expand(objects, -1, -1, -1)
        positional = self.image_positional_embeddings.expand(objects, -1, -1, -1)
        point_embedding, image = decoder.transformer(
            point_embeddings=tokens,
            image_embeddings=image,
            image_positional_embeddings=positional,
            attention_similarity=None,
        )
        _, channels, height, width = image_embeddings.shape
        image = image.transpose(2, 3).reshape(objects, channels, height, width)
        upscaled = decoder.activation(decoder.upscale_layer_norm(decoder.upscale_conv1(image)))
        upscaled = decoder.activation(decoder.upscale_conv2(upscaled))
        mask_tokens = point_embedding[0, :, 1 : 1 + decoder.num_mask_tokens, :]
        hyper_in = torch.stack(
            [mlp(mask_tokens[:, i, :]) for i, mlp in enumerate(decoder.output_hypernetworks_mlps)], dim=1
        )
        upscaled_channels, mask_height, mask_width = upscaled.shape[1:]
        masks = hyper_in @ upscaled.reshape(objects, upscaled_channels, mask_height * mask_width)
        iou_scores = decoder.iou_prediction_head(point_embedding[0, :, 0, :])
        return iou_scores, masks.reshape(objects, -1, mask_height, mask_width)


def sparse_prompts(points, labels, boxes) -> tuple[torch.Tensor, torch.Tensor]:
    """Prompts of `K` objects (`(K, N, 2)`, `(K, N)`, `(K, 4)` tensors or None) in the graph's sparse layout: `(K, N',
    2)` float32 coordinates and `(K, N')` int64 labels, ordered as `SamPromptEncoder` concatenates them (clicks, then
    SAM's padding point when there is no box, then the box corners)."""
    present = [t for t in (points, boxes) if t is not None]
    objects, device = (present[0].shape[0], present[0].device) if present else (1, None)
    coords, codes = [], []
    if points is not None:
        coords.append(points.float())
        codes.append(labels.long())
        if boxes is None:
            coords.append(torch.zeros(objects, 1, 2, device=device))
            codes.append(torch.full((objects, 1), NOT_A_POINT, dtype=torch.long, device=device))
    if boxes is not None:
        coords.append(boxes.float().reshape(objects, 2, 2))
        codes.append(torch.tensor([[BOX_TOP_LEFT, BOX_BOTTOM_RIGHT]], device=device).expand(objects, 2))
    if not coords:  # a mask prompt alone: SAM's decoder then has its output tokens only
        return torch.zeros(objects, 0, 2, device=device), torch.zeros(objects, 0, dtype=torch.long, device=device)
    return torch.cat(coords, dim=1), torch.cat(codes, dim=1)


def prompt_arrays(input_points, input_labels, input_boxes) -> tuple[np.ndarray, np.ndarray]:
    """`sparse_prompts` of the model's prompts for one image (`(1, K, N, 2)`, `(1, K, N)`, `(1, K, 4)` tensors or
    None), as numpy arrays."""

    def first_image(prompt):
        return None if prompt is None else torch.as_tensor(np.asarray(prompt[0]))

    coords, labels = sparse_prompts(first_image(input_points), first_image(input_labels), first_image(input_boxes))
    return coords.numpy(), labels.numpy()


__all__ = ["ImageEncoderGraph", "PromptDecoderGraph", "prompt_arrays", "sparse_prompts"]
