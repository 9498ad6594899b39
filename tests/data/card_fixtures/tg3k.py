"""TG3K as preprocessed by wimaniac/thyroid-segmentation (its data/processed folder):
{image,mask}/{train,val,test}/NNNN.jpg, frames letterboxed (black bars) to a square, masks JPEG 0/255 (thresholded),
plus the repository's scripts. Most released masks carry a mark of a few pixels in the top-left corner (below
min_area: dropped and recorded, not an instance)."""

import numpy as np

from .tiny_files import box, rgb, save, write_text


def letterboxed(seed: int) -> np.ndarray:
    frame = np.zeros((40, 40, 3), dtype=np.uint8)
    frame[6:34] = rgb(28, 40, seed)  # a wide frame scaled into the square: black bars above and below
    return frame


def make_release(root):
    for seed, (split, name) in enumerate([("train", "0001"), ("train", "0004"), ("val", "0000"), ("test", "0002")]):
        save(root / "image" / split / f"{name}.jpg", letterboxed(seed))
        mask = box(40, 40, top=12, left=8 + seed, size=12)
        mask[0, 0:3] = 255  # the corner mark
        save(root / "mask" / split / f"{name}.jpg", mask)
    write_text(root / "preprocess_tg3k.py", "# generated placeholder for the repository's preprocessing script\n")
    write_text(root / "check_tg3k_format.py", "# generated placeholder for the repository's format check\n")
    return {"converted": 4, "skipped": 0, "classes": {"thyroid gland": 4}}
