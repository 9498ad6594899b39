"""BUS-UCLM: images/PPPP_NNN.png (RGB), masks/PPPP_NNN.png (RGB: green benign, red malignant, black normal),
INFO.csv (';'-separated). Normal images have all-black masks: the card records them as skipped (empty mask).
Patient HESN's images are stored smaller (RGBA) than their masks: the card resizes each mask to its image."""

import numpy as np

from .tiny_files import box, rgb, save, write_text

# name, INFO.csv label, mask colour (None: normal image, all-black mask)
IMAGES = [
    ("ALWI_000", "Benign", (0, 255, 0)),
    ("ALWI_001", "Normal", None),
    ("BEJO_002", "Malignant", (255, 0, 0)),
    ("HESN_003", "Benign", (0, 255, 0)),
]


def make_release(root):
    info = ["Image;Resolution;Label;Doppler;Marks;Combined"]
    for seed, (name, label, colour) in enumerate(IMAGES):
        if name.startswith("HESN"):
            save(root / "images" / f"{name}.png", rgb(24, 33, seed), mode="RGBA")
        else:
            save(root / "images" / f"{name}.png", rgb(30, 42, seed))
        mask = np.zeros((30, 42, 3), dtype=np.uint8)
        if colour:
            mask[box(30, 42, top=6, left=8 + seed) > 0] = colour
        save(root / "masks" / f"{name}.png", mask)
        info.append(f"{name}.png;42x30;{label};No;No;No")
    write_text(root / "INFO.csv", "\ufeff" + "\n".join(info) + "\n")  # the release's INFO.csv starts with a BOM
    return {
        "converted": 3,
        "skipped": 1,
        "classes": {"benign lesion": 2, "malignant lesion": 1},
        "class_labels": {"benign": 2, "malignant": 1},
    }
