"""EchoNet-Pediatric: pediatric_echo_avi/pediatric_echo_avi/{A4C,PSAX}/Videos/<id>.avi with a per-view
VolumeTracings.csv (FileName,X,Y,Frame; frames counted from 1, "No Systolic" rows) and FileList.csv."""

from . import formats as f


def square(name, frame, top, left, size):
    return [
        [name, x, y, frame]
        for x, y in ((left, top), (left + size, top), (left + size, top + size), (left, top + size))
    ]


def make_release(root):
    base = root / "pediatric_echo_avi" / "pediatric_echo_avi"
    for view, seed in (("A4C", 0), ("PSAX", 50)):
        f.video(base / view / "Videos" / "CR32a-000039.avi", [f.speckle(seed=seed + index) for index in range(4)])
        rows = square("CR32a-000039.avi", 1, 4, 4, 12) + square("CR32a-000039.avi", 4, 8, 20, 10)
        rows.append(["CR32a-000039.avi", "", "", "No Systolic"])
        f.table(base / view / "VolumeTracings.csv", rows, ["FileName", "X", "Y", "Frame"])
        f.table(
            base / view / "FileList.csv",
            [["CR32a-000039.avi", 55, "M", 5, 20, 110, 3]],
            ["FileName", "EF", "Sex", "Age", "Weight", "Height", "Split"],
        )
    f.video(base / "A4C" / "Videos" / "CR99z-000001.avi", [f.speckle(seed=99)])  # no tracing
    return {"converted": 2, "skipped": 3, "classes": {"left ventricle": 4}}
