"""Writers of tiny generated files for the release fixtures (nothing here is copied from real data)."""

from pathlib import Path

import numpy as np
from PIL import Image


def speckle(height=32, width=40, seed=0) -> np.ndarray:
    """Grey ultrasound-like pixels, distinct per seed (so no two fixture images are near-duplicates)."""
    rng = np.random.default_rng(seed)
    return rng.gamma(2.0, 40.0, size=(height, width)).clip(1, 255).astype(np.uint8)


def rgb(height=32, width=40, seed=0) -> np.ndarray:
    return np.stack([speckle(height, width, seed + offset) for offset in (0, 1000, 2000)], axis=-1)


def box(height=32, width=40, top=4, left=4, size=10, value=255) -> np.ndarray:
    """A uint8 label map with one size x size square of `value` (100 px: above the cards' min_area of 16)."""
    labels = np.zeros((height, width), dtype=np.uint8)
    labels[top : top + size, left : left + size] = value
    return labels


def save(path: Path, array: np.ndarray, mode: str | None = None, palette: list | None = None) -> Path:
    """PNG / JPEG (quality 95) by suffix; `mode` converts first ("1", "RGB"), `palette` makes a P-mode image."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    picture = Image.fromarray(array)
    if palette is not None:
        picture = picture.convert("P")
        picture.putpalette(palette)
    elif mode:
        picture = picture.convert(mode)
    picture.save(path, **({"quality": 95} if path.suffix.lower() in (".jpg", ".jpeg") else {}))
    return path


def write_text(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


def save_mha(path: Path, array: np.ndarray) -> Path:
    """Uncompressed MetaImage (as the PSFHS release); `array` is [z, y, x] or [y, x]."""
    import SimpleITK as sitk

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(sitk.GetImageFromArray(array), str(path), False)
    return path
