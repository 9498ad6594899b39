"""UltraSamProcessor: SAM's call, prompt rescaling, the prompt checks, and save/load."""

import numpy as np
import pytest
import torch
from transformers.models.sam.image_processing_pil_sam import SamImageProcessorPil
from transformers.models.sam.processing_sam import SamProcessor

from ultrasam_hf.models.image_processing_ultrasam import UltraSamImageProcessor
from ultrasam_hf.models.processing_ultrasam import UltraSamProcessor

IMAGE = np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8)  # height 300, width 400


@pytest.fixture
def processor():
    return UltraSamProcessor(UltraSamImageProcessor.from_preset("lite"))


def test_box_and_point_prompts_are_rescaled_like_sam(processor):
    inputs = processor(images=IMAGE, input_boxes=[[[40, 30, 200, 150]]], return_tensors="pt")
    torch.testing.assert_close(inputs["input_boxes"].float(), torch.tensor([[[25.6, 19.2, 128.0, 96.0]]]))
    inputs = processor(images=IMAGE, input_points=[[[[40, 30]]]], input_labels=[[[1]]], return_tensors="pt")
    torch.testing.assert_close(inputs["input_points"].float(), torch.tensor([[[[25.6, 19.2]]]]))
    assert inputs["input_labels"].tolist() == [[[1]]]


def test_matches_sam_processor_in_sam_mode():
    ours = UltraSamProcessor(UltraSamImageProcessor())
    sam = SamProcessor(SamImageProcessorPil())
    kwargs = dict(input_points=[[[[10, 20], [300, 200]]]], input_labels=[[[1, 0]]], return_tensors="pt")
    a, b = ours(images=IMAGE, **kwargs), sam(images=IMAGE, **kwargs)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_images_only_is_allowed(processor):
    inputs = processor(images=IMAGE, return_tensors="pt")
    assert set(inputs) == {"pixel_values", "original_sizes", "reshaped_input_sizes"}


def test_prompts_as_tensors(processor):
    inputs = processor(
        images=IMAGE,
        input_points=torch.tensor([[[[40.0, 30.0]]]]),
        input_labels=torch.tensor([[[1]]]),
        input_boxes=torch.tensor([[[40.0, 30.0, 200.0, 150.0]]]),
        return_tensors="pt",
    )
    assert inputs["input_points"].shape == (1, 1, 1, 2) and inputs["input_boxes"].shape == (1, 1, 4)


def test_post_process_masks_to_original_size(processor):
    inputs = processor(images=IMAGE, input_boxes=[[[40, 30, 200, 150]]], return_tensors="pt")
    pred_masks = torch.zeros(1, 1, 3, 256, 256)
    pred_masks[..., 19:96, 26:128] = 1.0  # the resized box
    masks = processor.post_process_masks(pred_masks, inputs["original_sizes"], inputs["reshaped_input_sizes"])
    assert masks[0].shape == (1, 3, 300, 400)
    assert masks[0][0, 0, 40:140, 50:190].all() and not masks[0][0, 0, 160:, :].any()


def test_multiframe_dicom_gives_a_batch(processor, make_dicom):
    cine = make_dicom(np.zeros((2, 30, 40), np.uint8), "MONOCHROME2", frames=2)
    inputs = processor(images=cine, input_boxes=[[[1, 1, 10, 10]], [[5, 5, 20, 20]]], return_tensors="pt")
    assert inputs["pixel_values"].shape[0] == 2 and inputs["input_boxes"].shape == (2, 1, 4)


# ------------------------------------------------------------------------------------------------ prompt checks


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_prompts_raise(processor, bad):
    with pytest.raises(ValueError, match="not finite"):
        processor(images=IMAGE, input_points=[[[[bad, 10]]]], input_labels=[[[1]]])
    with pytest.raises(ValueError, match="not finite"):
        processor(images=IMAGE, input_boxes=[[[0, 0, bad, 10]]])


