"""FH-PS-AOP, PSFHS release: image_mha/NNNNN.mha ([3, H, W] uint8, three equal planes) and label_mha/NNNNN.mha
([H, W]: 0 background, 1 pubic symphysis, 2 fetal head), uncompressed MetaImage."""

import numpy as np

from .tiny_files import save_mha, speckle


def labels(seed: int) -> np.ndarray:
    mask = np.zeros((32, 32), dtype=np.uint8)
    mask[3:9, 10 + seed : 18 + seed] = 1  # pubic symphysis: small, near the probe
    mask[14:28, 6:24] = 2  # fetal head
    return mask


def make_release(root):
    for seed, name in enumerate(["03744", "03745"]):
        plane = speckle(32, 32, seed)
        save_mha(root / "image_mha" / f"{name}.mha", np.stack([plane] * 3))
        save_mha(root / "label_mha" / f"{name}.mha", labels(seed))
    return {"converted": 2, "skipped": 0, "classes": {"pubic symphysis": 2, "fetal head": 2}}
