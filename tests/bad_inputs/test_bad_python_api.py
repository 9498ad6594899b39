"""The Python API given bad input: each failure is one of the documented error types (`ultrasam_hf.errors`) with a
message naming the input; odd but valid inputs give the right shapes."""

import numpy as np
import pytest
import torch
from bad_input_helpers import MODEL_CASES

from ultrasam_hf import UltraSamConfig, UltraSamPredictor, UltraSamProcessor, load_frames
from ultrasam_hf.errors import (
    ImageLoadError,
    ImageNotFoundError,
    ModelLoadError,
    ModelNotFoundError,
    PromptError,
    UsageError,
)


@pytest.fixture(scope="module")
def predictor(model_dir):
    return UltraSamPredictor.from_pretrained(model_dir)


@pytest.mark.parametrize("case", MODEL_CASES)
def test_predictor_and_eval_load_strictly(case, bad_models):
    from ultrasam_hf.evaluation.runner import load_predictor

    folder, what, _ = bad_models[case]
    with pytest.raises(ModelLoadError) as error:
        UltraSamPredictor.from_pretrained(folder)
    assert str(folder) in str(error.value) and what in str(error.value)
    with pytest.raises(ModelLoadError):
        load_predictor(folder)
    if case == "missing":
        assert isinstance(error.value, ModelNotFoundError) and isinstance(error.value, FileNotFoundError)


def test_training_init_loads_strictly(bad_models):
    from ultrasam_hf.training.config import TrainingConfig
    from ultrasam_hf.training.trainer import load_model

    with pytest.raises(ModelLoadError, match="do not fit its config"):
        load_model(TrainingConfig(init=str(bad_models["other-preset-weights"][0]), data=["x"]))


@pytest.mark.parametrize("shape", [(4, 300), (3, 300), (1, 300), (300, 3), (300, 4), (1, 1), (3, 3), (4, 4, 3)])
def test_small_arrays_are_never_read_channels_first(predictor, shape):
    image = np.random.default_rng(0).integers(0, 255, shape, dtype=np.uint8)
    if min(shape[:2]) * 64 / max(shape[:2]) < 0.5:
        with pytest.raises(ImageLoadError, match="short side would be 0 px"):
            predictor.set_image(image)
        return
    predictor.set_image(image)
    masks, _, _ = predictor.predict(points=[[0, 0]])
    assert masks.shape[-2:] == shape[:2]
    inputs = predictor.processor(images=image, input_points=[[[[0, 0]]]], return_tensors="pt")
    assert inputs["original_sizes"].tolist() == [list(shape[:2])]


def test_channels_first_arrays_need_saying_so():
    processor = UltraSamProcessor.from_model_config(UltraSamConfig.from_preset("tiny-lite"))
    chw = np.zeros((3, 40, 50), np.uint8)
    assert processor.image_processor(chw, return_tensors="pt")["original_sizes"].tolist() == [[40, 50]]
    tricky = np.zeros((3, 40, 4), np.uint8)  # last dim 4: taken as HxWxC unless told
    assert processor.image_processor(tricky, return_tensors="pt")["original_sizes"].tolist() == [[3, 40]]
    told = processor.image_processor(tricky, input_data_format="channels_first", return_tensors="pt")
    assert told["original_sizes"].tolist() == [[40, 4]]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(points=[[10, 10]], labels=[-1]), "no real prompt"),
        (dict(points=[[10, 10], [20, 20]], labels=[-1, -10]), "no real prompt"),
        (dict(points=[[[10, 10]], [[20, 20]]], labels=[[1], [-1]]), r"Object\(s\) \[1\]"),
        (dict(labels=[1], boxes=[1, 1, 5, 5]), "labels= were given without points="),
        (dict(), "No prompt given"),
        (dict(points=[[1, 2, 3]]), r"expected \(N, 2\)"),
        (dict(points="abc"), "regular array of numbers"),
        (dict(boxes=[[1, 2], [3]]), "regular array of numbers"),
        (dict(boxes=[1, 2, 3]), r"expected \(4,\)"),
        (dict(points=[[10, 10]], labels=[2]), r"contain \[2.0\]"),
        (dict(points=[[10, 10]], labels=[1, 1]), "one label per point"),
        (dict(points=[[np.nan, 10]]), "not finite"),
        (dict(boxes=[5, 5, 1, 1]), "empty or inverted"),
        (dict(mask_input=np.zeros((3, 5))), "mask_input has shape"),
        (dict(mask_input=np.full((64, 64), np.inf)), "NaN or infinite"),
    ],
)
def test_prompts_that_cannot_be_used(predictor, kwargs, message):
    predictor.set_image(np.full((50, 60), 80, np.uint8))
    with pytest.raises(PromptError, match=message):
        predictor.predict(**kwargs)


