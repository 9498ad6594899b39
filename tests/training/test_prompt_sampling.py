import numpy as np
import pytest
import torch

from ultrasam_hf.training.prompt_sampling import (
    BOX,
    POINT,
    evaluation_prompt,
    sample_correction_clicks,
    sample_training_prompt,
    scale_coordinates,
    select_instances,
)


@pytest.fixture
def rect_mask():
    mask = np.zeros((60, 80), dtype=bool)
    mask[10:30, 20:60] = True  # tight box x 20..59, y 10..29 (inclusive)
    return mask


def test_box_or_point_with_probability_half_and_valid_geometry(rect_mask):
    rng = np.random.default_rng(0)
    kinds = []
    for _ in range(400):
        kind, prompt = sample_training_prompt(rect_mask, rng)
        kinds.append(kind)
        if kind == POINT:
            x, y = prompt
            assert rect_mask[int(round(y)), int(round(x))] or rect_mask[int(y), int(x)]
        else:
            x0, y0, x1, y1 = prompt
            width, height = 59 - 20, 29 - 10
            assert abs(x0 - 20) <= 0.05 * width + 1e-6 and abs(x1 - 59) <= 0.05 * width + 1e-6
            assert abs(y0 - 10) <= 0.05 * height + 1e-6 and abs(y1 - 29) <= 0.05 * height + 1e-6
    assert 0.42 < np.mean(np.asarray(kinds) == POINT) < 0.58
    assert set(kinds) == {BOX, POINT}


def test_point_only_and_box_only(rect_mask):
    rng = np.random.default_rng(1)
    assert all(sample_training_prompt(rect_mask, rng, point_probability=1.0)[0] == POINT for _ in range(20))
    assert all(sample_training_prompt(rect_mask, rng, point_probability=0.0)[0] == BOX for _ in range(20))


def test_evaluation_prompts_are_tight_box_and_centroid(rect_mask):
    assert evaluation_prompt(rect_mask, "box") == [20.0, 10.0, 59.0, 29.0]
    assert evaluation_prompt(rect_mask, "point") == pytest.approx([39.5, 19.5])
    with pytest.raises(ValueError):
        evaluation_prompt(rect_mask, "scribble")


def test_select_instances_caps_and_is_seeded():
    assert select_instances(5, np.random.default_rng(0), 20).tolist() == [0, 1, 2, 3, 4]
    a = select_instances(30, np.random.default_rng(3), 20)
    assert len(a) == 20 and len(set(a.tolist())) == 20
    assert a.tolist() == select_instances(30, np.random.default_rng(3), 20).tolist()


def test_scale_coordinates_like_sam_processor():
    scaled = scale_coordinates([10.0, 20.0, 30.0, 40.0], (100, 200), (32, 64))
    assert scaled.tolist() == pytest.approx([3.2, 6.4, 9.6, 12.8])


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
    # prompt 0: an FN pixel (inside the target); cell centre of a 4x scaled grid
    x, y = points[0, 0].tolist()
    col, row = (x + 0.5) / 4 - 0.5, (y + 0.5) / 4 - 0.5
    assert target[0, int(round(row)), int(round(col))]
    assert points[1, 0].tolist() == pytest.approx([1.5, 1.5])  # the FP pixel (0, 0), centre of cell in input px


def test_correction_clicks_are_reproducible():
    target = torch.rand(4, 16, 16) > 0.5
    pred = torch.randn(4, 16, 16)
    a = sample_correction_clicks(pred, target, torch.Generator().manual_seed(5), 64)
    b = sample_correction_clicks(pred, target, torch.Generator().manual_seed(5), 64)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_interior_points_favour_the_middle_and_stay_inside():
    mask = np.zeros((80, 80), dtype=bool)
    mask[10:70, 10:70] = True
    mask[0:5, 0:80] = True  # a thin strip touching the border still gets (small) positive weight
    centre = np.array([39.5, 39.5])

    def mean_distance(sampling):
        rng = np.random.default_rng(0)
        points = [sample_training_prompt(mask, rng, point_probability=1.0, point_sampling=sampling)[1] for _ in range(400)]
        assert all(mask[int(round(y)), int(round(x))] or mask[int(y), int(x)] for x, y in points)
        return np.linalg.norm(np.asarray(points) - centre, axis=1).mean()

    assert mean_distance("interior") < 0.8 * mean_distance("uniform")
    single = np.zeros((9, 9), dtype=bool)
    single[0, 8] = True  # a one-pixel mask in the corner
    assert sample_training_prompt(single, np.random.default_rng(0), 1.0, point_sampling="interior")[1] == pytest.approx([8, 0], abs=0.5)
    with pytest.raises(ValueError, match="sampling"):
        sample_training_prompt(mask, np.random.default_rng(0), 1.0, point_sampling="edge")
