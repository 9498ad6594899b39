"""UBPD: images/PPP_FFF.jpg and labels/json_train/PPP_FFF.json (LabelMe 3.16 polygons, pinyin labels).

Mirrors the release's traps: a GBK-encoded JSON (Chinese imagePath), a stale imagePath naming another frame, a
Windows "..\\" imagePath, and embedded imageData with the outlines drawn in (the card must read images/ instead).
"""

import base64
import io
import json

import numpy as np
from PIL import Image, ImageDraw

from .tiny_files import rgb, save, write_text

POLYGONS = {
    "shenjing": [[4, 4], [14, 4], [14, 13], [4, 13]],
    "dongmai": [[22, 6], [32, 6], [32, 16], [22, 16]],
    "jingmai": [[6, 22], [16, 22], [16, 32], [6, 32]],
    "jirouzuzhi": [[24, 22], [38, 22], [38, 34], [24, 34]],
}
# stem, imagePath written by the annotation tool, encoding, labels
DOCUMENTS = [
    ("1_10", "1_9.jpg", "utf-8", ["shenjing", "dongmai"]),
    ("2_1_0", "2-1-标定.tif", "gbk", ["shenjing", "jingmai", "jirouzuzhi"]),
    ("18_8", "..\\18_8.jpg", "utf-8", ["dongmai", "jingmai"]),
]


def embedded_with_outlines(pixels: np.ndarray, labels: list) -> str:
    picture = Image.fromarray(pixels)
    draw = ImageDraw.Draw(picture)
    for label in labels:
        draw.polygon([tuple(point) for point in POLYGONS[label]], outline=(255, 255, 255))
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def make_release(root):
    for seed, (stem, image_path, encoding, labels) in enumerate(DOCUMENTS):
        pixels = rgb(40, 44, seed)
        save(root / "images" / f"{stem}.jpg", pixels)
        shapes = [
            {
                "label": label,
                "line_color": None,
                "fill_color": None,
                "points": POLYGONS[label],
                "shape_type": "polygon",
            }
            for label in labels
        ]
        document = {
            "version": "3.16.7",
            "flags": {},
            "shapes": shapes,
            "lineColor": [0, 255, 0, 128],
            "fillColor": [255, 0, 0, 128],
            "imagePath": image_path,
            "imageData": embedded_with_outlines(pixels, labels),
            "imageHeight": 40,
            "imageWidth": 44,
        }
        write_text(root / "labels" / "json_train" / f"{stem}.json", json.dumps(document, ensure_ascii=False), encoding)
    return {"converted": 3, "skipped": 0, "classes": {"nerve": 2, "artery": 2, "vein": 2, "muscle": 1}}
