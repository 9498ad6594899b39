"""Prompt sampling: boxes, points, centroid snapping and corrective clicks."""

import math

import numpy as np
import pytest

from ultrasam_hf.evaluation.prompts import (
    box_from_mask,
    centroid_point,
    jittered_box,
    next_click,
    random_point,
)


def ring(shape=(21, 21), centre=(10, 10), inner=5.0, outer=7.0):
    ys, xs = np.mgrid[: shape[0], : shape[1]]
    radius = np.hypot(ys - centre[0], xs - centre[1])
    return (radius >= inner) & (radius <= outer)


def test_box_from_mask_is_tight_and_inclusive():
    mask = np.zeros((10, 12), bool)
    mask[2:5, 3:9] = True
    assert box_from_mask(mask) == [3.0, 2.0, 8.0, 4.0]
    assert box_from_mask(np.pad(np.ones((1, 1), bool), ((4, 0), (7, 0)))) == [7.0, 4.0, 7.0, 4.0]


def test_box_from_empty_mask_raises():
    with pytest.raises(ValueError, match="empty"):
        box_from_mask(np.zeros((3, 3), bool))


def test_jittered_box_stays_within_five_percent_and_the_image():
    mask = np.zeros((100, 120), bool)
    mask[0:40, 30:90] = True  # touches the top edge: y0 jitter gets clipped at 0
    x0, y0, x1, y1 = box_from_mask(mask)
    width, height = x1 - x0, y1 - y0
    rng = np.random.default_rng(0)
    boxes = np.array([jittered_box(mask, rng) for _ in range(500)])
    tight = np.array([x0, y0, x1, y1])
    limit = 0.05 * np.array([width, height, width, height])
    assert (np.abs(boxes - tight) <= limit + 1e-9).all()
    assert (boxes[:, [0, 2]] >= 0).all() and (boxes[:, [0, 2]] <= 119).all()
    assert (boxes[:, [1, 3]] >= 0).all() and (boxes[:, [1, 3]] <= 99).all()
    assert (boxes[:, 1] == 0).mean() > 0.3  # about half the draws go above the image and are clipped
    assert (boxes[:, 0] <= boxes[:, 2]).all() and (boxes[:, 1] <= boxes[:, 3]).all()
    assert np.abs(boxes - tight).max(axis=0)[0] > 0.8 * limit[0]  # the jitter spans its range


def test_jittered_box_is_reproducible_and_validates_arguments():
    mask = np.zeros((20, 20), bool)
    mask[5:15, 4:10] = True
    assert jittered_box(mask, np.random.default_rng(3)) == jittered_box(mask, np.random.default_rng(3))
    assert jittered_box(mask, np.random.default_rng(3), fraction=0.0) == box_from_mask(mask)
    with pytest.raises(ValueError, match="fraction"):
        jittered_box(mask, np.random.default_rng(3), fraction=0.7)
    with pytest.raises(ValueError, match="Generator"):
        jittered_box(mask, 3)


def test_random_point_is_inside_the_mask_and_covers_it():
    mask = ring()
    rng = np.random.default_rng(1)
    points = [random_point(mask, rng) for _ in range(2000)]
    assert all(mask[int(y), int(x)] for x, y in points)
    assert len(set(points)) == mask.sum()  # 2000 draws over 80 pixels reach every one


def test_random_point_subpixel_jitter_stays_in_the_pixel():
    mask = np.zeros((5, 5), bool)
    mask[2, 3] = True
    x, y = random_point(mask, np.random.default_rng(0), subpixel_jitter=True)
    assert abs(x - 3) <= 0.5 and abs(y - 2) <= 0.5 and (x, y) != (3.0, 2.0)


def test_centroid_of_a_convex_mask_is_the_mean_position():
    mask = np.zeros((10, 10), bool)
    mask[2:5, 3:7] = True  # rows 2..4, cols 3..6
    assert centroid_point(mask) == pytest.approx((4.5, 3.0))


def test_centroid_of_a_ring_is_snapped_to_the_nearest_ring_pixel():
    mask = ring()
    x, y = centroid_point(mask)
    assert mask[int(y), int(x)]
    ys, xs = np.nonzero(mask)
    nearest = np.hypot(ys - 10, xs - 10).min()
    assert math.hypot(x - 10, y - 10) == pytest.approx(nearest)


def test_centroid_of_a_crescent_is_snapped_into_the_crescent():
    ys, xs = np.mgrid[:30, :30]
    disc = np.hypot(ys - 15, xs - 15) <= 10
    bite = np.hypot(ys - 15, xs - 19) <= 9
    crescent = disc & ~bite  # open to the right; its centroid lies in the bite
    rows, cols = np.nonzero(crescent)
    cy, cx = rows.mean(), cols.mean()
    assert not crescent[round(cy), round(cx)]
    x, y = centroid_point(crescent)
    assert crescent[int(y), int(x)]
    assert math.hypot(x - round(cx), y - round(cy)) == pytest.approx(
        np.hypot(rows - round(cy), cols - round(cx)).min()
    )


def test_centroid_of_an_empty_mask_raises():
    with pytest.raises(ValueError, match="empty"):
        centroid_point(np.zeros((4, 4), bool))


def test_next_click_is_none_when_prediction_is_perfect():
    target = np.zeros((8, 8), bool)
    target[2:5, 2:5] = True
    assert next_click(target, target.copy()) is None
    assert next_click(np.zeros((8, 8), bool), np.zeros((8, 8), bool)) is None


def test_next_click_on_a_missed_square_is_its_centre():
    target = np.zeros((12, 12), bool)
    target[2:9, 3:10] = True  # 7 x 7, rows 2..8, cols 3..9: centre (x=6, y=5)
    assert next_click(np.zeros_like(target), target) == (6, 5, 1)


def test_next_click_picks_the_largest_component_of_the_larger_error():
    target = np.zeros((20, 20), bool)
    target[1:4, 1:4] = True  # small FN component, 9 px
    target[8:13, 8:13] = True  # large FN component, 25 px, centre (10, 10)
    pred = np.zeros_like(target)
    pred[16:19, 16:19] = True  # FP, 9 px < 34 px FN
    assert next_click(pred, target) == (10, 10, 1)


def test_next_click_is_negative_in_a_false_positive_blob():
    target = np.zeros((20, 20), bool)
    target[2:5, 2:5] = True
    pred = target.copy()
    pred[10:15, 12:17] = True  # FP 5 x 5 rows 10..14, cols 12..16, centre (x=14, y=12)
    pred[3, 3] = False  # a 1-px FN
    assert next_click(pred, target) == (14, 12, 0)


def test_next_click_treats_the_image_border_as_boundary_and_centres_ties():
    target = np.ones((5, 9), bool)  # the distance ridge is row 2, columns 2..6: its middle is chosen
    assert next_click(np.zeros_like(target), target) == (4, 2, 1)
