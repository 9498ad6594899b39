"""Per-instance metrics on hand-made masks with values computed by hand."""

import math

import numpy as np
import pytest

from ultrasam_hf.evaluation.metrics import (
    dice,
    hausdorff95,
    iou,
    normalized_surface_dice,
    segmentation_metrics,
    surface,
)


def square(shape, top, left, size):
    mask = np.zeros(shape, dtype=bool)
    mask[top : top + size, left : left + size] = True
    return mask


def pixel(shape, y, x):
    mask = np.zeros(shape, dtype=bool)
    mask[y, x] = True
    return mask


def test_offset_squares_have_known_dice_and_iou():
    pred = square((10, 10), 0, 0, 4)
    target = square((10, 10), 0, 2, 4)  # overlap 4 x 2 = 8 pixels, 16 each
    assert dice(pred, target) == pytest.approx(0.5)
    assert iou(pred, target) == pytest.approx(8 / 24)


def test_both_empty_is_a_perfect_score():
    empty = np.zeros((4, 6), dtype=bool)
    assert segmentation_metrics(empty, empty) == {"dice": 1.0, "iou": 1.0, "nsd": 1.0, "hd95": 0.0}
    assert normalized_surface_dice(empty, empty, tolerance=1) == 1.0
    assert hausdorff95(empty, empty) == 0.0


@pytest.mark.parametrize("empty_side", ["pred", "target"])
def test_exactly_one_empty_scores_zero_and_hd95_is_the_image_diagonal(empty_side):
    empty, full = np.zeros((4, 6), dtype=bool), pixel((4, 6), 1, 2)
    pred, target = (empty, full) if empty_side == "pred" else (full, empty)
    assert dice(pred, target) == 0.0
    assert iou(pred, target) == 0.0
    assert normalized_surface_dice(pred, target, tolerance=100) == 0.0
    assert hausdorff95(pred, target) == pytest.approx(math.hypot(4, 6))
    assert hausdorff95(pred, target, spacing=(2.0, 0.5)) == pytest.approx(math.hypot(8, 3))
    assert segmentation_metrics(pred, target, spacing=(2.0, 0.5))["hd95"] == pytest.approx(math.hypot(8, 3))


def test_one_pixel_objects():
    same = pixel((5, 5), 2, 2)
    assert segmentation_metrics(same, same, tolerance=0) == {"dice": 1.0, "iou": 1.0, "nsd": 1.0, "hd95": 0.0}
    neighbour = pixel((5, 5), 2, 3)
    assert dice(same, neighbour) == 0.0
    assert hausdorff95(same, neighbour) == pytest.approx(1.0)
    assert normalized_surface_dice(same, neighbour, tolerance=1.0) == 1.0
    assert normalized_surface_dice(same, neighbour, tolerance=0.5) == 0.0
    far = pixel((10, 10), 5, 6)  # dy 3, dx 4 from (2, 2)
    assert hausdorff95(pixel((10, 10), 2, 2), far) == pytest.approx(5.0)
    assert hausdorff95(pixel((10, 10), 2, 2), far, spacing=(2.0, 0.5)) == pytest.approx(math.sqrt(36 + 4))


def test_surface_is_the_four_connected_boundary_and_image_border_counts():
    mask = square((5, 5), 0, 0, 3)
    expected = mask.copy()
    expected[1, 1] = False  # the only pixel with all four neighbours inside
    assert (surface(mask) == expected).all()


def bars():
    # pred: column 0, rows 0..4; target: column 0, rows 0..2. All pixels are surface pixels.
    pred = np.zeros((6, 3), dtype=bool)
    pred[0:5, 0] = True
    target = np.zeros((6, 3), dtype=bool)
    target[0:3, 0] = True
    return pred, target


def test_surface_metrics_in_pixels():
    pred, target = bars()
    # pred -> target distances [0, 0, 0, 1, 2]; target -> pred [0, 0, 0].
    assert normalized_surface_dice(pred, target, tolerance=2) == 1.0
    assert normalized_surface_dice(pred, target, tolerance=1) == pytest.approx(7 / 8)
    assert normalized_surface_dice(pred, target, tolerance=0) == pytest.approx(6 / 8)
    assert hausdorff95(pred, target) == pytest.approx(1.8)  # 95th percentile of [0, 0, 0, 1, 2]


def test_anisotropic_spacing_scales_row_distances_only_for_vertical_offsets():
    pred, target = bars()
    # sy = 1.5 mm: distances [0, 0, 0, 1.5, 3.0] mm; sx does not matter (same column).
    for sx in (0.1, 7.0):
        assert normalized_surface_dice(pred, target, tolerance=2.0, spacing=(1.5, sx)) == pytest.approx(7 / 8)
        assert normalized_surface_dice(pred, target, tolerance=3.0, spacing=(1.5, sx)) == 1.0
        assert hausdorff95(pred, target, spacing=(1.5, sx)) == pytest.approx(2.7)
    # Transposed masks: now sx is the one that matters.
    assert hausdorff95(pred.T, target.T, spacing=(7.0, 1.5)) == pytest.approx(2.7)
    assert normalized_surface_dice(pred.T, target.T, tolerance=2.0, spacing=(7.0, 1.5)) == pytest.approx(7 / 8)


def test_segmentation_metrics_matches_single_functions():
    rng = np.random.default_rng(0)
    pred = rng.random((20, 30)) > 0.6
    target = rng.random((20, 30)) > 0.5
    scores = segmentation_metrics(pred, target, tolerance=1.5, spacing=(0.8, 1.2))
    assert scores["dice"] == pytest.approx(dice(pred, target))
    assert scores["iou"] == pytest.approx(iou(pred, target))
    assert scores["nsd"] == pytest.approx(normalized_surface_dice(pred, target, 1.5, spacing=(0.8, 1.2)))
    assert scores["hd95"] == pytest.approx(hausdorff95(pred, target, spacing=(0.8, 1.2)))


def test_integer_and_float_masks_are_accepted():
    pred = square((6, 6), 1, 1, 3)
    assert dice(pred.astype(np.uint8), pred.astype(np.float32)) == 1.0


def test_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(4, 5\).*\(5, 4\)"):
        dice(np.zeros((4, 5), bool), np.zeros((5, 4), bool))


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros((2, 3, 3), bool), r"2-D.*\(2, 3, 3\)"),
        (np.zeros(4, bool), r"2-D.*\(4,\)"),
        (np.array([[0.0, np.nan], [1.0, 0.0]]), "NaN"),
        (np.array([[0, 2], [1, 0]]), "0/1"),
    ],
)
def test_invalid_masks_raise(bad, message):
    with pytest.raises(ValueError, match=message):
        segmentation_metrics(bad, bad)


@pytest.mark.parametrize("spacing", [(1.0,), (0.0, 1.0), (1.0, float("nan")), (-1.0, 1.0)])
def test_invalid_spacing_raises(spacing):
    mask = square((6, 6), 1, 1, 3)
    with pytest.raises(ValueError, match="spacing"):
        hausdorff95(mask, mask, spacing=spacing)


@pytest.mark.parametrize("tolerance", [-1.0, float("inf"), float("nan")])
def test_invalid_tolerance_raises(tolerance):
    mask = square((6, 6), 1, 1, 3)
    with pytest.raises(ValueError, match="tolerance"):
        normalized_surface_dice(mask, mask, tolerance=tolerance)
