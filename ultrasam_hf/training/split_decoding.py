"""Training's decoder passes through the split decoder of the PyTorch backend (`export/cached_decoder.py`,
`export/eager_layout.py`): the same function as SAM's decoder, with gradients.

A training batch decodes every prompt with its image's embedding. SAM's decoder then runs its two-way transformer on
a copy of the image per prompt, and its projections of 4,096 image tokens cost most of a step on a CPU. The split
decoder computes the first layer's image side once per image and multiplies the later layers' image tokens by the
few prompt tokens first (about half the FLOPs per prompt); a pass with a mask prompt (a corrective click) takes its
token-side form. Here it reads the model's live parameters and embeds the prompts with the model's own prompt
encoder, so its parameters get the gradients they get with SAM's decoder. Two kinds get none instead: the key
projections' biases of the later token-to-image attentions, which the softmax cancels (their true gradient is 0, SAM's
decoder gives them rounding noise), and the hypernetworks of masks a pass does not output (SAM's decoder computes all
four masks and gives those zeros).

Only plain `nn.Linear` and `nn.ConvTranspose2d` layers qualify: an adapter or LoRA wrapper changes what a projection
computes, and the folded products read `weight` directly, so such a model keeps SAM's decoder.
"""

from __future__ import annotations

import torch
from torch import nn

from ..export.cached_decoder import selected_masks
from ..export.eager_layout import EagerImageSide, EagerPromptSide, transposed_convolution_columns
from ..models.modeling_ultrasam import UltraSamImageSegmentationOutput


def supports_split_decoding(model) -> bool:
    """Whether the split decoder computes `model`'s decoder: plain linear layers and transposed convolutions only."""
    decoder = model.mask_decoder
    layers = [module for module in decoder.modules() if isinstance(module, (nn.Linear, nn.ConvTranspose2d))]
    plain = all(type(module) in (nn.Linear, nn.ConvTranspose2d) for module in layers)
    wrapped = any(hasattr(module, "base_layer") for module in decoder.modules())  # PEFT's tuner layers
    return plain and not wrapped


class LiveImageSide(EagerImageSide):
    """`EagerImageSide` on the model's trainable no-mask embedding."""

    def __init__(self, model):
        super().__init__(model)
        self.no_mask_embed = model.prompt_encoder.no_mask_embed

    def no_mask_embedding(self) -> torch.Tensor:
        return self.no_mask_embed.weight.reshape(1, -1)


class LivePromptSide(EagerPromptSide):
    """`EagerPromptSide` on the model's trainable upscaling convolutions."""

    def upscale_columns(self):
        conv1, conv2 = self.mask_decoder.upscale_conv1, self.mask_decoder.upscale_conv2
        return (*transposed_convolution_columns(conv1), *transposed_convolution_columns(conv2))

    def decode_tokens(self, prompt_tokens, image, first=None, selected=None):
        """IoU scores and masks of `prompt_tokens (K, T, C)` on `image (1 or K, P, C)`; the first layer on
        `first` (`LiveImageSide`'s keys, values and queries of the image) when given."""
        return self.heads(*self.transformer(prompt_tokens, image, first), selected)


class SplitDecoding:
    """`model(image_embeddings=embeddings[image_index], ...)` for a batch of one prompt per row (`point_batch_size`
    1), through the split decoder. `embeddings (B, C, s, s)` holds each image once and `image_index (N,)` names each
    prompt's image; prompts and mask prompts are laid out as the model takes them, `(N, 1, ...)`. Returns the
    masks and IoU scores of `UltraSamModel.forward`'s output."""

    def __init__(self, model):
        self.model = model
        self.image_side = LiveImageSide(model)
        self.prompt_side = LivePromptSide(model)

    def __call__(
        self,
        embeddings,
        image_index,
        input_points=None,
        input_labels=None,
        input_boxes=None,
        input_masks=None,
        multimask_output: bool = True,
        image_sides: dict | None = None,
    ) -> UltraSamImageSegmentationOutput:
        """`image_sides`: a dict that keeps each image's image side for later calls on the same `embeddings` (one
        training step's passes: while the weights do not change)."""
        image_sides = {} if image_sides is None else image_sides
        if input_points is not None and input_labels is None:
            input_labels = torch.ones_like(input_points[..., 0], dtype=torch.long)

        def decode_pass(points, labels, boxes, masks, multimask):
            sparse, dense = self.model.prompt_encoder(points, labels, boxes, masks)
            tokens = self.prompt_side.with_output_tokens(sparse[:, 0])
            selected = selected_masks(multimask)
            if masks is None:
                iou, logits = self._per_image(embeddings, image_index, tokens, selected, image_sides)
            else:
                image = (embeddings[image_index] + dense).flatten(2).transpose(1, 2)  # (N, P, C)
                iou, logits = self.prompt_side.decode_tokens(tokens, image, selected=selected)
            return logits[:, None], iou[:, None]

        masks, iou, first_masks, first_iou = self.model.cascade(
            decode_pass, input_points, input_labels, input_boxes, input_masks, multimask_output
        )
        refinements = self.model.config.num_mask_refinements
        return UltraSamImageSegmentationOutput(
            iou_scores=iou,
            pred_masks=masks,
            first_pass_iou_scores=first_iou if refinements else None,
            first_pass_pred_masks=first_masks if refinements else None,
        )

    def _per_image(self, embeddings, image_index, tokens, selected, image_sides):
        """The image side once per image of the batch, then that image's prompts; rows back in the batch's order."""
        ious, logits, rows = [], [], []
        for image in torch.unique(image_index).tolist():
            prompts = (image_index == image).nonzero(as_tuple=True)[0]
            key = (id(embeddings), image)
            if key not in image_sides:
                image_sides[key] = self.image_side(embeddings[image : image + 1])
            image_tokens, *first = image_sides[key]
            iou, masks = self.prompt_side.decode_tokens(tokens[prompts], image_tokens, first, selected)
            ious.append(iou), logits.append(masks), rows.append(prompts)
        order = torch.argsort(torch.cat(rows))
        return torch.cat(ious)[order], torch.cat(logits)[order]


__all__ = ["LiveImageSide", "LivePromptSide", "SplitDecoding", "supports_split_decoding"]
