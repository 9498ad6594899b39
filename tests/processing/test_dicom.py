"""read_dicom / load_frames on the real pydicom-data ultrasound files and on synthetic datasets."""

import warnings

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")
from pydicom.data import get_testdata_file  # noqa: E402
from pydicom.pixels import convert_color_space  # noqa: E402

from ultrasam_hf.models.image_loading import load_frames, read_dicom  # noqa: E402


def _testdata(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = get_testdata_file(name)
    if path is None:
        pytest.skip(f"{name} not in pydicom-data")
    return path


def _check_frames(frames, count, shape):
    assert len(frames) == count
    for frame in frames:
        assert frame.shape == shape and frame.dtype == np.uint8


def test_rgb_ultrasound_is_returned_as_stored():
    path = _testdata("US1_UNCR.dcm")
    frames = read_dicom(path)
    _check_frames(frames, 1, (480, 640, 3))
    np.testing.assert_array_equal(frames[0], pydicom.dcmread(path).pixel_array)
    np.testing.assert_array_equal(load_frames(path)[0], frames[0])


def test_jpeg2000_ultrasound_decodes_like_uncompressed_or_names_the_plugin():
    try:
        frames = read_dicom(_testdata("US1_J2KR.dcm"))
    except RuntimeError as error:
        assert "plugin" in str(error) and "JPEG 2000" in str(error)
        return
    np.testing.assert_array_equal(frames[0], read_dicom(_testdata("US1_UNCR.dcm"))[0])  # lossless


def test_missing_decoder_plugin_is_named():
    # No plugin for JPEG Lossless ships with pillow: either one is installed, or the error names the candidates.
    try:
        frames = read_dicom(_testdata("JPGLosslessP14SV1_1s_1f_8b.dcm"))
    except RuntimeError as error:
        assert "decoder plugin" in str(error) and "pylibjpeg" in str(error)
    else:
        _check_frames(frames, 1, (768, 1024, 3))


def test_palette_colour_16bit_lut():
    path = _testdata("gdcm-US-ALOKA-16.dcm")
    ds = pydicom.dcmread(path)
    frames = read_dicom(ds)
    _check_frames(frames, 1, (480, 640, 3))
    expected = pydicom.pixels.apply_color_lut(ds.pixel_array, ds) >> 8
    np.testing.assert_array_equal(frames[0], expected)
    assert frames[0].max() > 200  # the 16-bit LUT was brought to 8 bits, not truncated


def test_multiframe_ultrasound_gives_one_frame_each():
    frames = load_frames(_testdata("OBXXXX1A_2frame.dcm"))
    _check_frames(frames, 2, (600, 800, 3))
    np.testing.assert_array_equal(frames[0], read_dicom(_testdata("OBXXXX1A.dcm"))[0])


def test_ybr_full_422_jpeg_cine_is_rgb():
    frames = read_dicom(_testdata("color3d_jpeg_baseline.dcm"))
    _check_frames(frames, 120, (480, 640, 3))


def test_does_not_modify_the_callers_dataset():
    ds = pydicom.dcmread(_testdata("US1_UNCR.dcm"))
    before = ds.to_json_dict()
    read_dicom(ds)
    assert ds.to_json_dict() == before


# ------------------------------------------------------------------------------------------- synthetic datasets


def test_monochrome2_uint8_is_kept(make_dicom):
    pixels = np.arange(12, dtype=np.uint8).reshape(3, 4)
    np.testing.assert_array_equal(read_dicom(make_dicom(pixels, "MONOCHROME2"))[0][..., 0], pixels)


def test_monochrome1_is_inverted(make_dicom):
    pixels = np.arange(12, dtype=np.uint8).reshape(3, 4)
    frame = read_dicom(make_dicom(pixels, "MONOCHROME1"))[0]
    np.testing.assert_array_equal(frame[..., 0], 255 - pixels)
    assert (frame[..., 0] == frame[..., 2]).all()


def test_monochrome2_16bit_stretches_over_the_whole_cine(make_dicom):
    pixels = np.array([[[0, 100]], [[200, 400]]], dtype=np.uint16)
    frames = read_dicom(make_dicom(pixels, "MONOCHROME2", frames=2))
    assert len(frames) == 2
    np.testing.assert_array_equal(frames[0][..., 0], [[0, 64]])
    np.testing.assert_allclose(frames[1][..., 0], [[128, 255]], atol=1)


def test_modality_lut_then_window(make_dicom):
    pixels = np.array([[0, 50, 100, 150, 200]], dtype=np.uint16)
    ds = make_dicom(pixels, "MONOCHROME2", RescaleSlope=2, RescaleIntercept=-100, WindowCenter=100, WindowWidth=200)
    # rescaled: -100, 0, 100, 200, 300 -> window [0, 200] -> 0, 0, 128, 255, 255
    np.testing.assert_allclose(read_dicom(ds)[0][..., 0], [[0, 0, 128, 255, 255]], atol=1)


def test_ybr_full_is_converted_to_rgb(make_dicom):
    rgb = np.random.default_rng(0).integers(0, 256, (6, 8, 3), dtype=np.uint8)
    ybr = convert_color_space(rgb, "RGB", "YBR_FULL")
    frame = read_dicom(make_dicom(ybr, "YBR_FULL"))[0]
    assert np.abs(frame.astype(int) - rgb).max() <= 2  # 8-bit round trip through YCbCr


def test_dataset_without_file_meta_is_read_as_native(make_dicom):
    pixels = np.arange(12, dtype=np.uint8).reshape(3, 4)
    ds = make_dicom(pixels, "MONOCHROME2")
    del ds.file_meta
    np.testing.assert_array_equal(read_dicom(ds)[0][..., 0], pixels)


def test_no_pixel_data_raises(make_dicom):
    ds = make_dicom(np.zeros((2, 2), np.uint8), "MONOCHROME2")
    del ds.PixelData
    with pytest.raises(ValueError, match="PixelData absent"):
        read_dicom(ds)


def test_unsupported_photometric_raises(make_dicom):
    with pytest.raises(ValueError, match="'HSV'"):
        read_dicom(make_dicom(np.zeros((2, 2), np.uint8), "HSV"))


def test_truncated_dicom_file_raises(tmp_path):
    path = tmp_path / "cut.dcm"
    data = open(_testdata("US1_UNCR.dcm"), "rb").read()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="cut.dcm"):
        load_frames(path)


def test_dicom_file_detected_by_magic_without_suffix(tmp_path, make_dicom):
    ds = make_dicom(np.arange(6, dtype=np.uint8).reshape(2, 3), "MONOCHROME2")
    path = tmp_path / "IM0001"
    ds.save_as(path, enforce_file_format=True)
    np.testing.assert_array_equal(load_frames(path)[0][..., 0], np.arange(6).reshape(2, 3))


def test_not_a_dicom_with_dcm_suffix_raises(tmp_path):
    path = tmp_path / "fake.dcm"
    path.write_bytes(b"hello")
    with pytest.raises(ValueError, match="fake.dcm"):
        load_frames(path)


def test_missing_dicom_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="absent.dcm"):
        read_dicom(tmp_path / "absent.dcm")
