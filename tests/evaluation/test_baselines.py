"""Box-only baselines: the filled box and its inscribed ellipse."""

import math

import pytest

from ultrasam_hf.evaluation.baselines import filled_box_mask, inscribed_ellipse_mask
from ultrasam_hf.evaluation.prompts import box_from_mask


def test_filled_box_covers_the_inclusive_box():
    mask = filled_box_mask([3, 2, 8, 4], (10, 12))
    assert mask.shape == (10, 12) and mask.sum() == 6 * 3
    assert box_from_mask(mask) == [3.0, 2.0, 8.0, 4.0]


def test_filled_box_is_clipped_to_the_image():
    assert filled_box_mask([-5.0, -5.0, 2.0, 1.0], (4, 4)).sum() == 3 * 2


def test_inscribed_ellipse_area_is_pi_a_b():
    box = [10, 20, 10 + 59, 20 + 39]  # 60 x 40 pixels: a = 30, b = 20
    mask = inscribed_ellipse_mask(box, (100, 100))
    assert mask.sum() == pytest.approx(math.pi * 30 * 20, rel=0.01)
    assert (mask <= filled_box_mask(box, (100, 100))).all()
    assert box_from_mask(mask) == pytest.approx(box, abs=1)


def test_one_pixel_box_gives_one_pixel():
    assert inscribed_ellipse_mask([2, 3, 2, 3], (6, 6)).sum() == 1
    assert filled_box_mask([2, 3, 2, 3], (6, 6)).sum() == 1


@pytest.mark.parametrize("box", [[1, 2, 3], [5, 0, 1, 4], [0, 0, float("nan"), 3]])
def test_invalid_boxes_raise(box):
    with pytest.raises(ValueError, match="box"):
        filled_box_mask(box, (6, 6))
    with pytest.raises(ValueError, match="box"):
        inscribed_ellipse_mask(box, (6, 6))
