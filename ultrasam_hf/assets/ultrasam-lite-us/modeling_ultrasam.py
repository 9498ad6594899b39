"""UltraSam models. The diff from `SamModel` is small and lives here:

- the vision encoder is SAM's ViT or LiteMedSAM's TinyViT (`config.vision_config.encoder_type`);
- `num_mask_refinements` cascaded decoder passes, each taking the previous low-res logits as mask prompt (and, at
  inference, the box of the previous mask in place of point prompts), multimask on, best predicted IoU kept;
- mask prompts may be given per prompt (`(batch, point_batch, H, W)`), not only per image;
- `UltraSamForPromptedClassification` adds the paper's per-prompt classification head.
"""

from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import initialization as init
from transformers.models.sam.modeling_sam import (
    SamImageSegmentationOutput,
    SamMaskDecoder,
    SamModel,
    SamPositionalEmbedding,
    SamPreTrainedModel,
    SamPromptEncoder,
    SamVisionEncoder,
    SamVisionEncoderOutput,
)
from transformers.utils import ModelOutput

from .configuration_ultrasam import UltraSamConfig
from .modeling_tinyvit import UltraSamTinyVitAttention, UltraSamTinyVitEncoder


@dataclass
class UltraSamImageSegmentationOutput(SamImageSegmentationOutput):
    r"""
    iou_scores (`torch.Tensor` of shape `(batch_size, point_batch_size, num_masks)`):
        Predicted IoU of the final pass's masks.
    pred_masks (`torch.Tensor` of shape `(batch_size, point_batch_size, num_masks, height, width)`):
        Low-resolution logits of the final pass. Post-process them with the processor.
    first_pass_iou_scores (`torch.Tensor`, *optional*):
        Predicted IoU of the first decoder pass (only with `num_mask_refinements > 0`).
    first_pass_pred_masks (`torch.Tensor`, *optional*):
        Low-resolution logits of the first decoder pass, a single mask per prompt.
    image_embeddings (`torch.Tensor` of shape `(batch_size, channels, height, width)`, *optional*):
        The image embeddings used, so that a caller can reuse them.
    """

    first_pass_iou_scores: torch.Tensor | None = None
    first_pass_pred_masks: torch.Tensor | None = None
    image_embeddings: torch.Tensor | None = None


@dataclass
class UltraSamPromptedClassificationOutput(UltraSamImageSegmentationOutput):
    r"""
    loss (`torch.Tensor`, *optional*):
        Classification loss, returned when `labels` is given.
    logits (`torch.Tensor` of shape `(batch_size, point_batch_size, num_labels)`):
        Per-prompt class logits.
    """

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None


class UltraSamPreTrainedModel(SamPreTrainedModel):
    config: UltraSamConfig
    base_model_prefix = "ultrasam"
    _no_split_modules = ["SamVisionLayer", "UltraSamTinyVitBlock"]

    def _init_weights(self, module: nn.Module):
        super()._init_weights(module)
        if isinstance(module, UltraSamTinyVitAttention):
            init.zeros_(module.attention_biases)
            # non-persistent: rebuilt here because from_pretrained materialises buffers from the meta device
            init.copy_(module.attention_bias_idxs, module.bias_indices(module.window_size))


