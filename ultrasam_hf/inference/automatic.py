"""Automatic mask generation with `UltraSamPredictor`: SAM's grid of point prompts, filtered and de-duplicated.

Unlike transformers' `pipeline("mask-generation")` (which also runs, see the README), it reuses the predictor's
image embedding and keeps, per point, the mask the checkpoint was trained to output (`multimask_output_default`):
the lite ultrasound checkpoint has one trained mask token only.
"""

from dataclasses import dataclass

import numpy as np
import torch

from ..evaluation.prompts import box_from_mask
from ..models.nms import nms


@dataclass
class AutomaticMask:
    mask: np.ndarray  # (H, W) bool
    score: float  # predicted IoU
    stability: float
    point: tuple  # the (x, y) grid point that prompted it


def point_grid(height: int, width: int, points_per_side: int) -> np.ndarray:
    """`points_per_side**2` `(x, y)` points at the centres of an even grid over the image (SAM's grid)."""
    offsets = (np.arange(points_per_side) + 0.5) / points_per_side
    xs, ys = np.meshgrid(offsets * width, offsets * height)
    return np.stack([xs.ravel(), ys.ravel()], axis=-1)


def stability_score(logits: torch.Tensor, offset: float = 1.0) -> torch.Tensor:
    """IoU of the masks thresholded at `+offset` and `-offset` (SAM's stability score), per leading index."""
    high = (logits > offset).flatten(1).sum(-1).float()
    low = (logits > -offset).flatten(1).sum(-1).float()
    return torch.where(low > 0, high / low.clamp(min=1), torch.zeros_like(low))


def generate_masks(
    predictor,
    points_per_side: int = 16,
    points_per_batch: int = 32,
    pred_iou_thresh: float = 0.5,
    stability_score_thresh: float = 0.8,
    nms_thresh: float = 0.7,
    min_area: int = 64,
    max_masks: int | None = None,
) -> list[AutomaticMask]:
    """
    Masks of everything the model segments from a grid of single positive clicks on the image set by `set_image`.

    Args:
        points_per_side (`int`): the grid has `points_per_side**2` clicks.
        points_per_batch (`int`): clicks decoded at once (memory: each is a full-size float mask).
        pred_iou_thresh (`float`): drop masks whose predicted IoU is lower.
        stability_score_thresh (`float`): drop masks whose stability score (logit offset 1) is lower.
        nms_thresh (`float`): of two masks whose boxes overlap more than this IoU, drop the lower-scoring one.
        min_area (`int`): drop masks with fewer pixels.
        max_masks (`int`, *optional*): keep at most this many, best first.

    Returns:
        `list[AutomaticMask]`, best predicted IoU first.
    """
    if predictor.original_size is None:
        raise ValueError("Call set_image(image) before generate_masks().")
    if points_per_side < 1 or points_per_batch < 1:
        raise ValueError("points_per_side and points_per_batch must be at least 1.")
    height, width = predictor.original_size
    grid = point_grid(height, width, points_per_side)
    candidates = []
    for start in range(0, len(grid), points_per_batch):
        points = grid[start : start + points_per_batch]
        logits, scores, _ = predictor.predict(
            points=points[:, None, :], labels=np.ones((len(points), 1)), return_logits=True
        )
        best = scores.argmax(axis=1)  # points are ambiguous: the best predicted IoU (`choose_mask`)
        chosen = torch.from_numpy(logits[np.arange(len(points)), best])
        stability = stability_score(chosen).numpy()
        for index in range(len(points)):
            score, mask = float(scores[index, best[index]]), chosen[index].numpy() > 0
            if score < pred_iou_thresh or stability[index] < stability_score_thresh or mask.sum() < min_area:
                continue
            candidates.append(AutomaticMask(mask, score, float(stability[index]), tuple(points[index])))
    if not candidates:
        return []
    boxes = torch.tensor([box_from_mask(candidate.mask) for candidate in candidates], dtype=torch.float32)
    keep = nms(boxes, torch.tensor([candidate.score for candidate in candidates]), nms_thresh).tolist()
    kept = sorted((candidates[i] for i in keep), key=lambda candidate: -candidate.score)
    return kept[:max_masks] if max_masks is not None else kept


__all__ = ["AutomaticMask", "generate_masks", "point_grid", "stability_score"]
