"""CCAUI: "US images/SCANID_slice_N.png" (RGB) and "Expert mask images/SCANID_slice_N.png" (0/255), two scans."""

from .tiny_files import box, rgb, save


def make_release(root):
    names = [
        f"{scan}_slice_{frame}.png" for scan in ("202201121748100022VAS", "202201121752220024VAS") for frame in (1, 7)
    ]
    for seed, name in enumerate(names):
        save(root / "US images" / name, rgb(36, 40, seed))
        save(root / "Expert mask images" / name, box(36, 40, top=12, left=4 + seed, size=8 + seed))
    return {"converted": 4, "skipped": 0, "classes": {"carotid artery": 4}}
