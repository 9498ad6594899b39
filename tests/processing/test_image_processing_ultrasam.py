"""UltraSamImageProcessor: the two preprocessing modes, presets, inputs, masks back to size, save/load."""

import numpy as np
import PIL.Image
import pytest
import torch
from transformers.models.sam.image_processing_pil_sam import SamImageProcessorPil, _mask_to_rle

from ultrasam_hf import UltraSamConfig, UltraSamImageProcessor, UltraSamModel, UltraSamProcessor
from ultrasam_hf.models.transforms import low_res_size


def _rgb(height=300, width=400, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_sam_mode_equals_transformers_sam_exactly():
    image = _rgb()
    ours = UltraSamImageProcessor()(image, return_tensors="pt")
    theirs = SamImageProcessorPil()(PIL.Image.fromarray(image), return_tensors="pt")
    assert ours["pixel_values"].shape == (1, 3, 1024, 1024)
    for key in ("pixel_values", "original_sizes", "reshaped_input_sizes"):
        assert torch.equal(ours[key], theirs[key])
    assert UltraSamImageProcessor().preprocessing == "sam"


def test_litemedsam_mode_min_max_then_pad():
    processor = UltraSamImageProcessor(preprocessing="litemedsam")
    image = np.random.default_rng(0).integers(1000, 3000, (300, 400), dtype=np.uint16)
    out = processor(image, return_tensors="pt")
    pixels = out["pixel_values"]
    assert pixels.shape == (1, 3, 256, 256)
    assert out["reshaped_input_sizes"].tolist() == [[192, 256]]
    content = pixels[..., :192, :256]
    assert content.min() == 0.0 and content.max() == 1.0
    assert (pixels[..., 192:, :] == 0).all()
    # The LiteMedSAM recipe on SAM's resize: (x - min) / clip(max - min, 1e-8), no mean/std.
    resized = processor.resize(np.moveaxis(processor.load_images(image)[0], -1, 0), processor.size).astype(np.float32)
    expected = (resized - resized.min()) / np.clip(resized.max() - resized.min(), 1e-8, None)
    np.testing.assert_allclose(content[0].numpy(), expected, atol=1e-6)


def test_litemedsam_constant_image_is_zeros():
    out = UltraSamImageProcessor.from_preset("lite")(np.full((20, 30), 9, np.uint8), return_tensors="pt")
    assert torch.isfinite(out["pixel_values"]).all() and (out["pixel_values"] == 0).all()


@pytest.mark.parametrize(
    "preset, mode, size, mask_size",
    [
        ("vit-b", "sam", 1024, 256),
        ("lite", "litemedsam", 256, 256),
        ("tiny", "sam", 64, 32),
        ("tiny-lite", "litemedsam", 64, 64),
    ],
)
def test_presets(preset, mode, size, mask_size):
    """Every preset of `UltraSamConfig` has its processor, with masks at the decoder's low-res size (formerly `tiny`
    gave 16 where the model decodes 32, and `tiny-lite` raised)."""
    processor = UltraSamImageProcessor.from_preset(preset)
    assert processor.preprocessing == mode
    assert processor.size.longest_edge == size
    assert (processor.pad_size.height, processor.pad_size.width) == (size, size)
    assert processor.mask_size.longest_edge == mask_size
    assert processor(_rgb(30, 50), return_tensors="pt")["pixel_values"].shape == (1, 3, size, size)
    config = UltraSamConfig.from_preset(preset)
    assert processor.to_dict() == UltraSamImageProcessor.from_model_config(config).to_dict()
    assert mask_size == low_res_size(config)
    if preset != "vit-b":  # the decoder really outputs masks of that size (vit-b at 1024 px is too slow here)
        inputs = UltraSamProcessor(processor)(_rgb(30, 50), input_boxes=[[[2, 2, 20, 20]]], return_tensors="pt")
        with torch.no_grad():
            low_res = UltraSamModel(config).eval()(**inputs, multimask_output=False).pred_masks
        assert low_res.shape[-1] == mask_size


def test_from_model_config_follows_the_config_not_a_preset_name():
    config = UltraSamConfig.from_preset("tiny-lite", preprocessing="sam")
    processor = UltraSamProcessor.from_model_config(config)
    assert processor.image_processor.preprocessing == "sam" and processor.image_processor.mask_size.longest_edge == 64
    assert processor.target_size == 64


def test_tiny_preset_is_sam_at_64():
    image = _rgb(30, 50)
    ours = UltraSamImageProcessor.from_preset("tiny")(image, return_tensors="pt")["pixel_values"]
    sam = SamImageProcessorPil(size={"longest_edge": 64}, pad_size={"height": 64, "width": 64})
    assert torch.equal(ours, sam(PIL.Image.fromarray(image), return_tensors="pt")["pixel_values"])


def test_bad_mode_and_preset_raise():
    with pytest.raises(ValueError, match="'medsam'"):
        UltraSamImageProcessor(preprocessing="medsam")
    with pytest.raises(ValueError, match="'vit-h'"):
        UltraSamImageProcessor.from_preset("vit-h")
    with pytest.raises(ValueError, match="'other'"):
        UltraSamImageProcessor()(_rgb(8, 8), preprocessing="other")


def test_accepts_every_input_type_in_one_batch(tmp_path, make_dicom):
    path = tmp_path / "frame.png"
    PIL.Image.fromarray(_rgb(20, 30)).save(path)
    cine = make_dicom(np.zeros((3, 16, 24), np.uint8), "MONOCHROME2", frames=3)
    images = [
        PIL.Image.fromarray(_rgb(10, 12)).convert("L"),
        np.zeros((40, 20), np.float32),
        str(path),
        cine,  # 3 frames -> 3 images
        [np.zeros((5, 6, 4), np.uint8)],  # nested
    ]
    out = UltraSamImageProcessor.from_preset("tiny")(images, return_tensors="pt")
    assert out["pixel_values"].shape == (7, 3, 64, 64)
    assert out["original_sizes"].tolist() == [[10, 12], [40, 20], [20, 30], [16, 24], [16, 24], [16, 24], [5, 6]]


def test_bad_images_raise():
    processor = UltraSamImageProcessor.from_preset("tiny")
    with pytest.raises(ValueError, match="empty list"):
        processor([])
    with pytest.raises(ValueError, match="empty"):
        processor(np.zeros((0, 4), np.uint8))


def test_segmentation_maps_are_not_min_max_scaled():
    processor = UltraSamImageProcessor.from_preset("lite")
    mask = np.zeros((300, 400), np.uint8)
    mask[100:200, 100:300] = 1
    out = processor(_rgb(), segmentation_maps=mask, return_tensors="pt")
    assert out["labels"].shape == (1, 256, 256)
    assert set(out["labels"].unique().tolist()) == {0, 1}


@pytest.mark.parametrize("preset", ["vit-b", "lite", "tiny"])
def test_post_process_masks_back_to_original_size(preset):
    processor = UltraSamImageProcessor.from_preset(preset)
    out = processor(_rgb(90, 120), return_tensors="pt")
    size = processor.pad_size.height
    # A mask on the padded model input covering the left half of the resized image.
    new_h, new_w = out["reshaped_input_sizes"][0].tolist()
    low_res = torch.full((1, 1, 1, size, size), -10.0)  # (batch, point_batch, masks, H, W)
    low_res[..., :new_h, : new_w // 2] = 10.0
    masks = processor.post_process_masks(low_res, out["original_sizes"], out["reshaped_input_sizes"])
    assert masks[0].shape == (1, 1, 90, 120) and masks[0].dtype == torch.bool
    assert masks[0][0, 0, :, :55].all() and not masks[0][0, 0, :, 65:].any()


def test_mask_generation_post_processing_without_torchvision():
    masks = torch.zeros(3, 8, 8, dtype=torch.bool)
    masks[0, :4, :4] = masks[1, :4, :5] = masks[2, 5:, 5:] = True
    boxes = torch.tensor([[0, 0, 3, 3], [0, 0, 4, 3], [5, 5, 7, 7]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    processor = UltraSamImageProcessor.from_preset("tiny")
    kept_masks, kept_scores, _, kept_boxes = processor.post_process_for_mask_generation(
        _mask_to_rle(masks), scores, boxes, 0.5
    )
    assert kept_scores.tolist() == pytest.approx([0.9, 0.7])
    assert kept_boxes.tolist() == [[0, 0, 3, 3], [5, 5, 7, 7]]
    np.testing.assert_array_equal(kept_masks[1], masks[2].numpy())


@pytest.mark.parametrize("preset", ["vit-b", "lite"])
def test_save_and_load_round_trip(tmp_path, preset):
    processor = UltraSamImageProcessor.from_preset(preset)
    processor.save_pretrained(tmp_path)
    loaded = UltraSamImageProcessor.from_pretrained(tmp_path)
    assert loaded.to_dict() == processor.to_dict()
    assert loaded.preprocessing == processor.preprocessing
    image = _rgb(50, 70)
    expected = processor(image, return_tensors="pt")["pixel_values"]
    assert torch.equal(loaded(image, return_tensors="pt")["pixel_values"], expected)
