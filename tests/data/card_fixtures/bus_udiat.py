"""BUS / Dataset B (UDIAT, on request): BUS/original/<name>.png with BUS/GT/<name>.png."""

import numpy as np

from . import formats as f


def make_release(root):
    f.image(root / "BUS" / "original" / "000001.png", f.speckle(seed=1))
    f.image(root / "BUS" / "GT" / "000001.png", np.where(f.box() > 0, 250, 100).astype(np.uint8))
    f.image(root / "BUS" / "original" / "000002.png", f.speckle(seed=2))
    f.image(root / "BUS" / "GT" / "000002.png", f.box(value=140))  # below 150: empty
    return {"converted": 1, "skipped": 1, "classes": {"nodule": 1}}
