"""Property tests (hypothesis): whatever the prompt, the image or the checkpoint bytes, the processor's prompt checks,
the image loader and the checkpoint reader either succeed or raise one of the package's documented errors
(`ultrasam_hf.errors.UltraSamError`); no other exception type escapes. Derandomized, a few hundred examples."""

import io
import itertools
import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from ultrasam_hf import UltraSamConfig, UltraSamProcessor, load_frames
from ultrasam_hf.convert.checkpoint_io import read_checkpoint
from ultrasam_hf.errors import CheckpointError, ImageLoadError, PromptError, UltraSamError

SETTINGS = dict(deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
_names = itertools.count()

coordinate = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=32),
    st.integers(-200, 400),
    st.sampled_from([0, 0.5, 59.9, 60, 80, -1e30, 1e30]),
)
label = st.one_of(st.integers(-20, 5), st.sampled_from([-10, -1, 0, 1]), st.floats(allow_nan=True, width=16))


def ragged(leaf, depth):
    """Nested lists of `leaf`, regular or not: what a careless caller passes for a prompt."""
    strategy = leaf
    for _ in range(depth):
        strategy = st.lists(strategy, min_size=0, max_size=3)
    return strategy


points_strategy = st.one_of(
    st.none(),
    ragged(coordinate, 4),
    hnp.arrays(np.float64, hnp.array_shapes(max_dims=5, max_side=3), elements=coordinate),
)
labels_strategy = st.one_of(
    st.none(),
    ragged(label, 3),
    hnp.arrays(np.int64, hnp.array_shapes(max_dims=4, max_side=3), elements=st.integers(-20, 5)),
)
boxes_strategy = st.one_of(
    st.none(),
    ragged(coordinate, 3),
    hnp.arrays(np.float64, hnp.array_shapes(max_dims=4, max_side=4), elements=coordinate),
)


@pytest.fixture(scope="module")
def processor():
    return UltraSamProcessor.from_model_config(UltraSamConfig.from_preset("tiny-lite"))