def test_padding_points_with_a_box_or_a_mask_are_a_prompt(predictor):
    predictor.set_image(np.full((50, 60), 80, np.uint8))
    # one mask each: a box or a mask prompt is not ambiguous (SAM's rule)
    assert predictor.predict(points=[[10, 10]], labels=[-1], boxes=[5, 5, 30, 30])[0].shape == (1, 1, 50, 60)
    logits = predictor.predict(boxes=[5, 5, 30, 30])[2][:, 0]
    assert predictor.predict(points=[[10, 10]], labels=[-1], mask_input=logits)[0].shape == (1, 1, 50, 60)


def test_processor_prompt_rules(predictor):
    processor = predictor.processor
    image = np.zeros((50, 60), np.uint8)
    with pytest.raises(PromptError, match="no real prompt"):
        processor(images=image, input_points=[[[[5, 5]]]], input_labels=[[[-1]]])
    with pytest.raises(PromptError, match="without input_points"):
        processor(images=image, input_labels=[[[1]]], input_boxes=[[[1, 1, 9, 9]]])
    inputs = processor(images=image, input_points=[[[[5, 5]]]], input_labels=[[[-1]]], input_boxes=[[[1, 1, 9, 9]]])
    assert inputs["input_boxes"].shape[-1] == 4


def test_predictor_usage_errors(predictor, model_dir):
    fresh = UltraSamPredictor(predictor.model)
    with pytest.raises(UsageError, match="set_image"):
        fresh.predict(boxes=[1, 1, 5, 5])
    with pytest.raises(UsageError, match="frames"):
        fresh.set_image(np.zeros((3, 20, 20, 3), np.uint8))
    with pytest.raises(UsageError, match="out of range"):
        fresh.set_image(np.zeros((3, 20, 20, 3), np.uint8), frame=3)
    with pytest.raises(UsageError, match="not a torch device"):
        UltraSamPredictor.from_pretrained(model_dir, device="warp-drive")


@pytest.mark.parametrize(
    "image, error, message",
    [
        (np.zeros((0, 5)), ImageLoadError, "empty"),
        (np.zeros((4, 5), np.complex64), ImageLoadError, "unsupported dtype"),
        (np.zeros((2, 3, 4, 5, 6)), ImageLoadError, "unsupported shape"),
        (np.array([[np.nan, 1.0]]), ImageLoadError, "NaN or infinite"),
        (np.zeros((4, 5), object), ImageLoadError, "unsupported dtype"),
        ("no/such/file.png", ImageNotFoundError, "check the path"),
        ({"bytes": b"not an image"}, ImageLoadError, "image bytes"),
        (12, ImageLoadError, "type int"),
        ([[1, 2], [3, 4]], ImageLoadError, "type list"),
    ],
)
def test_load_frames_raises_only_documented_errors(image, error, message):
    with pytest.raises(error, match=message):
        load_frames(image)


def test_tensor_dtypes_numpy_cannot_hold_are_converted():
    frames = load_frames(torch.linspace(0, 1, 20, dtype=torch.bfloat16).reshape(4, 5))
    assert frames[0].shape == (4, 5, 3) and frames[0].max() == 255


def test_pixel_limit_applies_to_files_pil_images_and_dicom(tmp_path, phi_dicom, monkeypatch):
    from PIL import Image

    path = tmp_path / "x.png"
    Image.new("L", (100, 100)).save(path)
    for source in (path, Image.open(path), {"bytes": path.read_bytes()}, phi_dicom):
        with pytest.raises(ImageLoadError, match=r"[0-9,]+ pixels, above the decoding limit of 50 pixels"):
            load_frames(source, max_pixels=50)
    monkeypatch.setenv("ULTRASAM_MAX_PIXELS", "50")
    with pytest.raises(ImageLoadError, match="above the decoding limit"):
        load_frames(path)
    assert load_frames(np.zeros((100, 100), np.uint8))[0].shape == (100, 100, 3)  # arrays are already decoded
    monkeypatch.setenv("ULTRASAM_MAX_PIXELS", "0")
    assert load_frames(path)[0].shape == (100, 100, 3)
