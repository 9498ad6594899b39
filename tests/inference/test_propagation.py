import numpy as np
import pytest
import torch

from ultrasam_hf import UltraSamConfig, UltraSamModel
from ultrasam_hf.inference.predictor import UltraSamPredictor
from ultrasam_hf.inference.propagation import FrameEmbeddings, ObjectPrompt, box_prompt_from_mask, propagate


class BrightInBoxPredictor:
    """A stand-in model whose right answer is known: the bright pixels inside the box prompt grown by 4 px."""

    def __init__(self):
        self.encoded, self.mask_inputs = [], []

    def set_image(self, frame):
        self.image_embeddings = np.asarray(frame)
        self.original_size, self.reshaped_input_size = self.image_embeddings.shape, None
        self.encoded.append(frame)

    def predict_object(self, box=None, points=None, labels=None, mask_input=None):
        self.mask_inputs.append(mask_input)
        if box is None:  # a click: the bright component under it
            x, y = np.asarray(points)[0]
            box = [x - 6, y - 6, x + 6, y + 6]
        x0, y0, x1, y1 = box
        rows, cols = np.indices(self.image_embeddings.shape)
        inside = (cols >= x0 - 4) & (cols <= x1 + 4) & (rows >= y0 - 4) & (rows <= y1 + 4)
        mask = inside & (self.image_embeddings > 128)
        return mask, 0.9, mask.astype(np.float32)


def moving_square(count=6, step=3, size=10, shape=(40, 60)):
    """Frames with a bright square moving right by `step` px per frame, and their true masks."""
    frames, truths = [], []
    for t in range(count):
        truth = np.zeros(shape, dtype=bool)
        truth[12 : 12 + size, 5 + step * t : 5 + step * t + size] = True
        frames.append(np.where(truth, 200, 20).astype(np.uint8))
        truths.append(truth)
    return frames, truths


def test_follows_a_moving_object_both_ways_from_the_prompted_frame():
    frames, truths = moving_square()
    predictor = BrightInBoxPredictor()
    result = propagate(predictor, frames, start_frame=2, prompt={"box": [11, 12, 20, 21]})
    assert result.sources == ["propagated", "propagated", "prompt", "propagated", "propagated", "propagated"]
    for mask, truth in zip(result.masks, truths):
        np.testing.assert_array_equal(mask, truth)
    assert len(predictor.encoded) == 6  # each frame encoded once
    np.testing.assert_array_equal(result.boxes[3], [11, 12, 20, 21])  # the tight box of frame 2's mask
    assert result.scores.tolist() == [0.9] * 6


def test_mask_prompt_passes_the_previous_logits_and_can_be_switched_off():
    frames, _ = moving_square(count=3)
    predictor = BrightInBoxPredictor()
    propagate(predictor, frames, 0, {"box": [5, 12, 14, 21]}, direction="forward")
    assert predictor.mask_inputs[0] is None and all(m is not None for m in predictor.mask_inputs[1:])
    predictor = BrightInBoxPredictor()
    propagate(predictor, frames, 0, {"box": [5, 12, 14, 21]}, direction="forward", use_mask_prompt=False)
    assert all(m is None for m in predictor.mask_inputs)


def test_reprompt_replaces_the_propagated_prompt_and_propagation_goes_on_from_it():
    frames, truths = moving_square(count=6, step=20, shape=(40, 130))  # too fast: each step leaves the box
    result = propagate(BrightInBoxPredictor(), frames, 0, {"box": [5, 12, 14, 21]}, direction="forward")
    assert result.sources[1:] == ["lost"] * 5 and not result.masks[1:].any()
    reprompted = propagate(
        BrightInBoxPredictor(), frames, 0, {"box": [5, 12, 14, 21]}, reprompts={3: {"points": [[69, 16]]}}
    )
    assert reprompted.sources == ["prompt", "lost", "lost", "prompt", "lost", "lost"]
    np.testing.assert_array_equal(reprompted.masks[3], truths[3])


def test_direction_forward_leaves_earlier_frames_skipped():
    frames, _ = moving_square(count=4)
    result = propagate(BrightInBoxPredictor(), frames, 2, {"box": [11, 12, 20, 21]}, direction="forward")
    assert result.sources == ["skipped", "skipped", "prompt", "propagated"]
    assert not result.masks[:2].any() and np.isnan(result.scores[0])


def test_box_margin_grows_the_propagated_box():
    mask = np.zeros((50, 50), dtype=bool)
    mask[10:20, 10:30] = True
    assert box_prompt_from_mask(mask) == [10.0, 10.0, 29.0, 19.0]
    assert box_prompt_from_mask(mask, margin=0.1) == pytest.approx([8.1, 9.1, 30.9, 19.9])
    assert box_prompt_from_mask(np.zeros((5, 5), dtype=bool)) is None


def test_frame_embeddings_encode_each_frame_once_and_respect_capacity():
    frames, _ = moving_square(count=4)
    predictor = BrightInBoxPredictor()
    embeddings = FrameEmbeddings(predictor, frames, capacity=2)
    for index in (0, 1, 0, 2, 0, 1):
        embeddings.select(index)
        np.testing.assert_array_equal(predictor.image_embeddings, frames[index])
    assert len(predictor.encoded) == 4  # 0, 1, 2 once each; 1 again after being evicted by 2


@pytest.mark.parametrize(
    "prompt, message",
    [
        ({"points": [[1, 1]], "labels": [0]}, "positive click"),
        ({"points": [[1, 1], [2, 2]], "labels": [1]}, "one label per point"),
        ({"box": [1, 2, 3]}, "A box is"),
        ({"points": [[1, 2, 3]]}, "pairs"),
        ({"boxes": [1, 2, 3, 4]}, "Unknown prompt keys"),
    ],
)
def test_bad_prompts_are_named(prompt, message):
    with pytest.raises(ValueError, match=message):
        ObjectPrompt.coerce(prompt)


def test_bad_arguments_are_named():
    frames, _ = moving_square(count=2)
    with pytest.raises(ValueError, match="start_frame 5 is out of range"):
        propagate(BrightInBoxPredictor(), frames, 5, {"box": [1, 1, 5, 5]})
    with pytest.raises(ValueError, match="direction"):
        propagate(BrightInBoxPredictor(), frames, 0, {"box": [1, 1, 5, 5]}, direction="sideways")
    with pytest.raises(ValueError, match="needs a prompt"):
        propagate(BrightInBoxPredictor(), frames, 0, None)
    with pytest.raises(ValueError, match="re-prompt frame 9"):
        propagate(BrightInBoxPredictor(), frames, 0, {"box": [1, 1, 5, 5]}, reprompts={9: {"box": [1, 1, 5, 5]}})


def test_ultrasam_predictor_propagates_with_mask_prompts():
    """The real predictor: low-res logits of one frame are a valid mask prompt for the next."""
    torch.manual_seed(0)
    predictor = UltraSamPredictor(UltraSamModel(UltraSamConfig.from_preset("tiny-lite")))
    frames, _ = moving_square(count=3)
    result = predictor.propagate(frames, 0, {"box": [5, 12, 14, 21]}, direction="forward")
    assert result.masks.shape == (3, 40, 60) and result.masks.dtype == bool
    assert result.sources[0] == "prompt" and set(result.sources[1:]) <= {"propagated", "lost"}
    mask, score, logits = predictor.predict_object(box=[5, 12, 14, 21])
    assert mask.shape == (40, 60) and logits.shape == (64, 64) and isinstance(score, float)
    refined, _, _ = predictor.predict_object(box=[5, 12, 14, 21], mask_input=logits)
    assert refined.shape == (40, 60)
