"""TN-SCUI 2020 (openmedlab VOC archive): tnscui/JPEGImages/<id>.jpg with tnscui/SegmentationClass/<id>.png."""

from PIL import Image

from . import formats as f


def make_release(root):
    base = root / "tnscui"
    f.image(base / "JPEGImages" / "1.jpg", f.speckle(seed=1))
    palette = Image.fromarray(f.box(value=1), mode="P")  # VOC-style palette mask: index 1
    palette.putpalette([0, 0, 0, 128, 0, 0] + [0] * 762)
    palette.save(f.parent(base / "SegmentationClass" / "1.png"))
    f.image(base / "JPEGImages" / "2.jpg", f.speckle(seed=2))
    f.image(base / "SegmentationClass" / "2.png", f.box(left=20))
    f.image(base / "JPEGImages" / "3.jpg", f.speckle(seed=3))  # no mask
    return {"converted": 2, "skipped": 1, "classes": {"nodule": 2}}
