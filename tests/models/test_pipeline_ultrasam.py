"""`UltraSamMaskGenerationPipeline`: transformers' mask-generation pipeline with the checkpoint's settings
(`config.mask_generation`) and its trained output (`config.multimask_output_default`)."""

import numpy as np
import pytest
import torch
from PIL import Image

from ultrasam_hf import UltraSamConfig, UltraSamImageProcessor, UltraSamModel
from ultrasam_hf.models.pipeline_ultrasam import mask_generation_pipeline

SETTINGS = {"points_per_crop": 3, "points_per_batch": 4, "pred_iou_thresh": 0.0, "stability_score_thresh": 0.0}
IMAGE = Image.fromarray(np.random.default_rng(1).integers(0, 255, (50, 60, 3), dtype=np.uint8))


def generator_for(**config):
    torch.manual_seed(0)
    model = UltraSamModel(UltraSamConfig.from_preset("tiny-lite", **config)).eval()
    calls = []
    forward = model.forward

    def recording_forward(*args, **kwargs):
        calls.append(kwargs.get("multimask_output"))
        return forward(*args, **kwargs)

    model.forward = recording_forward
    image_processor = UltraSamImageProcessor.from_model_config(model.config)
    return model, calls, image_processor


def test_pipeline_defaults_are_the_checkpoint_settings_and_arguments_win():
    model, _, image_processor = generator_for(mask_generation=SETTINGS)
    generator = mask_generation_pipeline(model, image_processor=image_processor)
    assert generator._preprocess_params == {"points_per_crop": 3, "points_per_batch": 4}
    assert generator._forward_params == {"pred_iou_thresh": 0.0, "stability_score_thresh": 0.0}
    overridden = mask_generation_pipeline(model, image_processor=image_processor, points_per_crop=2)
    assert overridden._preprocess_params["points_per_crop"] == 2
    assert len(generator(IMAGE)["masks"]) >= 1


@pytest.mark.parametrize("multimask", [True, False])
def test_each_grid_point_asks_for_the_trained_output(multimask):
    model, calls, image_processor = generator_for(mask_generation=SETTINGS, multimask_output_default=multimask)
    result = mask_generation_pipeline(model, image_processor=image_processor)(IMAGE, crops_nms_thresh=1.0)
    assert calls and set(calls) == {multimask}
    assert len(result["masks"]) <= 9 * (3 if multimask else 1)  # 3x3 grid points


def test_unknown_mask_generation_setting_is_refused():
    with pytest.raises(ValueError, match="points_per_side"):
        UltraSamConfig.from_preset("tiny-lite", mask_generation={"points_per_side": 16})
