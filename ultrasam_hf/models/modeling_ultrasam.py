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
"""UltraSam models. The diff from `SamModel` is small and lives here:

- the vision encoder is SAM's ViT (its attention folds the relative-position bias into queries and keys,
  `modeling_vit.py`), LiteMedSAM's TinyViT or the distilled nano encoder (`config.vision_config.encoder_type`);
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
from transformers.models.sam.modeling_sam import (
    SamImageSegmentationOutput,
    SamMaskDecoder,
    SamModel,
    SamPositionalEmbedding,
    SamPreTrainedModel,
    SamPromptEncoder,
    SamVisionEncoderOutput,
)
from transformers.processing_utils import Unpack
from transformers.utils import ModelOutput
from transformers.utils.generic import TransformersKwargs, can_return_tuple, merge_with_config_defaults
from transformers.utils.output_capturing import capture_outputs

from .configuration_ultrasam import UltraSamConfig
from .modeling_nano import UltraSamNanoEncoder
from .modeling_tinyvit import UltraSamTinyVitEncoder
from .modeling_vit import UltraSamVisionEncoder
from .saving import UltraSamSavingMixin


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
class UltraSamPromptedClassificationOutput(ModelOutput):
    r"""
    loss (`torch.Tensor`, *optional*):
        Classification loss, returned when `labels` is given.
    logits (`torch.Tensor` of shape `(batch_size, point_batch_size, num_labels)`):
        Per-prompt class logits.

    The other fields are those of [`UltraSamImageSegmentationOutput`], in the same order.
    """

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    iou_scores: torch.Tensor | None = None
    pred_masks: torch.Tensor | None = None
    vision_hidden_states: tuple[torch.Tensor, ...] | None = None
    vision_attentions: tuple[torch.Tensor, ...] | None = None
    mask_decoder_attentions: tuple[torch.Tensor, ...] | None = None
    first_pass_iou_scores: torch.Tensor | None = None
    first_pass_pred_masks: torch.Tensor | None = None
    image_embeddings: torch.Tensor | None = None


class UltraSamPreTrainedModel(UltraSamSavingMixin, SamPreTrainedModel):
    config: UltraSamConfig
    base_model_prefix = "ultrasam"
    _no_split_modules = ["SamVisionLayer", "UltraSamTinyVitBlock"]


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
    _extra_auto_classes = ("AutoModelForMaskGeneration",)

    def __init__(self, config: UltraSamConfig):
        # SamModel.__init__ would always build a ViT; build the same modules with the configured encoder instead.
        UltraSamPreTrainedModel.__init__(self, config)
        self.shared_image_embedding = SamPositionalEmbedding(config.vision_config)
        if config.vision_config.encoder_type == "tiny_vit":
            self.vision_encoder = UltraSamTinyVitEncoder(config.vision_config)
        elif config.vision_config.encoder_type == "nano":
            self.vision_encoder = UltraSamNanoEncoder(config.vision_config)
        else:
            self.vision_encoder = UltraSamVisionEncoder(config.vision_config)
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
            fold(input_points),
            fold(input_labels),
            fold(input_boxes),
            input_masks.reshape(batch * prompts, 1, *input_masks.shape[2:]),
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

    def _check_inputs(self, pixel_values, image_embeddings, input_points, input_labels, input_boxes, input_masks):
        """SAM's input checks (`SamModel.forward`), plus the shape of per-prompt mask prompts."""
        if (pixel_values is None) == (image_embeddings is None):
            raise ValueError("Pass exactly one of pixel_values and image_embeddings.")
        if input_points is not None and input_points.ndim != 4:
            raise ValueError(
                "input_points must be a 4D tensor (batch_size, point_batch_size, points_per_prompt, 2), "
                f"got shape {tuple(input_points.shape)}."
            )
        if input_labels is not None and input_points is not None and input_labels.shape != input_points.shape[:-1]:
            raise ValueError(
                f"input_labels of shape {tuple(input_labels.shape)} do not match input_points of shape "
                f"{tuple(input_points.shape)}."
            )
        if input_boxes is not None and input_boxes.ndim != 3:
            raise ValueError(
                f"input_boxes must be a 3D tensor (batch_size, num_boxes, 4), got shape {tuple(input_boxes.shape)}."
            )
        if input_points is not None and input_boxes is not None and input_points.shape[1] != input_boxes.shape[1]:
            raise ValueError(
                "Give as many boxes as point prompts per image, got "
                f"{input_boxes.shape[1]} boxes and {input_points.shape[1]} point prompts."
            )
        batch = pixel_values.shape[0] if pixel_values is not None else image_embeddings.shape[0]
        for name, prompt in (("input_points", input_points), ("input_boxes", input_boxes)):
            if prompt is not None and prompt.shape[0] != batch:
                raise ValueError(
                    f"{name} has batch size {prompt.shape[0]}, the images {batch}: prompts are given per image, "
                    "(batch_size, point_batch_size, ...)."
                )
        if input_masks is not None and input_masks.ndim not in (3, 4):
            raise ValueError(
                "input_masks must be (batch_size, height, width) or "
                f"(batch_size, 1 or point_batch_size, height, width), got shape {tuple(input_masks.shape)}."
            )
        if input_masks is not None and input_masks.ndim == 4 and input_masks.shape[1] > 1:
            prompts = input_points if input_points is not None else input_boxes
            if prompts is not None and prompts.shape[1] != input_masks.shape[1]:
                raise ValueError(
                    f"Per-prompt input_masks give {input_masks.shape[1]} masks for {prompts.shape[1]} prompts "
                    "per image."
                )

    def cascade(self, decode, input_points, input_labels, input_boxes, input_masks, multimask_output: bool):
        """The decoder passes of `forward` around a single-pass `decode(points, labels, boxes, masks, multimask) ->
        (masks, iou)` (the ONNX Runtime backend passes its own): the first pass, `num_mask_refinements` cascaded
        passes, the best mask kept when `multimask_output` is off. Returns the final masks and IoU, then the first
        pass's."""
        refinements = self.config.num_mask_refinements
        masks, iou = decode(input_points, input_labels, input_boxes, input_masks, multimask_output and not refinements)
        first_masks, first_iou = masks, iou
        for _ in range(refinements):
            best = iou.argmax(dim=-1)
            previous = torch.gather(masks, 2, best[..., None, None, None].expand(-1, -1, 1, *masks.shape[-2:]))
            previous = previous.squeeze(2)
            points, labels, boxes = self._refinement_prompts(input_points, input_labels, input_boxes, previous)
            masks, iou = decode(points, labels, boxes, previous, True)
        if refinements and not multimask_output:
            best = iou.argmax(dim=-1, keepdim=True)
            masks = torch.gather(masks, 2, best[..., None, None].expand(-1, -1, 1, *masks.shape[-2:]))
            iou = torch.gather(iou, 2, best)
        return masks, iou, first_masks, first_iou

    @merge_with_config_defaults
    @capture_outputs
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
        **kwargs: Unpack[TransformersKwargs],
    ) -> UltraSamImageSegmentationOutput:
        r"""
        Arguments as [`SamModel.forward`], except:

        input_masks (`torch.Tensor` of shape `(batch_size, 1 or point_batch_size, height, width)`, *optional*):
            Low-resolution mask logits used as dense prompt, per image (as SAM) or per prompt.
        multimask_output (`bool`, *optional*, defaults to `True`):
            Without refinement, as SAM. With refinement, the first pass always predicts a single mask and the last
            pass always predicts the multimask outputs; `False` keeps the one with the highest predicted IoU.

        With `output_attentions`, `mask_decoder_attentions` holds those of every decoder pass, first pass first.
        """
        self._check_inputs(pixel_values, image_embeddings, input_points, input_labels, input_boxes, input_masks)
        vision_hidden_states = vision_attentions = None
        if pixel_values is not None:
            vision_outputs: SamVisionEncoderOutput = self.vision_encoder(pixel_values, **kwargs)
            image_embeddings = vision_outputs.last_hidden_state
            vision_hidden_states, vision_attentions = vision_outputs.hidden_states, vision_outputs.attentions
        if input_points is not None and input_labels is None:
            input_labels = torch.ones_like(input_points[..., 0], dtype=torch.int)
        positional = self.get_image_wide_positional_embeddings().repeat(image_embeddings.shape[0], 1, 1, 1)

        def decode(points, labels, boxes, masks, multimask):
            return self._decode(
                image_embeddings,
                positional,
                points,
                labels,
                boxes,
                masks,
                multimask,
                attention_similarity,
                target_embedding,
            )

        refinements = self.config.num_mask_refinements
        masks, iou, first_masks, first_iou = self.cascade(
            decode, input_points, input_labels, input_boxes, input_masks, multimask_output
        )
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

    _extra_auto_classes = ()

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
            self.vision_encoder.neck.register_forward_pre_hook(
                lambda module, args: captured.__setitem__("encoder", args[0])
            ),
            self.mask_decoder.transformer.register_forward_hook(
                lambda module, args, output: captured.__setitem__("decoder", output)
            ),
        ]
        try:
            yield captured
        finally:
            for hook in hooks:
                hook.remove()

    @can_return_tuple
    def forward(
        self,
        pixel_values: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        image_embeddings: torch.Tensor | None = None,
        encoder_features: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> UltraSamPromptedClassificationOutput:
        r"""
        encoder_features (`torch.Tensor` of shape `(batch_size, hidden_size)`, *optional*):
            Mean-pooled encoder features before the neck; required with `image_embeddings` (no encoder pass).

        The prompts and other arguments are those of [`UltraSamModel.forward`].
        """
        if image_embeddings is not None and encoder_features is None:
            raise ValueError("With image_embeddings, also pass encoder_features (pooled features before the neck).")
        with self._capture_features() as captured:
            outputs = super().forward(
                pixel_values=pixel_values, image_embeddings=image_embeddings, return_dict=True, **kwargs
            )
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
