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
"""Pure-torch non-maximum suppression, a drop-in for `torchvision.ops.batched_nms` (no torchvision needed)."""

import torch


def box_iou(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    """Pairwise IoU of `Nx4` and `Mx4` XYXY boxes → `NxM`."""
    area1 = (boxes1[:, 2] - boxes1[:, 0]).clamp(min=0) * (boxes1[:, 3] - boxes1[:, 1]).clamp(min=0)
    area2 = (boxes2[:, 2] - boxes2[:, 0]).clamp(min=0) * (boxes2[:, 3] - boxes2[:, 1]).clamp(min=0)
    top_left = torch.max(boxes1[:, None, :2], boxes2[None, :, :2])
    bottom_right = torch.min(boxes1[:, None, 2:], boxes2[None, :, 2:])
    intersection = (bottom_right - top_left).clamp(min=0).prod(dim=-1)
    union = area1[:, None] + area2[None, :] - intersection
    return torch.where(union > 0, intersection / union.clamp(min=torch.finfo(union.dtype).tiny), 0.0)


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """
    Greedy NMS: keep the highest-scoring box, drop every box whose IoU with it is `> iou_threshold`, repeat.

    Args:
        boxes (`torch.Tensor` of shape `(N, 4)`): XYXY boxes.
        scores (`torch.Tensor` of shape `(N,)`): box scores.
        iou_threshold (`float`): boxes overlapping a kept box by more than this are discarded.

    Returns:
        `torch.LongTensor`: indices of the kept boxes, by decreasing score.
    """
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.long, device=boxes.device)
    order = torch.argsort(scores, descending=True, stable=True)
    overlaps = (box_iou(boxes[order].float(), boxes[order].float()) > iou_threshold).cpu()
    suppressed = torch.zeros(len(order), dtype=torch.bool)
    keep = []
    for i in range(len(order)):
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= overlaps[i]
    return order[torch.tensor(keep, dtype=torch.long, device=order.device)]


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """
    NMS run independently per category `idxs` (boxes of different categories never suppress each other), with
    the signature and result of `torchvision.ops.batched_nms`.

    Args:
        boxes (`torch.Tensor` of shape `(N, 4)`): XYXY boxes.
        scores (`torch.Tensor` of shape `(N,)`): box scores.
        idxs (`torch.Tensor` of shape `(N,)`): category of each box.
        iou_threshold (`float`): IoU above which a lower-scoring box of the same category is discarded.

    Returns:
        `torch.LongTensor`: indices of the kept boxes, by decreasing score.
    """
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.long, device=boxes.device)
    boxes = boxes.float()
    # Shift each category to its own region so that boxes of different categories cannot overlap.
    offsets = idxs.to(boxes) * (boxes.max() - boxes.min() + 1)
    return nms(boxes + offsets[:, None], scores, iou_threshold)


__all__ = ["batched_nms", "box_iou", "nms"]
