# ruff: noqa: N999  (the card slug starts with a digit; the module is imported by name with importlib)
"""105US (ResearchGate 329586355): Images/<n>.png with Masks/<n> G man.png (0/255)."""

from . import formats as f


def make_release(root):
    for number in (1, 2, 3, 4):
        f.image(root / "Images" / f"{number}.png", f.speckle(seed=number))
    f.image(root / "Masks" / "1 G man.png", f.box())
    f.image(root / "Masks" / "2 G man.png", f.box(top=12, left=20))
    f.image(root / "Masks" / "3 G man.png", f.box(value=0))  # empty mask: skipped
    # 4.png has no mask: skipped as missing
    return {"converted": 2, "skipped": 2, "classes": {"tumor": 2}}