@settings(max_examples=150, **SETTINGS)
@given(points=points_strategy, labels=labels_strategy, boxes=boxes_strategy)
def test_processor_prompt_checks_raise_only_prompt_errors(processor, points, labels, boxes):
    image = np.full((40, 60), 90, np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a box partly outside is clipped with a warning
        try:
            inputs = processor(
                images=image, input_points=points, input_labels=labels, input_boxes=boxes, return_tensors="pt"
            )
        except PromptError:
            return
    assert inputs["pixel_values"].shape == (1, 3, 64, 64)
    for key in ("input_points", "input_boxes"):
        if key in inputs:
            assert torch.isfinite(inputs[key]).all()


@pytest.fixture(scope="module")
def sample_files(tmp_path_factory):
    """Real files of every format the loader reads, to cut and mutate."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from dicom_fixtures import make_dicom_dataset

    root = tmp_path_factory.mktemp("samples")
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 255, (24, 32), dtype=np.uint8)
    files = {}
    for fmt, suffix in (("PNG", ".png"), ("JPEG", ".jpg"), ("BMP", ".bmp"), ("TIFF", ".tif"), ("GIF", ".gif")):
        buffer = io.BytesIO()
        Image.fromarray(grey).save(buffer, format=fmt)
        files[suffix] = buffer.getvalue()
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 65535, (24, 32), dtype=np.uint16)).save(buffer, format="PNG")
    files[".16.png"] = buffer.getvalue()
    dicom_path = root / "sample.dcm"
    make_dicom_dataset(rng.integers(0, 4096, (24, 32), dtype=np.uint16), "MONOCHROME2").save_as(
        dicom_path, enforce_file_format=True
    )
    files[".dcm"] = dicom_path.read_bytes()
    return root, files


def _load_file(root, suffix, data):
    path = root / f"case{next(_names)}{suffix}"
    path.write_bytes(data)
    try:
        frames = load_frames(path)
    except ImageLoadError:
        return None
    finally:
        path.unlink()
    assert frames and all(f.dtype == np.uint8 and f.ndim == 3 and f.shape[-1] == 3 for f in frames)
    return frames


@settings(max_examples=60, **SETTINGS)
@given(data=st.binary(max_size=600), suffix=st.sampled_from([".png", ".jpg", ".dcm", ".tif", ".bin", ""]))
def test_random_bytes_are_an_image_load_error(sample_files, data, suffix):
    root, _ = sample_files
    _load_file(root, suffix, data)
    try:
        load_frames({"bytes": data, "path": None})
    except ImageLoadError:
        pass


@settings(max_examples=80, **SETTINGS)
@given(
    suffix=st.sampled_from([".png", ".jpg", ".bmp", ".tif", ".gif", ".16.png", ".dcm"]),
    cut=st.floats(0.0, 1.0),
    flips=st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(0, 255)), max_size=6),
)
def test_cut_and_mutated_real_files_are_an_image_load_error(sample_files, suffix, cut, flips):
    root, files = sample_files
    data = bytearray(files[suffix])
    for where, value in flips:
        data[min(int(where * len(data)), len(data) - 1)] = value
    _load_file(root, suffix, bytes(data[: max(1, int(cut * len(data)))]))


DTYPES = [
    np.bool_,
    np.uint8,
    np.int8,
    np.uint16,
    np.int16,
    np.int32,
    np.uint32,
    np.int64,
    np.float16,
    np.float32,
    np.float64,
    np.complex64,
    np.dtype("M8[s]"),
    np.dtype("m8[s]"),
    np.dtype("U3"),
]


@settings(max_examples=100, **SETTINGS)
@given(
    array=st.sampled_from(DTYPES).flatmap(
        lambda dtype: hnp.arrays(dtype, hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=6))
    ),
    as_tensor=st.booleans(),
)
def test_arrays_of_any_shape_and_dtype_are_frames_or_an_image_load_error(array, as_tensor):
    if as_tensor and array.dtype.kind in "biuf" and array.dtype != np.uint16 and array.dtype != np.uint32:
        array = torch.from_numpy(np.ascontiguousarray(array))
    try:
        frames = load_frames(array)
    except ImageLoadError:
        return
    assert frames and all(f.dtype == np.uint8 and f.ndim == 3 and f.shape[-1] == 3 and f.size for f in frames)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    from safetensors.torch import save_file

    root = tmp_path_factory.mktemp("ckpt_fuzz")
    state = {"image_encoder.patch_embed.proj.weight": torch.randn(4, 3, 2, 2), "b": torch.arange(5)}
    torch.save(state, root / "zip.pth")
    torch.save({"model": state}, root / "legacy.pth", _use_new_zipfile_serialization=False)
    save_file(state, str(root / "s.safetensors"))
    return root, {name: (root / name).read_bytes() for name in ("zip.pth", "legacy.pth", "s.safetensors")}


@settings(max_examples=80, **SETTINGS)
@given(
    name=st.sampled_from(["zip.pth", "legacy.pth", "s.safetensors"]),
    cut=st.floats(0.0, 1.0),
    flips=st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(0, 255)), max_size=8),
    noise=st.one_of(st.none(), st.binary(max_size=400)),
)
def test_checkpoint_reader_raises_only_checkpoint_errors(checkpoints, name, cut, flips, noise):
    root, originals = checkpoints
    data = bytearray(originals[name] if noise is None else noise)
    for where, value in flips:
        if data:
            data[min(int(where * len(data)), len(data) - 1)] = value
    path = root / f"case{next(_names)}{'.safetensors' if name.endswith('.safetensors') else '.pth'}"
    path.write_bytes(bytes(data[: int(cut * len(data)) if cut < 0.9 else len(data)]))
    try:
        obj = read_checkpoint(path)
    except CheckpointError:
        return
    finally:
        path.unlink()
    assert isinstance(obj, dict)


def test_the_documented_errors_are_the_only_ones_caught_above():
    """The properties above accept exactly these types: all subclasses of the package's base error."""
    assert all(issubclass(cls, UltraSamError) for cls in (PromptError, ImageLoadError, CheckpointError))
