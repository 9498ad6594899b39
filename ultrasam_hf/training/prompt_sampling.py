"""Training prompts, sampled on the accelerator in one batched call: UltraSam's box-or-point per instance, and
SAM-style corrective clicks.

Masks arrive on the decoder's low-resolution grid (`(N, g, g)`, g = 256 for vit-b and lite), the grid the loss is
computed on; prompts are returned in model-input pixels (`s = input_size / g` input pixels per grid cell, SAM's
pixel-centre convention):

- with probability `point_probability` (0.5) a point: one uniformly random mask cell, then a uniform position inside
  that cell (the paper's sub-pixel jitter); `point_sampling="interior"` instead weights cells by their (chessboard)
  distance to the background, so clicks land near the middle of the structure, as users place them; `"mixed"`
  draws half of the points each way;
- otherwise a box: the tight box with each corner moved by U(-5 %, 5 %) of the box width / height, clipped to the
  image.

Everything random is drawn from one `torch.Generator` on the masks' device (its state is checkpointed by the
trainer), so sampling is seeded and needs no host round trip.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

BOX, POINT = 0, 1
POINT_SAMPLINGS = ("uniform", "interior", "mixed")


def select_instances(num_instances: int, rng: np.random.Generator, max_instances: int) -> np.ndarray:
    """Indices of at most `max_instances` instances, a random subset (in random order) when there are more."""
    if max_instances <= 0 or num_instances <= max_instances:
        return np.arange(num_instances)
    return np.sort(rng.choice(num_instances, size=max_instances, replace=False))


def tight_boxes(masks: torch.Tensor) -> torch.Tensor:
    """Inclusive tight boxes `(N, 4)` xyxy in grid cells of non-empty `(N, H, W)` masks."""
    rows, cols = masks.any(dim=2), masks.any(dim=1)
    height, width = masks.shape[-2:]
    y0 = rows.float().argmax(dim=1)
    y1 = height - 1 - rows.flip(1).float().argmax(dim=1)
    x0 = cols.float().argmax(dim=1)
    x1 = width - 1 - cols.flip(1).float().argmax(dim=1)
    return torch.stack([x0, y0, x1, y1], dim=1).float()


def interior_weights(masks: torch.Tensor, max_distance: int = 32) -> torch.Tensor:
    """`1 + ` the chessboard distance of each mask cell to the background (capped), 0 outside the mask.

    Repeated 3x3 erosions; outside the image does not count as background (as a Euclidean distance transform).
    """
    current = masks[:, None].float()
    weights = current.clone()
    for _ in range(max_distance):
        current = -F.max_pool2d(-current, kernel_size=3, stride=1, padding=1)
        if not bool(current.any()):
            break
        weights += current
    return weights[:, 0]


def sample_points(masks: torch.Tensor, generator: torch.Generator | None, sampling: str = "uniform") -> torch.Tensor:
    """One point per non-empty mask, `(N, 2)` xy in grid cells (continuous: a uniform position inside the cell)."""
    if sampling not in POINT_SAMPLINGS:
        raise ValueError(f"point sampling must be one of {POINT_SAMPLINGS}, got {sampling!r}")
    weights = masks.float()
    if sampling != "uniform":
        interior = interior_weights(masks)
        if sampling == "mixed":
            use = torch.rand(masks.shape[0], generator=generator, device=masks.device) < 0.5
            interior = torch.where(use[:, None, None], interior, weights)
        weights = interior
    width = masks.shape[-1]
    index = torch.multinomial(weights.flatten(1), 1, generator=generator)[:, 0]
    cells = torch.stack([index % width, index // width], dim=1).float()
    jitter = torch.rand(cells.shape, generator=generator, device=cells.device) - 0.5
    return cells + jitter


def sample_prompts(
    masks: torch.Tensor,
    generator: torch.Generator | None,
    input_size: int,
    point_probability: float = 0.5,
    box_jitter: float = 0.05,
    point_sampling: str = "uniform",
    valid_sizes: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One UltraSam training prompt per non-empty mask.

    Args:
        masks: `(N, g, g)` bool, on the low-resolution grid.
        generator: a `torch.Generator` on `masks.device` (or None for the global RNG).
        input_size: model-input size in pixels (the grid covers the padded input).
        valid_sizes: `(N, 2)` (h, w) of the resized image inside the padded input; boxes are clipped to it.

    Returns:
        kinds `(N,)` (`BOX` / `POINT`) and coordinates `(N, 4)` in model-input pixels: `[x0, y0, x1, y1]` for a box,
        `[x, y, 0, 0]` for a point.
    """
    if not 0.0 <= box_jitter <= 0.5:
        raise ValueError(f"box jitter must be in [0, 0.5], got {box_jitter!r}")
    count, device = masks.shape[0], masks.device
    scale = input_size / masks.shape[-1]
    kinds = torch.where(torch.rand(count, generator=generator, device=device) < point_probability, POINT, BOX)

    boxes = tight_boxes(masks)
    # cell -> input pixels: a cell covers input pixels [x * s, (x + 1) * s - 1]
    boxes = torch.cat([boxes[:, :2] * scale, (boxes[:, 2:] + 1) * scale - 1], dim=1)
    extent = (boxes[:, 2:] - boxes[:, :2]).repeat(1, 2)
    offsets = (torch.rand(count, 4, generator=generator, device=device) * 2 - 1) * box_jitter * extent
    boxes = boxes + offsets
    limit = torch.full((count, 2), input_size - 1.0, device=device)
    if valid_sizes is not None:
        limit = valid_sizes.to(device).flip(-1).float() - 1  # (w - 1, h - 1)
    boxes = torch.minimum(boxes.clamp(min=0), limit.repeat(1, 2))

    points = (sample_points(masks, generator, point_sampling) + 0.5) * scale - 0.5
    points = torch.cat([points, torch.zeros_like(points)], dim=1)
    return kinds, torch.where((kinds == POINT)[:, None], points, boxes)


