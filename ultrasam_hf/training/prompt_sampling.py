"""Training prompts: UltraSam's box-or-point sampling per instance, and SAM-style corrective clicks.

Instance prompts (numpy, reusing `ultrasam_hf.evaluation.prompts`) are sampled on the instance mask at its original
resolution and then scaled to model-input pixels like the processor scales prompts (`x * new_w / old_w`):

- with probability `point_probability` (0.5) a point: one uniformly random mask pixel plus U(-0.5, 0.5) sub-pixel
  jitter (`random_point(..., subpixel_jitter=True)`); `point_sampling="interior"` instead weights pixels by their
  distance to the background (clicks near the middle of the structure, as users place them);
- otherwise a box: the tight box with each corner moved by U(-5 %, 5 %) of the box width / height (`jittered_box`).

Corrective clicks (torch, batched, used inside the training forward): a pixel drawn uniformly from the error region
between the previous binary prediction and the ground truth on the low-resolution grid; label 1 (positive) when it is a
false negative, 0 (negative) when it is a false positive; label -1 (SAM's "not a point") when there is no error.
"""

from __future__ import annotations

import numpy as np
import torch

from ..evaluation.prompts import box_from_mask, centroid_point, jittered_box, random_point

BOX, POINT = 0, 1


def select_instances(num_instances: int, rng: np.random.Generator, max_instances: int) -> np.ndarray:
    """Indices of at most `max_instances` instances, a random subset (in random order) when there are more."""
    if max_instances <= 0 or num_instances <= max_instances:
        return np.arange(num_instances)
    return np.sort(rng.choice(num_instances, size=max_instances, replace=False))


def sample_training_prompt(
    mask: np.ndarray,
    rng: np.random.Generator,
    point_probability: float = 0.5,
    box_jitter: float = 0.05,
    point_sampling: str = "uniform",
) -> tuple[int, list[float]]:
    """One UltraSam training prompt for a non-empty `(H, W)` mask: `(POINT, [x, y])` or `(BOX, [x0, y0, x1, y1])`.

    `point_sampling`: "uniform" (the paper) or "interior" (pixels weighted by their distance to the background).
    """
    if rng.random() < point_probability:
        return POINT, list(random_point(mask, rng, subpixel_jitter=True, sampling=point_sampling))
    return BOX, jittered_box(mask, rng, fraction=box_jitter)


def evaluation_prompt(mask: np.ndarray, kind: str) -> list[float]:
    """The paper's test prompts: `"box"` -> tight box without jitter, `"point"` -> centroid (snapped inside)."""
    if kind == "box":
        return box_from_mask(mask)
    if kind == "point":
        return list(centroid_point(mask))
    raise ValueError(f"kind must be 'box' or 'point', got {kind!r}")


def scale_coordinates(coords, original_size: tuple[int, int], resized_size: tuple[int, int]) -> np.ndarray:
    """`(..., 2k)` xy coordinates from original pixels to resized (model-input) pixels, as SAM's processor does."""
    coords = np.asarray(coords, dtype=np.float32).copy()
    (old_h, old_w), (new_h, new_w) = original_size, resized_size
    coords[..., 0::2] *= new_w / old_w
    coords[..., 1::2] *= new_h / old_h
    return coords


def sample_correction_clicks(
    pred_logits: torch.Tensor, targets: torch.Tensor, generator: torch.Generator | None, input_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """One corrective click per mask from its error region (uniformly over FN ∪ FP pixels).

    Args:
        pred_logits: `(N, H, W)` low-resolution logits of the previous prediction.
        targets: `(N, H, W)` binary ground truth on the same grid.
        generator: CPU `torch.Generator` (its state is checkpointed by the trainer).
        input_size: model-input size in pixels; the click is the centre of the chosen low-res cell in those pixels.

    Returns:
        points `(N, 1, 2)` xy in model-input pixels and labels `(N, 1)`: 1 false negative, 0 false positive, -1 none.
    """
    predicted = (pred_logits > 0).detach().cpu()
    targets = targets.bool().cpu()
    false_negative = targets & ~predicted
    error = (false_negative | (predicted & ~targets)).flatten(1)
    has_error = error.any(dim=1)
    weights = error.float() + (~has_error)[:, None].float()  # uniform over all pixels where there is no error
    index = torch.multinomial(weights, 1, generator=generator)[:, 0]
    width = pred_logits.shape[-1]
    scale = input_size / width
    y, x = index // width, index % width
    points = torch.stack([(x.float() + 0.5) * scale - 0.5, (y.float() + 0.5) * scale - 0.5], dim=-1)[:, None, :]
    labels = false_negative.flatten(1).gather(1, index[:, None]).long()
    labels = torch.where(has_error[:, None], labels, torch.full_like(labels, -1))
    return points.to(pred_logits.device), labels.to(pred_logits.device)


__all__ = [
    "BOX",
    "POINT",
    "evaluation_prompt",
    "sample_correction_clicks",
    "sample_training_prompt",
    "scale_coordinates",
    "select_instances",
]
