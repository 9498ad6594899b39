import numpy as np
import pytest

from ultrasam_hf.inference.volumes import is_volume_path, read_volume, volume_suffix, write_mask_volume

sitk = pytest.importorskip("SimpleITK")


def write_volume(path, array, spacing=(0.5, 0.7, 2.0), origin=(1.0, -2.0, 3.0), vector=False):
    image = sitk.GetImageFromArray(array, isVector=vector)
    image.SetSpacing(spacing[: image.GetDimension()])
    image.SetOrigin(origin[: image.GetDimension()])
    if image.GetDimension() == 3:
        image.SetDirection((0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, -1.0))  # not the identity: it must be kept
    sitk.WriteImage(image, str(path))
    return image


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".nrrd", ".mha"])
def test_mask_volume_keeps_the_input_geometry(tmp_path, suffix):
    array = np.random.default_rng(0).normal(size=(4, 20, 30)).astype(np.float32) * 100
    reference = write_volume(tmp_path / f"scan{suffix}", array)
    volume = read_volume(tmp_path / f"scan{suffix}")
    assert len(volume.frames) == 4 and volume.frames[0].shape == (20, 30, 3) and volume.frames[0].dtype == np.uint8
    # intensities scaled over the whole volume, not per slice
    assert min(f.min() for f in volume.frames) == 0 and max(f.max() for f in volume.frames) == 255
    labels = np.zeros((4, 20, 30), dtype=np.uint8)
    labels[1, 5:9, 10:20] = 1
    written = sitk.ReadImage(str(write_mask_volume(labels, tmp_path / f"mask{suffix}", volume)))
    assert written.GetSpacing() == pytest.approx(reference.GetSpacing())
    assert written.GetOrigin() == pytest.approx(reference.GetOrigin())
    assert written.GetDirection() == pytest.approx(reference.GetDirection())
    np.testing.assert_array_equal(sitk.GetArrayFromImage(written), labels)


@pytest.mark.parametrize("axis, count, shape", [("z", 4, (20, 30)), ("y", 20, (4, 30)), ("x", 30, (4, 20))])
def test_slicing_axis(tmp_path, axis, count, shape):
    array = np.arange(4 * 20 * 30, dtype=np.int16).reshape(4, 20, 30)
    write_volume(tmp_path / "scan.nrrd", array)
    volume = read_volume(tmp_path / "scan.nrrd", axis=axis)
    assert len(volume.frames) == count and volume.frames[0].shape[:2] == shape
    labels = np.zeros((count, *shape), dtype=np.uint8)
    labels[-1] = 2
    back = sitk.GetArrayFromImage(sitk.ReadImage(str(write_mask_volume(labels, tmp_path / "m.nrrd", volume))))
    expected = np.zeros(array.shape, dtype=np.uint8)
    expected[(slice(None),) * "zyx".index(axis) + (-1,)] = 2
    np.testing.assert_array_equal(back, expected)


def test_uint8_rgb_and_2d_inputs(tmp_path):
    rgb = np.random.default_rng(1).integers(0, 255, (3, 10, 12, 3), dtype=np.uint8)
    write_volume(tmp_path / "colour.mha", rgb, vector=True)
    frames = read_volume(tmp_path / "colour.mha").frames
    np.testing.assert_array_equal(np.stack(frames), rgb)  # uint8 kept as is
    flat = np.random.default_rng(2).integers(0, 255, (10, 12), dtype=np.uint8)
    write_volume(tmp_path / "slice.nii.gz", flat)
    volume = read_volume(tmp_path / "slice.nii.gz")
    assert len(volume.frames) == 1
    written = sitk.ReadImage(str(write_mask_volume(np.ones((1, 10, 12)), tmp_path / "m.nii.gz", volume)))
    assert written.GetDimension() == 2


def test_frames_without_a_volume_get_the_pixel_spacing(tmp_path):
    labels = np.zeros((3, 8, 9), dtype=np.uint8)
    written = sitk.ReadImage(str(write_mask_volume(labels, tmp_path / "cine.nii.gz", spacing=[0.2, 0.3])))
    assert written.GetSize() == (9, 8, 3) and written.GetSpacing() == pytest.approx((0.3, 0.2, 1.0))


def test_bad_volumes_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.nii.gz"):
        read_volume(tmp_path / "missing.nii.gz")
    (tmp_path / "junk.nrrd").write_bytes(b"not a volume")
    with pytest.raises(ValueError, match="junk.nrrd"):
        read_volume(tmp_path / "junk.nrrd")
    nan = np.zeros((2, 4, 4), dtype=np.float32)
    nan[0, 0, 0] = np.nan
    write_volume(tmp_path / "nan.nrrd", nan)  # NIfTI would store the NaN as 0
    with pytest.raises(ValueError, match="NaN"):
        read_volume(tmp_path / "nan.nrrd")
    write_volume(tmp_path / "ok.nii.gz", np.zeros((2, 4, 4), dtype=np.uint8))
    with pytest.raises(ValueError, match="axis"):
        read_volume(tmp_path / "ok.nii.gz", axis="t")
    with pytest.raises(ValueError, match="do not fit"):
        write_mask_volume(np.zeros((3, 4, 4)), tmp_path / "m.nii.gz", read_volume(tmp_path / "ok.nii.gz"))


def test_volume_suffixes():
    assert volume_suffix("a/B.NII.GZ") == ".nii.gz" and is_volume_path("x.mhd") and not is_volume_path("x.png")