def sample_correction_clicks(
    pred_logits: torch.Tensor, targets: torch.Tensor, generator: torch.Generator | None, input_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """One corrective click per mask from its error region (uniformly over FN ∪ FP cells).

    Args:
        pred_logits: `(N, g, g)` low-resolution logits of the previous prediction.
        targets: `(N, g, g)` binary ground truth on the same grid.
        generator: a `torch.Generator` on the logits' device (its state is checkpointed by the trainer).
        input_size: model-input size in pixels; the click is the centre of the chosen cell in those pixels.

    Returns:
        points `(N, 1, 2)` xy in model-input pixels and labels `(N, 1)`: 1 false negative, 0 false positive, -1 none.
    """
    predicted = pred_logits.detach() > 0
    targets = targets.bool()
    false_negative = targets & ~predicted
    error = (false_negative | (predicted & ~targets)).flatten(1)
    has_error = error.any(dim=1)
    weights = error.float() + (~has_error)[:, None].float()  # uniform over all cells where there is no error
    index = torch.multinomial(weights, 1, generator=generator)[:, 0]
    width = pred_logits.shape[-1]
    scale = input_size / width
    y, x = index // width, index % width
    points = torch.stack([(x.float() + 0.5) * scale - 0.5, (y.float() + 0.5) * scale - 0.5], dim=-1)[:, None, :]
    labels = false_negative.flatten(1).gather(1, index[:, None]).long()
    labels = torch.where(has_error[:, None], labels, torch.full_like(labels, -1))
    return points, labels


__all__ = [
    "BOX",
    "POINT",
    "POINT_SAMPLINGS",
    "interior_weights",
    "sample_correction_clicks",
    "sample_points",
    "sample_prompts",
    "select_instances",
    "tight_boxes",
]
