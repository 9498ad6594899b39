import numpy as np
import pytest
import torch
from PIL import Image
from transformers import pipeline

from ultrasam_hf import UltraSamConfig, UltraSamImageProcessor, UltraSamModel, UltraSamPredictor, UltraSamProcessor


@pytest.fixture(scope="module", params=["tiny", "tiny-lite"])
def predictor(request):
    torch.manual_seed(0)
    model = UltraSamModel(UltraSamConfig.from_preset(request.param))
    predictor = UltraSamPredictor(model)
    predictor.set_image(np.random.default_rng(0).integers(0, 255, (120, 160), dtype=np.uint8))
    return predictor


def test_predict_matches_processor_and_model_path(predictor):
    """predict() = the standard HF call: processor -> model -> post_process_masks."""
    image = np.random.default_rng(0).integers(0, 255, (120, 160), dtype=np.uint8)
    inputs = predictor.processor(images=image, input_boxes=[[[20.0, 30.0, 90.0, 100.0]]], return_tensors="pt")
    with torch.no_grad():
        outputs = predictor.model(
            **{k: v for k, v in inputs.items() if k in ("pixel_values", "input_boxes")}, multimask_output=False
        )
    expected = predictor.processor.post_process_masks(
        outputs.pred_masks, inputs["original_sizes"], inputs["reshaped_input_sizes"]
    )[0]
    masks, scores, logits = predictor.predict(boxes=[20, 30, 90, 100], multimask_output=False)
    assert masks.shape == (1, 1, 120, 160) and masks.dtype == bool
    np.testing.assert_array_equal(masks, expected.numpy())
    np.testing.assert_allclose(scores, outputs.iou_scores[0].numpy(), atol=1e-6)


def test_points_several_objects_and_mask_input(predictor):
    # SAM's rule by default: three candidates for one click per object, one mask for anything less ambiguous
    masks, scores, logits = predictor.predict(points=[[20, 30]])
    assert masks.shape == (1, 3, 120, 160) and scores.shape == (1, 3)
    masks, scores, logits = predictor.predict(points=[[20, 30], [50, 60]], labels=[1, 0])
    assert masks.shape == (1, 1, 120, 160) and scores.shape == (1, 1)
    assert predictor.predict(points=[[20, 30], [50, 60]], labels=[1, 0], multimask_output=True)[0].shape[1] == 3
    refined, _, _ = predictor.predict(points=[[20, 30]], mask_input=logits[:, 0])
    assert refined.shape == (1, 1, 120, 160)
    many, _, _ = predictor.predict(boxes=[[20, 30, 90, 100], [0, 0, 50, 50]], points=[[[30, 40]], [[10, 10]]])
    assert many.shape == (2, 1, 120, 160)
    logit_masks, _, _ = predictor.predict(boxes=[20, 30, 90, 100], return_logits=True)
    assert logit_masks.dtype == np.float32


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({}, "No prompt given"),
        ({"boxes": [10, 10, 5, 40]}, "empty or inverted"),
        ({"boxes": [float("nan"), 1, 5, 40]}, "not finite"),
        ({"boxes": [200, 130, 300, 300]}, "entirely outside"),
        ({"points": [[500, 10]]}, "outside"),
        ({"points": [[float("inf"), 10]]}, "not finite"),
        ({"points": [[5, 10]], "labels": [3]}, "labels must be"),
        ({"points": [[5, 10], [6, 6]], "labels": [1]}, "one label per point"),
        ({"boxes": [[1, 1, 9, 9], [2, 2, 8, 8]], "points": [[[3, 3]]] * 3}, "one point group per box"),
        ({"points": [[5, 10]], "mask_input": np.zeros((7, 7))}, "mask_input has shape"),
        ({"points": [[5, 10]], "mask_input": np.full((32, 32), np.nan)}, "NaN"),
    ],
)
def test_bad_prompts(predictor, kwargs, message):
    if "mask_input" in kwargs and predictor.model.config.vision_config.encoder_type == "tiny_vit":
        kwargs = {
            **kwargs,
            "mask_input": np.resize(kwargs["mask_input"], (64, 64))
            if kwargs["mask_input"].shape == (32, 32)
            else kwargs["mask_input"],
        }
    with pytest.raises(ValueError, match=message):
        predictor.predict(**kwargs)