@pytest.mark.parametrize("box", [[50, 10, 50, 20], [60, 10, 50, 20], [10, 30, 20, 30], [10, 40, 20, 30]])
def test_empty_or_inverted_box_raises_naming_it(processor, box):
    with pytest.raises(ValueError, match=r"Box \[" + ", ".join(f"{float(v)}" for v in box)):
        processor(images=IMAGE, input_boxes=[[box]])


def test_box_partly_outside_is_clipped_with_warning(processor):
    message = r"Box \[-20.0, 250.0, 450.0, 350.0\].*clipped to \[0.0, 250.0, 400.0, 300.0\]"
    with pytest.warns(UserWarning, match=message):
        inputs = processor(images=IMAGE, input_boxes=[[[-20, 250, 450, 350]]], return_tensors="pt")
    torch.testing.assert_close(inputs["input_boxes"].float(), torch.tensor([[[0.0, 160.0, 256.0, 192.0]]]))


@pytest.mark.parametrize("box", [[410, 10, 500, 20], [10, 300, 20, 320], [-30, -30, -1, -1], [-30, 10, 0, 20]])
def test_box_entirely_outside_raises(processor, box):
    with pytest.raises(ValueError, match="entirely outside"):
        processor(images=IMAGE, input_boxes=[[box]])


@pytest.mark.parametrize("point", [[-1, 10], [401, 10], [10, 300.5], [10, -0.1]])
def test_point_outside_raises(processor, point):
    with pytest.raises(ValueError, match=r"outside the 400x300"):
        processor(images=IMAGE, input_points=[[[point]]], input_labels=[[[1]]])


def test_points_on_the_border_are_inside(processor):
    processor(images=IMAGE, input_points=[[[[0, 0], [400, 300]]]], input_labels=[[[1, 0]]])


@pytest.mark.parametrize("label", [2, 3, -2, 0.5])
def test_bad_point_labels_raise(processor, label):
    with pytest.raises(ValueError, match=rf"contain \[{float(label)}\]"):
        processor(images=IMAGE, input_points=[[[[10, 10]]]], input_labels=[[[label]]])


def test_padding_points_are_not_checked(processor):
    points = [[[[10, 10], [-10, -10]]]]
    inputs = processor(images=IMAGE, input_points=points, input_labels=[[[1, -10]]], return_tensors="pt")
    assert inputs["input_labels"].tolist() == [[[1, -10]]]
    processor(images=IMAGE, input_points=[[[[10, 10], [0, 0]]]], input_labels=[[[1, -1]]])


def test_label_and_point_shapes_must_match(processor):
    with pytest.raises(ValueError, match="one label per point"):
        processor(images=IMAGE, input_points=[[[[10, 10], [20, 20]]]], input_labels=[[[1]]])


def test_malformed_coordinates_raise(processor):
    with pytest.raises(ValueError, match="4 coordinates"):
        processor(images=IMAGE, input_boxes=[[[1, 2, 3]]])
    with pytest.raises(ValueError, match="2 coordinates"):
        processor(images=IMAGE, input_points=[[[[1, 2, 3]]]], input_labels=[[[1]]])


# ---------------------------------------------------------------------------------------------------- save/load


@pytest.mark.parametrize("preset", ["vit-b", "lite", "tiny"])
def test_save_and_load_round_trip(tmp_path, preset):
    processor = UltraSamProcessor(UltraSamImageProcessor.from_preset(preset))
    processor.save_pretrained(tmp_path)
    loaded = UltraSamProcessor.from_pretrained(tmp_path)
    assert type(loaded.image_processor) is UltraSamImageProcessor
    assert loaded.image_processor.to_dict() == processor.image_processor.to_dict()
    assert loaded.target_size == processor.target_size
    kwargs = dict(images=IMAGE, input_boxes=[[[40, 30, 200, 150]]], return_tensors="pt")
    a, b = loaded(**kwargs), processor(**kwargs)
    for key in a:
        assert torch.equal(a[key], b[key]), key
