"""load_frames on every accepted input type, and the errors on bad inputs."""

import numpy as np
import PIL.Image
import pytest
import torch

from ultrasam_hf import load_frames


def _single(image) -> np.ndarray:
    frames = load_frames(image)
    assert len(frames) == 1
    frame = frames[0]
    assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[-1] == 3
    return frame


GREY = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20


@pytest.mark.parametrize(
    "mode, expected",
    [
        ("L", np.stack([GREY] * 3, -1)),
        ("RGB", np.stack([GREY, GREY // 2, 255 - GREY], -1)),
    ],
)
def test_pil_8bit_modes_are_kept_exactly(mode, expected):
    image = PIL.Image.fromarray(expected[..., 0] if mode == "L" else expected)
    np.testing.assert_array_equal(_single(image), expected)


def test_pil_rgba_drops_alpha():
    rgba = np.dstack([GREY, GREY, GREY, np.full_like(GREY, 7)])
    np.testing.assert_array_equal(_single(PIL.Image.fromarray(rgba, "RGBA")), rgba[..., :3])


def test_pil_palette_and_bilevel():
    palette = PIL.Image.fromarray(np.array([[0, 1]], dtype=np.uint8), "P")
    palette.putpalette([10, 20, 30, 200, 100, 50] + [0] * 762)
    np.testing.assert_array_equal(_single(palette), [[[10, 20, 30], [200, 100, 50]]])
    bilevel = PIL.Image.fromarray(np.array([[0, 255]], dtype=np.uint8)).convert("1")
    np.testing.assert_array_equal(_single(bilevel)[..., 0], [[0, 255]])


@pytest.mark.parametrize("mode, dtype", [("I;16", np.uint16), ("I", np.int32), ("F", np.float32)])
def test_pil_high_depth_modes_are_min_max_scaled(mode, dtype):
    values = np.array([[100, 300], [500, 1100]], dtype=dtype)
    image = PIL.Image.fromarray(values, mode) if mode != "I;16" else PIL.Image.fromarray(values)
    assert image.mode == mode
    np.testing.assert_array_equal(_single(image)[..., 0], [[0, 51], [102, 255]])


@pytest.mark.parametrize("dtype", [np.uint16, np.int16, np.int32, np.float32, np.float64])
def test_arrays_are_min_max_scaled_per_frame(dtype):
    values = (
        np.array([[-2, 0], [2, 6]], dtype=dtype)
        if np.dtype(dtype).kind != "u"
        else np.array([[0, 2], [4, 8]], dtype=dtype)
    )
    np.testing.assert_array_equal(_single(values)[..., 0], [[0, 64], [128, 255]])


@pytest.mark.parametrize("dtype", [np.uint16, np.float32])
def test_constant_image_becomes_zeros_not_nan(dtype):
    np.testing.assert_array_equal(_single(np.full((4, 5), 7, dtype=dtype)), np.zeros((4, 5, 3), np.uint8))


def test_uint8_and_bool_arrays():
    rgb = np.random.default_rng(0).integers(0, 256, (5, 6, 3), dtype=np.uint8)
    np.testing.assert_array_equal(_single(rgb), rgb)
    np.testing.assert_array_equal(_single(rgb[..., :1]), np.repeat(rgb[..., :1], 3, -1))
    np.testing.assert_array_equal(_single(np.dstack([rgb, rgb[..., :1]])), rgb)
    np.testing.assert_array_equal(_single(np.array([[True, False]]))[..., 0], [[255, 0]])


def test_channel_first_array_and_tensor():
    rgb = np.random.default_rng(1).integers(0, 256, (5, 6, 3), dtype=np.uint8)
    np.testing.assert_array_equal(_single(rgb.transpose(2, 0, 1)), rgb)
    np.testing.assert_array_equal(_single(torch.from_numpy(rgb)), rgb)


def test_frame_stack_gives_one_frame_each_scaled_separately():
    stack = np.stack([np.full((4, 5, 1), 3, np.uint16), np.arange(20, dtype=np.uint16).reshape(4, 5, 1)])
    frames = load_frames(stack)
    assert len(frames) == 2
    assert frames[0].max() == 0 and frames[1].max() == 255 and frames[1].min() == 0


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".bmp", ".tif"])
def test_image_files(tmp_path, suffix):
    rgb = np.zeros((8, 10, 3), dtype=np.uint8)
    rgb[2:6, 3:8] = (200, 100, 50)
    path = tmp_path / f"image{suffix}"
    PIL.Image.fromarray(rgb).save(path)
    frame = _single(str(path))
    assert frame.shape == (8, 10, 3)
    if suffix != ".jpg":
        np.testing.assert_array_equal(frame, rgb)
    np.testing.assert_array_equal(_single(path), frame)  # pathlib.Path too


def test_16bit_png_file(tmp_path):
    path = tmp_path / "depth16.png"
    PIL.Image.fromarray(np.array([[0, 1000], [2000, 4000]], dtype=np.uint16)).save(path)
    np.testing.assert_array_equal(_single(path)[..., 0], [[0, 64], [128, 255]])


def test_multipage_tiff_gives_one_frame_per_page(tmp_path):
    path = tmp_path / "cine.tif"
    pages = [PIL.Image.fromarray(np.full((4, 4), value, np.uint8)) for value in (10, 20, 30)]
    pages[0].save(path, save_all=True, append_images=pages[1:])
    assert [frame[0, 0, 0] for frame in load_frames(path)] == [10, 20, 30]


# --------------------------------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize("shape", [(0, 5), (5, 0, 3), (0,)])
def test_empty_array_raises(shape):
    with pytest.raises(ValueError, match=r"empty"):
        load_frames(np.zeros(shape, np.uint8))


def test_zero_size_pil_image_raises():
    with pytest.raises(ValueError, match="empty"):
        load_frames(PIL.Image.new("L", (0, 4)))


@pytest.mark.parametrize("dtype", [np.complex64, object])
def test_unsupported_dtype_raises(dtype):
    with pytest.raises(ValueError, match="unsupported dtype"):
        load_frames(np.zeros((3, 3), dtype=dtype))


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (2, 2, 3, 4, 3), (7,), (5, 6, 7)])
def test_unsupported_shape_raises(shape):
    with pytest.raises(ValueError, match=r"unsupported shape \(" + ", ".join(map(str, shape))):
        load_frames(np.zeros(shape, np.uint8))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_float_pixels_raise(bad):
    image = np.ones((3, 3), np.float32)
    image[1, 1] = bad
    with pytest.raises(ValueError, match="NaN or infinite"):
        load_frames(image)


def test_missing_path_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.png"):
        load_frames(tmp_path / "nope.png")


def test_truncated_image_file_raises(tmp_path):
    path = tmp_path / "truncated.png"
    PIL.Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ValueError, match="truncated.png"):
        load_frames(path)


def test_non_image_file_raises(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("not an image")
    with pytest.raises(ValueError, match="notes.txt"):
        load_frames(path)


def test_unsupported_type_raises():
    with pytest.raises(ValueError, match="dict"):
        load_frames({"pixels": 1})
