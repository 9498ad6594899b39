# Copyright 2025 The ultrasam-hf authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.
"""
Turn whatever an ultrasound user holds into `HxWx3 uint8 RGB` frames.

Ultrasound arrives as PNG/JPEG exports, 16-bit TIFFs, NumPy arrays of any dtype and DICOM files (RGB,
palette colour, YCbCr, MONOCHROME1/2, multi-frame cine). [`load_frames`] normalises all of them to a list of
`HxWx3 uint8` RGB frames, one per image (a cine yields one item per frame). It is the package's only image decoder:
inference, the processor, the data build, evaluation and the downstream tasks all see the same pixels.

- `uint8` pixels are kept as they are; `bool` becomes 0/255; any other integer or float dtype is min-max
  scaled to 0..255 per frame (a constant frame becomes zeros).
- Grey images are repeated over 3 channels (`rgb=False` keeps them `HxW`); an alpha channel is dropped.
- DICOM: modality LUT, then VOI LUT or window centre/width, for MONOCHROME; MONOCHROME1 is inverted; palette
  colour through its (8- or 16-bit) LUT; YBR_FULL/YBR_FULL_422 converted to RGB.

Every input that can fail raises an [`ImageLoadError`] (`ultrasam_hf.errors`) naming it. Files are decoded under a
pixel limit ([`decoding_pixel_limit`], default 64 MP per frame) checked on the header, before any pixel is decoded.

This module only needs NumPy and Pillow; pydicom is imported when a DICOM is met
(`pip install ultrasam-hf[dicom]`). It never reads or copies patient-identifying tags.
"""

import contextlib
import io
import os
import warnings
from pathlib import Path

import numpy as np
import PIL.Image
import PIL.ImageSequence

from .errors import ImageDecoderMissingError, ImageLoadError, ImageNotFoundError, UltraSamError, UsageError

_READABLE_HINT = "give a PNG, JPEG, BMP, TIFF or DICOM file that opens in an image viewer"
_DICOM_INSTALL_HINT = "Reading DICOM needs pydicom: `pip install ultrasam-hf[dicom]`."
_PIXEL_DATA_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
# Decoding limit per frame: well below Pillow's own refusal (2 x 89.5 MP) and about 200 MB per RGB frame.
DEFAULT_MAX_PIXELS = 64_000_000
MAX_PIXELS_ENV = "ULTRASAM_MAX_PIXELS"


def decoding_pixel_limit(max_pixels: int | None = None) -> int | None:
    """The per-frame pixel limit for decoding: `max_pixels` if given, else `$ULTRASAM_MAX_PIXELS`, else
    `DEFAULT_MAX_PIXELS` (64 MP). 0 means no limit (`None` is returned)."""
    if max_pixels is None:
        value = os.environ.get(MAX_PIXELS_ENV, "").strip()
        if not value:
            return DEFAULT_MAX_PIXELS
        try:
            max_pixels = int(float(value))
        except ValueError:
            raise UsageError(f"${MAX_PIXELS_ENV}={value!r} is not a number of pixels (e.g. 100000000, 0 = none).")
    if max_pixels < 0:
        raise UsageError(f"the pixel limit must be >= 0 (0 = no limit), got {max_pixels}.")
    return int(max_pixels) or None


def _check_pixel_count(height: int, width: int, name: str, limit: int | None) -> None:
    if limit is not None and int(height) * int(width) > limit:
        raise ImageLoadError(
            f"{name} is {width}x{height} (width x height) = {int(height) * int(width):,} pixels, above the decoding "
            f"limit of {limit:,} pixels per frame: downscale it, or raise the limit with --max-pixels N or "
            f"${MAX_PIXELS_ENV}=N (about 3 bytes per pixel are needed, plus the model's working memory)."
        )


def _import_pydicom():
    # Every pydicom import goes through here, inside `try`: transformers' remote-code check (`check_imports`) then
    # does not require pydicom from users who never read DICOM.
    try:
        import pydicom
        import pydicom.pixels  # noqa: F401
    except ImportError as error:
        raise ImportError(_DICOM_INSTALL_HINT) from error
    return pydicom


