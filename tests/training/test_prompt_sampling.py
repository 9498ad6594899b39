import numpy as np
import pytest
import torch

from ultrasam_hf.training.prompt_sampling import (
    BOX,
    POINT,
    interior_weights,
    sample_correction_clicks,
    sample_prompts,
    select_instances,
    tight_boxes,
)


@pytest.fixture
def rect_masks():
    mask = torch.zeros(400, 60, 80, dtype=torch.bool)
    mask[:, 10:30, 20:60] = True  # tight box x 20..59, y 10..29 (inclusive)
    return mask


def test_box_or_point_with_probability_half_and_valid_geometry(rect_masks):
    kinds, prompts = sample_prompts(rect_masks, torch.Generator().manual_seed(0), input_size=80)
    points, boxes = prompts[kinds == POINT], prompts[kinds == BOX]
    assert 0.42 < (kinds == POINT).float().mean() < 0.58
    cols, rows = points[:, 0].round().long(), points[:, 1].round().long()
    assert rect_masks[0][rows, cols].all() and (points[:, 2:] == 0).all()
    width, height = 59 - 20, 29 - 10
    assert ((boxes[:, 0] - 20).abs() <= 0.05 * width + 1e-4).all() and (
        (boxes[:, 2] - 59).abs() <= 0.05 * width + 1e-4
    ).all()
    assert ((boxes[:, 1] - 10).abs() <= 0.05 * height + 1e-4).all() and (
        (boxes[:, 3] - 29).abs() <= 0.05 * height + 1e-4
    ).all()
    assert boxes[:, 0].std() > 0  # jittered


def test_point_only_box_only_and_grid_scaling(rect_masks):
    generator = torch.Generator().manual_seed(1)
    assert (sample_prompts(rect_masks, generator, 80, point_probability=1.0)[0] == POINT).all()
    kinds, boxes = sample_prompts(rect_masks[:3], generator, 320, point_probability=0.0, box_jitter=0.0)
    assert (kinds == BOX).all()
    # a grid cell covers 4 input pixels: the tight box spans input pixels 80 .. 239 x 40 .. 119
    assert boxes[0].tolist() == [80.0, 40.0, 239.0, 119.0]
    kinds, points = sample_prompts(rect_masks, generator, 320, point_probability=1.0)
    assert points[:, 0].min() >= 80 - 0.5 and points[:, 0].max() <= 239 + 0.5


def test_boxes_are_clipped_to_the_valid_image():
    mask = torch.zeros(50, 32, 32, dtype=torch.bool)
    mask[:, 0:20, 0:24] = True
    valid = torch.tensor([[20, 24]]).repeat(50, 1)
    _, boxes = sample_prompts(
        mask, torch.Generator().manual_seed(0), 32, point_probability=0.0, box_jitter=0.5, valid_sizes=valid
    )
    assert boxes[:, :2].min() >= 0 and boxes[:, 2].max() <= 23 and boxes[:, 3].max() <= 19


def test_tight_boxes():
    mask = torch.zeros(1, 10, 12, dtype=torch.bool)
    mask[0, 2:5, 3:9] = True
    assert tight_boxes(mask).tolist() == [[3.0, 2.0, 8.0, 4.0]]


def test_select_instances_caps_and_is_seeded():
    assert select_instances(5, np.random.default_rng(0), 20).tolist() == [0, 1, 2, 3, 4]
    a = select_instances(30, np.random.default_rng(3), 20)
    assert len(a) == 20 and len(set(a.tolist())) == 20
    assert a.tolist() == select_instances(30, np.random.default_rng(3), 20).tolist()


def test_correction_clicks_from_error_regions():
    target = torch.zeros(3, 8, 8, dtype=torch.bool)
    target[:, 2:6, 2:6] = True
    pred = torch.full((3, 8, 8), -1.0)
    pred[1][target[1]] = 1.0  # prompt 1: only an FP pixel
    pred[1, 0, 0] = 1.0
    pred[2][target[2]] = 1.0  # prompt 2: perfect
    points, labels = sample_correction_clicks(pred, target, torch.Generator().manual_seed(0), input_size=32)
    assert points.shape == (3, 1, 2) and labels.shape == (3, 1)
    assert labels[:, 0].tolist() == [1, 0, -1]
    x, y = points[0, 0].tolist()
    col, row = (x + 0.5) / 4 - 0.5, (y + 0.5) / 4 - 0.5
    assert target[0, int(round(row)), int(round(col))]
    assert points[1, 0].tolist() == pytest.approx([1.5, 1.5])  # the FP pixel (0, 0), centre of cell in input px


def test_sampling_is_reproducible():
    target = torch.rand(4, 16, 16) > 0.5
    pred = torch.randn(4, 16, 16)
    a = sample_correction_clicks(pred, target, torch.Generator().manual_seed(5), 64)
    b = sample_correction_clicks(pred, target, torch.Generator().manual_seed(5), 64)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    c = sample_prompts(target, torch.Generator().manual_seed(5), 64)
    d = sample_prompts(target, torch.Generator().manual_seed(5), 64)
    assert torch.equal(c[0], d[0]) and torch.equal(c[1], d[1])


def test_interior_points_favour_the_middle_and_stay_inside():
    mask = torch.zeros(400, 80, 80, dtype=torch.bool)
    mask[:, 10:70, 10:70] = True
    mask[:, 0:5, 0:80] = True  # a thin strip touching the border still gets (small) positive weight
    centre = torch.tensor([39.5, 39.5])

    def mean_distance(sampling):
        _, prompts = sample_prompts(
            mask, torch.Generator().manual_seed(0), 80, point_probability=1.0, point_sampling=sampling
        )
        points = prompts[:, :2]
        assert mask[0][points[:, 1].round().long().clamp(max=79), points[:, 0].round().long().clamp(max=79)].all()
        return (points - centre).norm(dim=1).mean()

    assert mean_distance("interior") < mean_distance("mixed") < mean_distance("uniform")
    assert mean_distance("interior") < 0.8 * mean_distance("uniform")
    weights = interior_weights(mask[:1])
    assert (
        weights[0, 2, 40] > 0
        and weights[0, 40, 40] > weights[0, 12, 40] > weights[0, 10, 40]
        and weights[0, 7, 7] == 0
    )
    single = torch.zeros(1, 9, 9, dtype=torch.bool)
    single[0, 0, 8] = True  # a one-pixel mask in the corner
    _, point = sample_prompts(single, torch.Generator().manual_seed(0), 9, 1.0, point_sampling="interior")
    assert point[0, :2].tolist() == pytest.approx([8, 0], abs=0.5)
    with pytest.raises(ValueError, match="sampling"):
        sample_prompts(single, None, 9, 1.0, point_sampling="edge")
