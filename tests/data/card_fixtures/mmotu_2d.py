"""MMOTU OTU_2d: images/<n>.JPG, colour masks annotations/<n>.PNG (+ <n>_binary.PNG), train_cls.txt / val_cls.txt."""

import numpy as np

from . import formats as f


def make_release(root):
    base = root / "OTU_2d"
    mask = np.zeros((32, 40, 3), dtype=np.uint8)
    mask[4:16, 4:16] = (64, 0, 128)
    for number in (1, 2, 3):
        f.image(base / "images" / f"{number}.JPG", f.colour(seed=number))
        f.image(base / "annotations" / f"{number}.PNG", mask)
        f.image(base / "annotations" / f"{number}_binary.PNG", f.box(size=12))  # excluded copy
    f.text(base / "train_cls.txt", "1.JPG 0\n2.JPG 5\n")
    f.text(base / "val_cls.txt", "3.JPG 2\n")
    f.image(base / "images" / "4.JPG", f.colour(seed=4))  # in no class list
    f.image(base / "annotations" / "4.PNG", mask)
    return {"converted": 3, "skipped": 4, "classes": {"chocolate cyst": 1, "normal ovary": 1, "teratoma": 1}}