def _is_pydicom_dataset(obj) -> bool:
    # Checked by name so that non-DICOM users never import pydicom.
    return any(cls.__module__.startswith("pydicom") and cls.__name__ == "Dataset" for cls in type(obj).__mro__)


def _is_dicom_file(path: Path) -> bool:
    if path.suffix.lower() in (".dcm", ".dicom"):
        return True
    try:
        with path.open("rb") as handle:
            handle.seek(128)
            return handle.read(4) == b"DICM"
    except OSError as error:
        raise ImageLoadError(f"Cannot read '{path}': {error.strerror or error} (check its permissions).") from error


def min_max_to_uint8(array: np.ndarray) -> np.ndarray:
    """Min-max scale `array` (any real dtype) to 0..255; a constant array becomes zeros."""
    array = array.astype(np.float64)
    low, high = array.min(), array.max()
    if high <= low:
        return np.zeros(array.shape, dtype=np.uint8)
    return np.round((array - low) * (255.0 / (high - low))).astype(np.uint8)


def _frame_to_uint8(frame: np.ndarray, name: str) -> np.ndarray:
    if frame.dtype == np.uint8:
        return frame
    if frame.dtype == np.bool_:
        return frame.astype(np.uint8) * 255
    if np.issubdtype(frame.dtype, np.floating):
        if not np.isfinite(frame).all():
            raise ImageLoadError(
                f"{name} has NaN or infinite pixel values: only finite pixels can be scaled to uint8."
            )
        return min_max_to_uint8(frame)
    if np.issubdtype(frame.dtype, np.integer):
        return min_max_to_uint8(frame)
    raise ImageLoadError(
        f"{name} has unsupported dtype {frame.dtype}: expected bool, an integer or a real floating dtype."
    )


def _to_rgb(frame: np.ndarray, rgb: bool = True) -> np.ndarray:
    """`HxW`, `HxWx1`, `HxWx3` or `HxWx4` uint8 → contiguous `HxWx3` uint8 (grey ones `HxW` when not `rgb`)."""
    if frame.ndim == 3 and frame.shape[-1] == 1:
        frame = frame[..., 0]
    if frame.ndim == 2:
        return np.ascontiguousarray(np.repeat(frame[..., None], 3, axis=-1) if rgb else frame)
    return np.ascontiguousarray(frame[..., :3])


def reduce_frame(frame: np.ndarray, factor: int) -> np.ndarray:
    """`HxW` or `HxWx3` uint8 `frame` reduced by an integer `factor` (Pillow's box average over `factor x factor`
    blocks, the last ones partial: the size becomes `ceil(H / factor) x ceil(W / factor)`)."""
    if factor <= 1:
        return frame
    return np.asarray(PIL.Image.fromarray(frame).reduce(int(factor)))


def _array_frames(array: np.ndarray, name: str) -> list[np.ndarray]:
    """Split a NumPy image or frame stack into channel-last frames (still of the input dtype)."""
    if array.size == 0:
        raise ImageLoadError(f"{name} is empty (shape {array.shape}).")
    if array.ndim == 2:
        return [array]
    if array.ndim == 3:
        if array.shape[-1] in (1, 3, 4):
            return [array]
        if array.shape[0] in (1, 3, 4):  # channel-first CxHxW, as transformers accepts
            return [np.moveaxis(array, 0, -1)]
    if array.ndim == 4 and array.shape[-1] in (1, 3, 4):  # NxHxWxC frame stack
        return list(array)
    raise ImageLoadError(
        f"{name} has unsupported shape {array.shape}: expected HxW, HxWxC, CxHxW (C in 1, 3, 4) "
        "or an NxHxWxC frame stack."
    )


def _frames_from_array(array: np.ndarray, name: str = "image", rgb: bool = True) -> list[np.ndarray]:
    return [_to_rgb(_frame_to_uint8(frame, name), rgb) for frame in _array_frames(array, name)]