def boxes_from_mask_logits(mask_logits: torch.Tensor, input_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Tight xyxy boxes (in model-input pixels) of `mask_logits > 0`; `(..., H, W)` -> `(..., 4)`, and a flag of
    which masks are non-empty."""
    foreground = mask_logits > 0
    scale = input_size / mask_logits.shape[-1]
    rows, cols = foreground.any(dim=-1), foreground.any(dim=-2)
    positions_y = torch.arange(rows.shape[-1], device=mask_logits.device)
    positions_x = torch.arange(cols.shape[-1], device=mask_logits.device)
    big = rows.shape[-1] + cols.shape[-1]
    y0 = torch.where(rows, positions_y, big).amin(-1)
    y1 = torch.where(rows, positions_y, -1).amax(-1)
    x0 = torch.where(cols, positions_x, big).amin(-1)
    x1 = torch.where(cols, positions_x, -1).amax(-1)
    boxes = torch.stack([x0, y0, x1 + 1, y1 + 1], dim=-1).to(mask_logits.dtype) * scale
    boxes[..., 2:] -= 1  # inclusive pixel coordinates, as prompts are given
    return boxes, rows.any(dim=-1)


class UltraSamModel(UltraSamPreTrainedModel, SamModel):
    r"""
    Example:

    ```python
    >>> import torch
    >>> from ultrasam_hf import UltraSamConfig, UltraSamModel
    >>> model = UltraSamModel(UltraSamConfig.from_preset("tiny")).eval()
    >>> out = model(pixel_values=torch.rand(1, 3, 64, 64), input_boxes=torch.tensor([[[8.0, 8.0, 40.0, 40.0]]]))
    >>> out.pred_masks.shape  # final (refined) pass: best of the multimask outputs
    torch.Size([1, 1, 1, 32, 32])
    ```
    """

    config_class = UltraSamConfig

    def __init__(self, config: UltraSamConfig):
        # SamModel.__init__ would always build a ViT; build the same modules with the configured encoder instead.
        UltraSamPreTrainedModel.__init__(self, config)
        self.shared_image_embedding = SamPositionalEmbedding(config.vision_config)
        if config.vision_config.encoder_type == "tiny_vit":
            self.vision_encoder = UltraSamTinyVitEncoder(config.vision_config)
        else:
            self.vision_encoder = SamVisionEncoder(config.vision_config)
        self.prompt_encoder = SamPromptEncoder(config)
        config.mask_decoder_config._attn_implementation = config._attn_implementation
        self.mask_decoder = SamMaskDecoder(config.mask_decoder_config)
        self.post_init()

    def _decode(
        self,
        image_embeddings,
        image_positional_embeddings,
        input_points,
        input_labels,
        input_boxes,
        input_masks,
        multimask_output,
        attention_similarity=None,
        target_embedding=None,
    ):
        """One decoder pass. Per-prompt mask prompts `(B, P, H, W)` are handled by folding the prompts into the batch,
        since SAM's decoder adds dense embeddings per image."""
        per_prompt_masks = input_masks is not None and input_masks.ndim == 4 and input_masks.shape[1] > 1
        if not per_prompt_masks:
            if input_masks is not None and input_masks.ndim == 3:
                input_masks = input_masks.unsqueeze(1)
            sparse, dense = self.prompt_encoder(input_points, input_labels, input_boxes, input_masks)
            return self.mask_decoder(
                image_embeddings=image_embeddings,
                image_positional_embeddings=image_positional_embeddings,
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense,
                multimask_output=multimask_output,
                attention_similarity=attention_similarity,
                target_embedding=target_embedding,
            )
        batch, prompts = input_masks.shape[:2]

        def fold(tensor):
            return None if tensor is None else tensor.reshape(batch * prompts, 1, *tensor.shape[2:])

        sparse, dense = self.prompt_encoder(
            fold(input_points), fold(input_labels), fold(input_boxes), input_masks.reshape(batch * prompts, 1, *input_masks.shape[2:])
        )
        masks, iou = self.mask_decoder(
            image_embeddings=image_embeddings.repeat_interleave(prompts, 0),
            image_positional_embeddings=image_positional_embeddings.repeat_interleave(prompts, 0),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=multimask_output,
            attention_similarity=attention_similarity,
            target_embedding=target_embedding,
        )
        return masks.reshape(batch, prompts, *masks.shape[2:]), iou.reshape(batch, prompts, -1)

    def _refinement_prompts(self, input_points, input_labels, input_boxes, mask_logits):
        """Prompts of a refinement pass. Training keeps the original prompts (the paper's recipe); at inference,
        point-only prompts are replaced by the box of the previous mask, where that mask is non-empty."""
        if self.training or input_boxes is not None or input_points is None:
            return input_points, input_labels, input_boxes
        boxes, non_empty = boxes_from_mask_logits(mask_logits, self.config.prompt_encoder_config.image_size)
        if not bool(non_empty.all()):
            return input_points, input_labels, input_boxes  # an empty first mask has no box: keep the points
        return None, None, boxes

    def forward(
        self,
        pixel_values: torch.Tensor | None = None,
        input_points: torch.Tensor | None = None,
        input_labels: torch.LongTensor | None = None,
        input_boxes: torch.Tensor | None = None,
        input_masks: torch.Tensor | None = None,
        image_embeddings: torch.Tensor | None = None,
        multimask_output: bool = True,
        attention_similarity: torch.Tensor | None = None,
        target_embedding: torch.Tensor | None = None,
        **kwargs,
    ) -> UltraSamImageSegmentationOutput:
        r"""
        input_masks (`torch.Tensor` of shape `(batch_size, 1 or point_batch_size, height, width)`, *optional*):
            Low-resolution mask logits used as dense prompt, per image (as SAM) or per prompt.
        multimask_output (`bool`, *optional*, defaults to `True`):
            Without refinement, as SAM. With refinement, the first pass always predicts a single mask and the last
            pass always predicts the multimask outputs; `False` keeps the one with the highest predicted IoU.
        """
        if self.config.num_mask_refinements == 0 and (input_masks is None or input_masks.ndim != 4 or input_masks.shape[1] == 1):
            outputs = super().forward(
                pixel_values=pixel_values,
                input_points=input_points,
                input_labels=input_labels,
                input_boxes=input_boxes,
                input_masks=input_masks,
                image_embeddings=image_embeddings,
                multimask_output=multimask_output,
                attention_similarity=attention_similarity,
                target_embedding=target_embedding,
                **kwargs,
            )
            return UltraSamImageSegmentationOutput(**outputs)

        if (pixel_values is None) == (image_embeddings is None):
            raise ValueError("Pass exactly one of pixel_values and image_embeddings.")
        vision_hidden_states = vision_attentions = None
        if pixel_values is not None:
            vision_outputs: SamVisionEncoderOutput = self.vision_encoder(pixel_values, **kwargs)
            image_embeddings = vision_outputs.last_hidden_state
            vision_hidden_states, vision_attentions = vision_outputs.hidden_states, vision_outputs.attentions
        if input_points is not None and input_labels is None:
            input_labels = torch.ones_like(input_points[..., 0], dtype=torch.int)
        batch = image_embeddings.shape[0]
        positional = self.get_image_wide_positional_embeddings().repeat(batch, 1, 1, 1)
        decode = lambda points, labels, boxes, masks, multimask: self._decode(  # noqa: E731
            image_embeddings, positional, points, labels, boxes, masks, multimask, attention_similarity, target_embedding
        )

        refinements = self.config.num_mask_refinements
        masks, iou = decode(input_points, input_labels, input_boxes, input_masks, multimask_output if refinements == 0 else False)
        first_masks, first_iou = masks, iou
        for step in range(refinements):
            best = iou.argmax(dim=-1)
            previous = torch.gather(masks, 2, best[..., None, None, None].expand(-1, -1, 1, *masks.shape[-2:])).squeeze(2)
            points, labels, boxes = self._refinement_prompts(input_points, input_labels, input_boxes, previous)
            masks, iou = decode(points, labels, boxes, previous, True)
        if refinements and not multimask_output:
            best = iou.argmax(dim=-1, keepdim=True)
            masks = torch.gather(masks, 2, best[..., None, None].expand(-1, -1, 1, *masks.shape[-2:]))
            iou = torch.gather(iou, 2, best)
        return UltraSamImageSegmentationOutput(
            iou_scores=iou,
            pred_masks=masks,
            first_pass_iou_scores=first_iou if refinements else None,
            first_pass_pred_masks=first_masks if refinements else None,
            vision_hidden_states=vision_hidden_states,
            vision_attentions=vision_attentions,
            image_embeddings=image_embeddings,
        )


def sigmoid_focal_loss_elementwise(logits, targets, alpha: float = 0.25, gamma: float = 2.0):
    """Unreduced sigmoid focal loss (Lin et al.): the paper's loss for both its masks and its classification head
    (the mask losses in `ultrasam_hf.training.losses` reduce it per mask)."""
    targets = targets.to(logits.dtype)
    probability = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = probability * targets + (1 - probability) * (1 - targets)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return loss


class UltraSamForPromptedClassification(UltraSamModel):
    r"""
    UltraSam with the paper's prompted-classification head: per prompt, the concatenation of the decoder's mask
    token 0, the mean of the decoder-updated image tokens and the mean-pooled encoder features before the neck goes
    through a 2-layer MLP. Masks are returned as well, so segmentation and classification train jointly.

    labels (`torch.LongTensor` of shape `(batch_size, point_batch_size)`, or multi-hot
    `(batch_size, point_batch_size, num_labels)` with `classification_loss="focal"`).
    """

    def __init__(self, config: UltraSamConfig):
        super().__init__(config)
        token_size = config.mask_decoder_config.hidden_size
        in_features = 2 * token_size + config.vision_config.hidden_size
        self.classifier = nn.Sequential(
            nn.Linear(in_features, config.classifier_hidden_size),
            nn.ReLU(),
            nn.Linear(config.classifier_hidden_size, config.num_labels),
        )
        self.post_init()

    @contextmanager
    def _capture_features(self):
        """Record the encoder features entering the neck and the last decoder pass's tokens, without touching SAM's
        modules."""
        captured = {}
        hooks = [
            self.vision_encoder.neck.register_forward_pre_hook(lambda module, args: captured.__setitem__("encoder", args[0])),
            self.mask_decoder.transformer.register_forward_hook(
                lambda module, args, output: captured.__setitem__("decoder", output)
            ),
        ]
        try:
            yield captured
        finally:
            for hook in hooks:
                hook.remove()

    def forward(self, pixel_values=None, labels=None, image_embeddings=None, encoder_features=None, **kwargs):
        r"""
        encoder_features (`torch.Tensor` of shape `(batch_size, hidden_size)`, *optional*):
            Mean-pooled encoder features before the neck; required with `image_embeddings` (no encoder pass).
        """
        if image_embeddings is not None and encoder_features is None:
            raise ValueError("With image_embeddings, also pass encoder_features (pooled features before the neck).")
        with self._capture_features() as captured:
            outputs = super().forward(pixel_values=pixel_values, image_embeddings=image_embeddings, **kwargs)
        if encoder_features is None:
            encoder_features = captured["encoder"].mean(dim=(1, 2))  # channels-last (B, H, W, C)
        tokens, image_tokens = captured["decoder"][0], captured["decoder"][1]
        batch, prompts = outputs.iou_scores.shape[:2]
        mask_token = tokens[..., 1, :].reshape(batch, prompts, -1)  # token 0 is the IoU token
        image_summary = image_tokens.mean(dim=-2).reshape(batch, prompts, -1)
        pooled = encoder_features[:, None, :].expand(batch, prompts, -1)
        logits = self.classifier(torch.cat([mask_token, image_summary, pooled], dim=-1))

        loss = None
        if labels is not None:
            if self.config.classification_loss == "focal":
                targets = labels.to(logits.dtype)
                if targets.ndim == logits.ndim - 1:
                    targets = F.one_hot(labels.long(), self.config.num_labels).to(logits.dtype)
                loss = sigmoid_focal_loss_elementwise(logits, targets).mean()
            else:
                loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1).long())
        return UltraSamPromptedClassificationOutput(loss=loss, logits=logits, **outputs)


__all__ = [
    "UltraSamModel",
    "UltraSamForPromptedClassification",
    "UltraSamPreTrainedModel",
    "UltraSamImageSegmentationOutput",
    "UltraSamPromptedClassificationOutput",
    "boxes_from_mask_logits",
]
