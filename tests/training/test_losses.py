import math

import pytest
import torch

from ultrasam_hf.training.losses import LossWeights, best_mask_loss, dice_loss, mask_iou, sigmoid_focal_loss


def test_focal_loss_matches_hand_computation():
    logits = torch.tensor([[[0.0, 2.0]]])  # one mask, 1x2 pixels
    targets = torch.tensor([[[1.0, 0.0]]])
    # pixel 0: p=0.5, target 1: ce=ln2, (1-p_t)^2=0.25, alpha=0.25
    p1 = 1 / (1 + math.exp(-2.0))
    pixel0 = 0.25 * math.log(2) * 0.25
    # pixel 1: p=sigmoid(2), target 0: ce=-ln(1-p), (1-p_t)^2 = p^2, weight 0.75
    pixel1 = 0.75 * -math.log(1 - p1) * p1**2
    assert sigmoid_focal_loss(logits, targets).item() == pytest.approx((pixel0 + pixel1) / 2, rel=1e-6)


def test_dice_loss_perfect_and_disjoint():
    target = torch.zeros(1, 4, 4)
    target[0, :2] = 1
    perfect = torch.where(target.bool(), 100.0, -100.0)
    assert dice_loss(perfect, target).item() == pytest.approx(0.0, abs=1e-6)
    disjoint = -perfect
    # p sums to 8 outside the target, intersection 0: 1 - 1 / (8 + 8 + 1)
    assert dice_loss(disjoint, target).item() == pytest.approx(1 - 1 / 17, abs=1e-6)


def test_mask_iou_values():
    target = torch.zeros(1, 4, 4, dtype=torch.bool)
    target[0, :2, :2] = True  # 4 pixels
    logits = torch.full((1, 3, 4, 4), -1.0)
    logits[0, 0, :2, :2] = 1  # exact
    logits[0, 1, :2, :] = 1  # 8 pixels, 4 shared -> 0.5
    iou = mask_iou(logits, target)
    assert iou.tolist() == [[1.0, 0.5, 0.0]]
    empty = mask_iou(torch.full((1, 1, 4, 4), -1.0), torch.zeros(1, 4, 4))
    assert empty.item() == 1.0


def test_best_mask_loss_uses_best_iou_mask_and_weights():
    target = torch.zeros(1, 8, 8)
    target[0, 2:6, 2:6] = 1
    good = torch.where(target.bool(), 5.0, -5.0)[0]
    bad = -good
    pred = torch.stack([bad, good, bad])[None]  # (1, 3, 8, 8)
    scores = torch.tensor([[0.9, 0.3, 0.1]], requires_grad=True)
    terms = best_mask_loss(pred, scores, target)
    assert terms["best"].item() == 1
    assert terms["iou"].item() == 1.0
    assert terms["iou_mse"].item() == pytest.approx((0.3 - 1.0) ** 2)
    expected = 20 * sigmoid_focal_loss(good[None], target) + dice_loss(good[None], target) + (0.3 - 1.0) ** 2
    assert terms["loss"].item() == pytest.approx(expected.item(), rel=1e-6)
    weighted = best_mask_loss(pred, scores, target, LossWeights(focal=0, dice=0, iou=2))
    assert weighted["loss"].item() == pytest.approx(2 * (0.3 - 1.0) ** 2)
    weighted["loss"].sum().backward()
    assert scores.grad[0, 0] == 0 and scores.grad[0, 1] != 0  # only the chosen mask's IoU prediction trains


def test_best_mask_loss_resizes_targets_and_checks_shapes():
    target = torch.zeros(2, 16, 16)
    target[:, 4:12, 4:12] = 1
    pred = torch.zeros(2, 1, 8, 8, requires_grad=True)
    terms = best_mask_loss(pred, torch.zeros(2, 1), target)
    assert terms["loss"].shape == (2,)
    with pytest.raises(ValueError, match="expected pred_masks"):
        best_mask_loss(pred[:, 0], torch.zeros(2, 1), target)
