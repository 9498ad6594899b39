"""USGRA: images/NNNN.png + masks/NNNN.png (palette: 0 background, 1 nerve, 2 vessel), test/images + test/masks."""

import numpy as np

from .tiny_files import save, speckle, write_text

PALETTE = [0, 0, 0, 255, 255, 0, 255, 0, 0] + [0] * (256 * 3 - 9)


def labels(seed: int) -> np.ndarray:
    """One nerve and two vessels (three instances, two classes), as in most USGRA masks."""
    mask = np.zeros((40, 48), dtype=np.uint8)
    mask[4 + seed : 14 + seed, 4:14] = 1
    mask[20:26, 30:36] = 2
    mask[30:36, 8:14] = 2
    return mask


def make_release(root):
    for seed, folder in enumerate(["", "", "test/"]):
        name = f"{seed:04d}.png"
        save(root / f"{folder}images" / name, speckle(40, 48, seed))
        save(root / f"{folder}masks" / name, labels(seed), palette=PALETTE)
    write_text(root / "LICENSE", "generated fixture licence text\n")
    return {"converted": 3, "skipped": 0, "classes": {"nerve": 3, "vessel": 6}}
