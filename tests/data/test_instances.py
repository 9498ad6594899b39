import numpy as np
from data_fixtures import two_blobs
from scipy import ndimage

from ultrasam_hf.data import decode_instance_mask
from ultrasam_hf.data.instances import encode_mask, layers_to_instances


def test_components_become_instances_and_specks_are_recorded():
    labels = two_blobs()
    layers = {"1": labels == 1, "2": labels == 2}
    result = layers_to_instances(
        layers, {"1": "nerve", "2": "vessel"}, {"nerve": "nerve", "vessel": "vessel"}, min_area=4
    )
    assert [(obj["category"], obj["area"]) for obj in result.objects] == [("nerve", 120), ("vessel", 36)]
    assert result.dropped == [{"category": "nerve", "area": 1}]
    assert result.objects[0]["bbox"] == [5.0, 5.0, 17.0, 15.0]
    np.testing.assert_array_equal(decode_instance_mask(result.objects[1]), labels == 2)


def test_rle_round_trip_is_a_string():
    mask = np.zeros((7, 9), dtype=bool)
    mask[2:5, 1:8] = True
    rle = encode_mask(mask)
    assert isinstance(rle["counts"], str) and rle["size"] == [7, 9]
    np.testing.assert_array_equal(decode_instance_mask({"mask": rle}), mask)


def test_instances_equal_a_whole_image_labelling():
    """Components are labelled inside each layer's bounding box: same masks, boxes and areas as on the whole image."""
    rng = np.random.default_rng(0)
    structure = np.ones((3, 3), dtype=bool)
    for _ in range(50):
        layer = rng.random((int(rng.integers(1, 40)), int(rng.integers(1, 40)))) > 0.9
        components, count = ndimage.label(layer, structure=structure)
        expected = sorted(
            (int((components == index).sum()), encode_mask(components == index)["counts"])
            for index in range(1, count + 1)
        )
        objects = layers_to_instances({"1": layer}, {"1": "nerve"}, {"nerve": "nerve"}, min_area=1).objects
        assert sorted((obj["area"], obj["mask"]["counts"]) for obj in objects) == expected
        for obj in objects:
            rows, cols = np.nonzero(decode_instance_mask(obj))
            assert obj["bbox"] == [cols.min(), rows.min(), cols.max() + 1.0, rows.max() + 1.0]
