"""UltraSam's mask losses: focal (alpha 0.25, gamma 2) x20 + dice x1 + MSE(predicted IoU, actual IoU) x1, on the
multimask output with the highest IoU to the ground truth, at the decoder's low-resolution grid.

Shapes: `pred_masks` `(N, M, H, W)` logits (N prompts, M candidate masks), `iou_scores` `(N, M)`, `targets` `(N, H, W)`
binary. Every term is a mean over prompts; focal is also a mean over pixels (mmdet's `FocalLoss`, reduction mean).
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..models.modeling_ultrasam import sigmoid_focal_loss_elementwise


@dataclass
class LossWeights:
    focal: float = 20.0
    dice: float = 1.0
    iou: float = 1.0
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0
    # The paper regresses the predicted IoU of the chosen mask only; SAM regresses every candidate's, which is what
    # ranking multimask outputs (and automatic mask generation's IoU threshold) needs.
    iou_all_masks: bool = False


def sigmoid_focal_loss(
    logits: torch.Tensor, targets: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0
) -> torch.Tensor:
    """Per-mask mean sigmoid focal loss (Lin et al. 2017): `(N, H, W)` -> `(N,)`."""
    return sigmoid_focal_loss_elementwise(logits, targets, alpha, gamma).flatten(1).mean(dim=1)


def dice_loss(logits: torch.Tensor, targets: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """Per-mask soft dice loss `1 - (2|p t| + s) / (|p| + |t| + s)` on sigmoid probabilities: `(N, H, W)` -> `(N,)`."""
    probability = logits.sigmoid().flatten(1)
    targets = targets.to(probability.dtype).flatten(1)
    intersection = (probability * targets).sum(dim=1)
    return 1 - (2 * intersection + smooth) / (probability.sum(dim=1) + targets.sum(dim=1) + smooth)


def mask_iou(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """IoU of `logits > 0` with binary targets, `(N, M, H, W)` x `(N, H, W)` -> `(N, M)` (1 when both are empty)."""
    predicted = (logits > 0).flatten(2)
    targets = targets.bool().flatten(1)[:, None, :]
    intersection = (predicted & targets).sum(-1).float()
    union = (predicted | targets).sum(-1).float()
    return torch.where(union > 0, intersection / union.clamp(min=1), torch.ones_like(union))


def best_mask_loss(
    pred_masks: torch.Tensor, iou_scores: torch.Tensor, targets: torch.Tensor, weights: LossWeights = LossWeights()
) -> dict:
    """The loss of the candidate mask with the highest actual IoU to the ground truth.

    Returns a dict of per-prompt tensors `(N,)`: `loss` (weighted sum), `focal`, `dice`, `iou_mse`, `iou` (the
    actual IoU of the chosen mask, detached) and `best` (its index among the M candidates).
    """
    if pred_masks.ndim != 4 or targets.ndim != 3 or iou_scores.shape != pred_masks.shape[:2]:
        raise ValueError(
            f"expected pred_masks (N, M, H, W), iou_scores (N, M), targets (N, H, W); got {tuple(pred_masks.shape)}, "
            f"{tuple(iou_scores.shape)}, {tuple(targets.shape)}"
        )
    if pred_masks.shape[-2:] != targets.shape[-2:]:
        targets = (
            F.interpolate(targets[:, None].float(), size=pred_masks.shape[-2:], mode="bilinear", align_corners=False)[
                :, 0
            ]
            > 0.5
        )
    with torch.no_grad():
        actual = mask_iou(pred_masks, targets)
        best = actual.argmax(dim=1)
    rows = torch.arange(pred_masks.shape[0], device=pred_masks.device)
    logits = pred_masks[rows, best].float()
    focal = sigmoid_focal_loss(logits, targets, weights.focal_alpha, weights.focal_gamma)
    dice = dice_loss(logits, targets)
    actual_best = actual[rows, best]
    if weights.iou_all_masks:
        iou_mse = ((iou_scores.float() - actual) ** 2).mean(dim=1)
    else:
        iou_mse = (iou_scores[rows, best].float() - actual_best) ** 2
    loss = weights.focal * focal + weights.dice * dice + weights.iou * iou_mse
    return {"loss": loss, "focal": focal, "dice": dice, "iou_mse": iou_mse, "iou": actual_best, "best": best}


__all__ = ["LossWeights", "best_mask_loss", "dice_loss", "mask_iou", "sigmoid_focal_loss"]