def test_box_partly_outside_is_clipped_with_warning(predictor):
    with pytest.warns(UserWarning, match="clipped"):
        masks, _, _ = predictor.predict(boxes=[100, 80, 400, 300])
    assert masks.shape[-2:] == (120, 160)


def test_set_image_errors():
    predictor = UltraSamPredictor(UltraSamModel(UltraSamConfig.from_preset("tiny")))
    with pytest.raises(ValueError, match="set_image"):
        predictor.predict(boxes=[1, 1, 5, 5])
    with pytest.raises(ValueError, match="frames"):
        predictor.set_image(np.zeros((3, 20, 20, 3), dtype=np.uint8) + 7)
    predictor.set_image(np.arange(3 * 20 * 20 * 3, dtype=np.uint8).reshape(3, 20, 20, 3), frame=2)
    with pytest.raises(ValueError):
        predictor.set_image(np.zeros((0, 10), dtype=np.uint8))


def test_from_pretrained_uses_saved_processor(tmp_path):
    model = UltraSamModel(UltraSamConfig.from_preset("tiny-lite"))
    model.save_pretrained(tmp_path)
    processor = UltraSamProcessor.from_model_config(model.config)
    assert processor.image_processor.preprocessing == "litemedsam"
    processor.save_pretrained(tmp_path)
    loaded = UltraSamPredictor.from_pretrained(tmp_path)
    assert isinstance(loaded.processor, UltraSamProcessor)
    assert loaded.processor.image_processor.size == processor.image_processor.size


@pytest.mark.parametrize("preset", ["tiny", "tiny-lite"])
def test_mask_generation_pipeline_without_torchvision(preset):
    """The Hub widget path: transformers' mask-generation pipeline, with our pure-torch NMS."""
    import importlib.util

    assert importlib.util.find_spec("torchvision") is None
    torch.manual_seed(0)
    model = UltraSamModel(UltraSamConfig.from_preset(preset)).eval()
    image_processor = UltraSamImageProcessor.from_model_config(model.config)
    generator = pipeline("mask-generation", model=model, image_processor=image_processor)
    image = Image.fromarray(np.random.default_rng(1).integers(0, 255, (80, 100, 3), dtype=np.uint8))
    result = generator(image, points_per_batch=64, pred_iou_thresh=0.0, stability_score_thresh=0.0)
    assert len(result["masks"]) >= 1
    assert result["masks"][0].shape == (80, 100)


def test_predictors_with_the_same_encoder_share_the_embedding():
    torch.manual_seed(0)
    base = UltraSamModel(UltraSamConfig.from_preset("tiny-lite"))
    tuned = UltraSamModel(UltraSamConfig.from_preset("tiny-lite"))
    tuned.vision_encoder.load_state_dict(base.vision_encoder.state_dict())  # a decoder-only fine-tune
    other = UltraSamModel(UltraSamConfig.from_preset("tiny-lite"))
    first, second, third = UltraSamPredictor(base), UltraSamPredictor(tuned), UltraSamPredictor(other)
    assert first.image_key() == second.image_key() != third.image_key()
    image = np.random.default_rng(2).integers(0, 255, (50, 70), dtype=np.uint8)
    first.set_image(image)
    second.use_image_of(first)
    direct = UltraSamPredictor(tuned)
    direct.set_image(image)
    np.testing.assert_array_equal(second.predict(boxes=[5, 5, 40, 30])[1], direct.predict(boxes=[5, 5, 40, 30])[1])
    with pytest.raises(ValueError, match="differ"):
        third.use_image_of(first)
