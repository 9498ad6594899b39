"""HC18: training_set/NNN_HC.png + NNN_HC_Annotation.png (official: ellipse outlines; some copies: filled), and
training_set_pixel_size_and_HC.csv."""

import cv2
import numpy as np

from .tiny_files import save, speckle, write_text


def ellipse(filled: bool) -> np.ndarray:
    canvas = np.zeros((40, 56), dtype=np.uint8)
    cv2.ellipse(canvas, (28, 20), (18, 12), 15, 0, 360, 255, thickness=-1 if filled else 1)
    return canvas


def make_release(root):
    rows = ["filename,pixel size(mm),head circumference (mm)"]
    for index, filled in enumerate([False, False, True]):
        save(root / "training_set" / f"{index:03d}_HC.png", speckle(40, 56, index))
        save(root / "training_set" / f"{index:03d}_HC_Annotation.png", ellipse(filled))
        rows.append(f"{index:03d}_HC.png,0.0{index + 6}9135804,44.3")
    write_text(root / "training_set_pixel_size_and_HC.csv", "\n".join(rows) + "\n")
    return {"converted": 3, "skipped": 0, "classes": {"fetal head": 3}}
