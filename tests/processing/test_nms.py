"""Pure-torch batched_nms against a brute-force reference."""

import torch

from ultrasam_hf.models.nms import batched_nms, box_iou


def _iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _reference(boxes, scores, idxs, threshold):
    order = sorted(range(len(boxes)), key=lambda i: -scores[i])
    keep = []
    for i in order:
        if all(idxs[i] != idxs[k] or _iou(boxes[i], boxes[k]) <= threshold for k in keep):
            keep.append(i)
    return keep


def _random_boxes(generator, n):
    xy = torch.rand(n, 2, generator=generator) * 100 - 20
    wh = torch.rand(n, 2, generator=generator) * 40 + 1
    return torch.cat([xy, xy + wh], dim=1)


def test_matches_brute_force_reference():
    generator = torch.Generator().manual_seed(0)
    for trial in range(20):
        n = 1 + trial * 7
        boxes = _random_boxes(generator, n)
        scores = torch.rand(n, generator=generator)
        idxs = torch.randint(0, 3, (n,), generator=generator)
        for threshold in (0.0, 0.3, 0.7, 1.0):
            kept = batched_nms(boxes, scores, idxs, threshold).tolist()
            assert kept == _reference(boxes.tolist(), scores.tolist(), idxs.tolist(), threshold)


def test_categories_never_suppress_each_other():
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0]] * 2)
    assert batched_nms(boxes, torch.tensor([0.9, 0.8]), torch.tensor([0, 1]), 0.5).tolist() == [0, 1]
    assert batched_nms(boxes, torch.tensor([0.8, 0.9]), torch.tensor([0, 0]), 0.5).tolist() == [1]


def test_empty_input():
    kept = batched_nms(torch.zeros(0, 4), torch.zeros(0), torch.zeros(0), 0.5)
    assert kept.dtype == torch.long and kept.numel() == 0


def test_box_iou():
    a = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
    b = torch.tensor([[1.0, 1.0, 3.0, 3.0], [5.0, 5.0, 6.0, 6.0], [0.0, 0.0, 2.0, 2.0]])
    torch.testing.assert_close(box_iou(a, b), torch.tensor([[1 / 7, 0.0, 1.0]]))