def _frames_from_pil(
    image: PIL.Image.Image, name: str = "PIL image", rgb: bool = True, limit: int | None = None
) -> list[np.ndarray]:
    frames = []
    for frame in PIL.ImageSequence.Iterator(image):
        if frame.width == 0 or frame.height == 0:
            raise ImageLoadError(f"{name} is empty (size {frame.size}).")
        _check_pixel_count(frame.height, frame.width, name, limit)
        if frame.mode in ("LA", "La"):  # grey with alpha: the alpha is dropped, the image stays grey
            frame = frame.convert("L")
        elif frame.mode not in ("1", "L", "RGB", "RGBA") and not frame.mode.startswith(("I", "F")):
            frame = frame.convert("RGBA" if "A" in frame.mode or "transparency" in frame.info else "RGB")
        frames.extend(_frames_from_array(np.asarray(frame), name, rgb))
    return frames


@contextlib.contextmanager
def _decoder_warnings(name: str):
    """A decoder's warnings (Pillow on odd TIFF tags, ...): dropped when decoding fails (the error says it all),
    else re-issued once each naming the input. Pillow's decompression-bomb warning is dropped: our limit rules."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for message in dict.fromkeys(
        str(w.message) for w in caught if not issubclass(w.category, PIL.Image.DecompressionBombWarning)
    ):
        warnings.warn(f"{name}: {message}", UserWarning, stacklevel=4)


def _decode_pil(source, name: str, rgb: bool, limit: int | None) -> list[np.ndarray]:
    """Decode a file path or a binary stream with Pillow; the size is checked on the header, before decoding."""
    try:
        with _decoder_warnings(name):
            with PIL.Image.open(source) as image:
                _check_pixel_count(image.height, image.width, name, limit)
                image.load()
                return _frames_from_pil(image, name=name, rgb=rgb, limit=limit)
    except UltraSamError:
        raise
    except PIL.Image.DecompressionBombError as error:
        raise ImageLoadError(f"Cannot read {name}: Pillow refuses it as a decompression bomb ({error}).") from error
    except MemoryError as error:
        raise ImageLoadError(f"Cannot read {name}: not enough memory to decode it.") from error
    except Exception as error:  # Pillow's plugins raise many types on corrupt files (OSError, SyntaxError, ...)
        reason = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        raise ImageLoadError(
            f"Cannot read {name} (corrupt, truncated or not an image): {reason}; {_READABLE_HINT}."
        ) from error


def _frames_from_file(path: Path, rgb: bool, return_spacing: bool, limit: int | None):
    if not path.exists():
        raise ImageNotFoundError(f"No such image file: '{path}' (check the path).")
    if not path.is_file():
        raise ImageLoadError(f"'{path}' is not a file: {_READABLE_HINT}.")
    if _is_dicom_file(path):
        return _read_dicom(path, rgb, return_spacing, limit)
    frames = _decode_pil(path, f"image file '{path}'", rgb, limit)
    return (frames, None) if return_spacing else frames


def load_frames(image, *, rgb: bool = True, return_spacing: bool = False, max_pixels: int | None = None):
    """
    Load one image-like input as a list of `HxWx3 uint8` RGB frames.

    Args:
        image (`PIL.Image.Image`, `np.ndarray`, `torch.Tensor`, `str`, `os.PathLike`, `pydicom.Dataset`, or a
            `{"bytes": ..., "path": ...}` dict as a `datasets.Image` column stores it):
            A PIL image of any mode (multi-page images give one frame per page); an array `HxW`, `HxWxC`,
            `CxHxW` (C in 1, 3, 4) or an `NxHxWxC` frame stack; an image or DICOM file path; or a DICOM dataset.
        rgb (`bool`, *optional*, defaults to `True`):
            `False` keeps grey images `HxW` (colour ones stay `HxWx3`): what the data build stores.
        return_spacing (`bool`, *optional*, defaults to `False`):
            Also return the pixel spacing `[row, column]` in mm that a DICOM records (`PixelSpacing`, else the
            first ultrasound region's physical deltas), `None` when the input records none.
        max_pixels (`int`, *optional*):
            Refuse to decode a file, bytes, PIL image or DICOM with more pixels per frame (checked on the header);
            default `$ULTRASAM_MAX_PIXELS`, else 64,000,000; 0: no limit. Arrays are already decoded: not checked.

    Returns:
        `list[np.ndarray]`: the frames, each `HxWx3` (or `HxW`) and `uint8`; with `return_spacing`, the tuple
        `(frames, spacing)`.

    Raises:
        [`ImageLoadError`] naming the input ([`ImageNotFoundError`] for a missing file,
        [`ImageDecoderMissingError`] for a compressed DICOM without its decoder plugin).

    Example:

    ```python
    >>> import numpy as np
    >>> from ultrasam_hf import load_frames
    >>> [frame.shape for frame in load_frames(np.zeros((4, 5), dtype=np.uint16))]
    [(4, 5, 3)]
    ```
    """
    limit = decoding_pixel_limit(max_pixels)
    if isinstance(image, (str, os.PathLike)):
        return _frames_from_file(Path(image), rgb, return_spacing, limit)
    if _is_pydicom_dataset(image):
        return _read_dicom(image, rgb, return_spacing, limit)
    if isinstance(image, dict) and (image.get("bytes") or image.get("path")):  # a `datasets.Image` cell, undecoded
        if not image.get("bytes"):
            return _frames_from_file(Path(image["path"]), rgb, return_spacing, limit)
        frames = _decode_pil(io.BytesIO(image["bytes"]), "image bytes", rgb, limit)
    elif isinstance(image, PIL.Image.Image):
        try:
            frames = _frames_from_pil(image, rgb=rgb, limit=limit)
        except UltraSamError:
            raise
        except Exception as error:  # a lazily opened PIL image decodes here
            raise ImageLoadError(f"Cannot decode the PIL image: {type(error).__name__}: {error}") from error
    else:
        if hasattr(image, "detach") and hasattr(image, "numpy"):  # torch.Tensor, without importing torch
            image = image.detach().cpu()
            image = (image.float() if str(image.dtype) == "torch.bfloat16" else image).numpy()
        if not isinstance(image, np.ndarray):
            raise ImageLoadError(
                f"Unsupported image input of type {type(image).__name__}: expected a PIL image, a NumPy array, "
                "a torch tensor, a file path or a pydicom Dataset."
            )
        frames = _frames_from_array(image, rgb=rgb)
    return (frames, None) if return_spacing else frames


# ---------------------------------------------------------------------------------------------------------- DICOM


def _decode_dicom(ds, name: str) -> tuple[np.ndarray, dict]:
    pydicom = _import_pydicom()
    get_decoder = pydicom.pixels.get_decoder

    transfer_syntax = getattr(ds, "file_meta", {}).get("TransferSyntaxUID", None)
    if transfer_syntax is None:
        # An in-memory dataset without file meta: only native (uncompressed) pixel data can be read.
        ds = ds.copy()
        ds.ensure_file_meta()
        ds.file_meta.TransferSyntaxUID = transfer_syntax = pydicom.uid.ExplicitVRLittleEndian
    try:
        decoder = get_decoder(transfer_syntax)
    except NotImplementedError as error:
        raise ImageLoadError(
            f"{name} uses transfer syntax '{transfer_syntax}', which pydicom cannot decode."
        ) from error
    if not decoder.is_available:
        raise ImageDecoderMissingError(
            f"Cannot decode {name}: no pixel data decoder plugin is installed for '{transfer_syntax.name}'. "
            f"Install one of the missing plugins: {'; '.join(decoder.missing_dependencies)}."
        )
    try:
        return decoder.as_array(ds)
    except RuntimeError as error:
        raise ImageDecoderMissingError(
            f"Cannot decode {name} ('{transfer_syntax.name}'): every decoder plugin failed or is missing "
            f"({'; '.join(decoder.missing_dependencies) or 'no missing plugin'}). pydicom said: {error}"
        ) from error
    except MemoryError as error:
        raise ImageLoadError(f"Cannot decode {name}: not enough memory.") from error
    except Exception as error:  # corrupt pixel data: pydicom and its plugins raise many types
        raise ImageLoadError(
            f"Cannot read the pixel data of {name} (corrupt or truncated?): {type(error).__name__}: {error}; re-export "
            "it, or give a PNG / JPEG export."
        ) from error


def _first_value(value) -> float:
    """WindowCenter/WindowWidth may hold several alternative views: use the first."""
    several = isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue"
    return float(value[0]) if several else float(value)


def _monochrome_to_uint8(pixels: np.ndarray, ds) -> np.ndarray:
    """Modality LUT, then VOI LUT or window, then 0..255: the way a viewer shows a MONOCHROME image."""
    pixel_utils = _import_pydicom().pixels
    apply_modality_lut, apply_voi = pixel_utils.apply_modality_lut, pixel_utils.apply_voi

    has_modality = "RescaleSlope" in ds or "RescaleIntercept" in ds or "ModalityLUTSequence" in ds
    if has_modality:
        pixels = apply_modality_lut(pixels, ds)
    if ds.get("VOILUTSequence"):
        return min_max_to_uint8(apply_voi(pixels, ds))
    if ds.get("WindowCenter") is not None and ds.get("WindowWidth") is not None:
        center, width = _first_value(ds.WindowCenter), _first_value(ds.WindowWidth)
        low, high = center - width / 2.0, center + width / 2.0
        scaled = (np.clip(pixels.astype(np.float64), low, high) - low) * (255.0 / max(high - low, 1e-8))
        return np.round(scaled).astype(np.uint8)
    if pixels.dtype == np.uint8:
        return pixels
    # No display transform: stretch over the whole dataset, so that cine frames stay comparable.
    return min_max_to_uint8(pixels)


def _palette_to_uint8(pixels: np.ndarray, ds) -> np.ndarray:
    rgb = _import_pydicom().pixels.apply_color_lut(pixels, ds)
    if rgb.dtype == np.uint8:
        return rgb
    # 16-bit LUT entries carry the colour in the high byte; some writers store 8-bit values in them.
    return rgb.astype(np.uint8) if rgb.max() <= 255 else (rgb >> 8).astype(np.uint8)


def dicom_pixel_spacing(ds) -> list[float] | None:
    """`[row, column]` spacing in mm: `PixelSpacing`, else the first ultrasound region's deltas (given in cm)."""
    if "PixelSpacing" in ds:
        return [float(value) for value in ds.PixelSpacing]
    regions = ds.get("SequenceOfUltrasoundRegions")
    if regions:
        region = regions[0]
        if region.get("PhysicalUnitsXDirection") == 3 and region.get("PhysicalUnitsYDirection") == 3:  # 3 = cm
            return [float(region.PhysicalDeltaY) * 10.0, float(region.PhysicalDeltaX) * 10.0]
    return None


def read_dicom(path_or_dataset, *, rgb: bool = True, return_spacing: bool = False, max_pixels: int | None = None):
    """
    Read a DICOM file or `pydicom.Dataset` as a list of `HxWx3 uint8` RGB frames (one per cine frame).

    MONOCHROME1/2 go through the modality LUT and the VOI LUT (or window centre/width) and MONOCHROME1 is
    inverted; PALETTE COLOR goes through its colour LUT (16-bit LUTs included); YBR_FULL/YBR_FULL_422 are
    converted to RGB. Only pixel-module tags and the pixel spacing are read. `rgb`, `return_spacing` and
    `max_pixels` as in [`load_frames`].

    Example:

    ```python
    >>> from pydicom.data import get_testdata_file
    >>> from ultrasam_hf.models.image_loading import read_dicom
    >>> frames = read_dicom(get_testdata_file("US1_UNCR.dcm"))
    >>> len(frames), frames[0].shape, frames[0].dtype
    (1, (480, 640, 3), dtype('uint8'))
    ```
    """
    return _read_dicom(path_or_dataset, rgb, return_spacing, decoding_pixel_limit(max_pixels))


def _read_dicom(path_or_dataset, rgb: bool, return_spacing: bool, limit: int | None):
    if isinstance(path_or_dataset, (str, os.PathLike)):
        path = Path(path_or_dataset)
        name = f"DICOM file '{path}'"
        if not path.is_file():
            raise ImageNotFoundError(f"No such DICOM file: '{path}' (check the path).")
        pydicom = _import_pydicom()
        try:
            with warnings.catch_warnings():  # pydicom's warnings about tag values can quote patient data
                warnings.simplefilter("ignore")
                ds = pydicom.dcmread(path)
        except MemoryError as error:
            raise ImageLoadError(f"Cannot read {name}: not enough memory.") from error
        except Exception as error:  # pydicom raises many types on corrupt headers
            raise ImageLoadError(
                f"Cannot read {name} (corrupt, truncated or not DICOM): {type(error).__name__}: {error}; re-export "
                "it from the scanner or PACS, or give a PNG / JPEG export."
            ) from error
    elif _is_pydicom_dataset(path_or_dataset):
        ds, name = path_or_dataset, "DICOM dataset"
    else:
        raise ImageLoadError(f"read_dicom expects a path or a pydicom Dataset, got {type(path_or_dataset).__name__}.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _dicom_frames(ds, name, rgb, return_spacing, limit)
    except (UltraSamError, ImportError):
        raise
    except MemoryError as error:
        raise ImageLoadError(f"Cannot decode {name}: not enough memory.") from error
    except Exception as error:  # an element that does not parse (wrong VR, bad LUT): the file is corrupt
        raise ImageLoadError(
            f"Cannot read the image of {name} (corrupt pixel module?): {type(error).__name__}: {error}"
        ) from error


def _dicom_frames(ds, name: str, rgb: bool, return_spacing: bool, limit: int | None):
    convert_color_space = _import_pydicom().pixels.convert_color_space

    if not any(keyword in ds for keyword in _PIXEL_DATA_KEYWORDS):
        raise ImageLoadError(
            f"{name} has no pixel data (PixelData absent): nothing to segment (a truncated file, or a report DICOM?)."
        )
    if not ds.get("Rows") or not ds.get("Columns"):
        raise ImageLoadError(f"{name} has an empty image (Rows={ds.get('Rows')}, Columns={ds.get('Columns')}).")
    _check_pixel_count(ds.Rows, ds.Columns, name, limit)

    pixels, meta = _decode_dicom(ds, name)
    photometric = str(meta.get("photometric_interpretation", ds.get("PhotometricInterpretation", "")))
    samples = int(meta.get("samples_per_pixel", ds.get("SamplesPerPixel", 1)))
    n_frames = int(meta.get("number_of_frames", 1) or 1)
    if n_frames == 1:
        pixels = pixels[None]

    if photometric in ("MONOCHROME1", "MONOCHROME2"):
        frames = _monochrome_to_uint8(pixels, ds)
        if photometric == "MONOCHROME1":
            frames = 255 - frames
    elif photometric == "PALETTE COLOR":
        frames = _palette_to_uint8(pixels, ds)
    elif photometric in ("RGB", "YBR_FULL", "YBR_FULL_422") and samples == 3:
        frames = pixels
        if pixels.dtype != np.uint8:  # 16/32-bit colour: scale the stored bit range to 8 bits
            max_value = 2.0 ** int(meta.get("bits_stored", ds.get("BitsStored", 16))) - 1
            frames = np.round(np.clip(pixels, 0, max_value) * (255.0 / max_value)).astype(np.uint8)
        if photometric != "RGB":  # pydicom converts YCbCr itself unless told not to: only convert what is left
            frames = convert_color_space(frames, photometric, "RGB")
    else:
        raise ImageLoadError(
            f"{name} has unsupported Photometric Interpretation '{photometric}' ({samples} samples per pixel): "
            "expected MONOCHROME1, MONOCHROME2, PALETTE COLOR, RGB, YBR_FULL or YBR_FULL_422."
        )
    frames = [_to_rgb(frame, rgb) for frame in frames]
    return (frames, dicom_pixel_spacing(ds)) if return_spacing else frames


__all__ = [
    "DEFAULT_MAX_PIXELS",
    "decoding_pixel_limit",
    "dicom_pixel_spacing",
    "load_frames",
    "min_max_to_uint8",
    "read_dicom",
    "reduce_frame",
]
