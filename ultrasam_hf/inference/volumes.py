"""NIfTI, NRRD and MetaImage volumes as frames along an axis (SimpleITK), and mask volumes written back with the
input's spacing, origin and direction.

A volume (3D ultrasound, a cine saved as a 3D image, a single 2D slice) is read in SimpleITK's array order
`(z, y, x)`, without reorientation; `axis` picks the slicing direction. Intensities are scaled to 0..255 over the
whole volume (uint8 volumes are kept as they are), so that the slices stay comparable, then each slice becomes an
`HxWx3 uint8` frame through `load_frames`, as any other image. Needs SimpleITK (`pip install ultrasam-hf[volumes]`).
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..models.image_loading import load_frames, min_max_to_uint8

VOLUME_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")
AXES = ("z", "y", "x")  # SimpleITK's array order: slicing along "z" gives the (y, x) planes


def _import_sitk():
    try:
        import SimpleITK as sitk
    except ImportError as error:
        raise ImportError(
            "Reading NIfTI / NRRD / MHA volumes needs SimpleITK: `pip install ultrasam-hf[volumes]`."
        ) from error
    return sitk


def volume_suffix(path) -> str | None:
    """The volume suffix of `path` (`.nii.gz`, `.nrrd`, ...), `None` for other files."""
    name = Path(path).name.lower()
    return next((suffix for suffix in VOLUME_SUFFIXES if name.endswith(suffix)), None)


def is_volume_path(path) -> bool:
    return volume_suffix(path) is not None


@dataclass
class Volume:
    """A volume's slices as frames and what writing a mask volume back needs: the SimpleITK image (its geometry),
    the slicing axis and the array shape `(z, y, x)`."""

    frames: list
    axis: str
    reference: object
    shape: tuple


def _check_axis(axis: str) -> int:
    if axis not in AXES:
        raise ValueError(f"axis={axis!r} is not one of {AXES} (SimpleITK array order).")
    return AXES.index(axis)


def read_volume(path, axis: str = "z") -> Volume:
    """Read a NIfTI / NRRD / MHA file as frames along `axis` (`"z"`, `"y"` or `"x"` of the `(z, y, x)` array)."""
    sitk = _import_sitk()
    index = _check_axis(axis)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No such volume file: '{path}'.")
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as error:
        raise ValueError(f"Cannot read volume '{path}' (corrupt, truncated or not NIfTI/NRRD/MHA): {error}") from error
    dimension, channels = image.GetDimension(), image.GetNumberOfComponentsPerPixel()
    if dimension not in (2, 3):
        raise ValueError(f"'{path}' is a {dimension}D image: expected a 2D image or a 3D volume.")
    if channels not in (1, 3, 4):
        raise ValueError(f"'{path}' has {channels} components per pixel: expected 1 (grey), 3 (RGB) or 4 (RGBA).")
    array = sitk.GetArrayFromImage(image)
    if dimension == 2:
        array = array[None]  # one slice: a 2D image is a volume of depth 1
    if array.size == 0:
        raise ValueError(f"'{path}' is empty (shape {array.shape}).")
    shape = array.shape[:3]
    if array.dtype != np.uint8:
        if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
            raise ValueError(f"'{path}' has NaN or infinite voxels: only finite voxels can be scaled to uint8.")
        array = min_max_to_uint8(array)  # over the whole volume: slices keep their relative brightness
    slices = np.moveaxis(array, index, 0)
    frames = [load_frames(np.ascontiguousarray(plane))[0] for plane in slices]
    return Volume(frames=frames, axis=axis, reference=image, shape=shape)


def write_mask_volume(labels: np.ndarray, path, volume: Volume | None = None, spacing=None) -> Path:
    """
    Write per-frame label masks `(T, H, W)` (0 background, k for object k) as a volume at `path` (the format follows
    the suffix: `.nii.gz`, `.nrrd`, `.mha`, ...).

    With `volume` (what `read_volume` returned), the frames go back along its axis and the mask gets the input's
    spacing, origin and direction. Without it (frames of a cine or of 2D images), the frames are stacked along `z`
    with `spacing` `[row, column]` in mm (as `load_frames(..., return_spacing=True)` gives it) or 1 mm.
    """
    sitk = _import_sitk()
    labels = np.asarray(labels)
    if labels.ndim != 3:
        raise ValueError(f"labels must be (frames, height, width), got shape {labels.shape}.")
    labels = labels.astype(np.uint8 if labels.max(initial=0) < 256 else np.uint16)
    if volume is not None:
        array = np.moveaxis(labels, 0, _check_axis(volume.axis))
        if array.shape != tuple(volume.shape):
            raise ValueError(f"labels of shape {labels.shape} do not fit the volume of shape {volume.shape}.")
        reference = volume.reference
        image = sitk.GetImageFromArray(array[0] if reference.GetDimension() == 2 else array)
        image.CopyInformation(reference)
    else:
        image = sitk.GetImageFromArray(labels)
        if spacing is not None:
            row, column = (float(value) for value in spacing)
            image.SetSpacing((column, row, 1.0))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(image, str(path), useCompression=True)
    return path


__all__ = ["AXES", "VOLUME_SUFFIXES", "Volume", "is_volume_path", "read_volume", "volume_suffix", "write_mask_volume"]
