"""EchoNet-Dynamic: Videos/<id>.avi, VolumeTracings.csv (X1,Y1,X2,Y2 chords) and FileList.csv (Split)."""

from . import formats as f


def chords(frame, top, left, size, video="0X1A.avi"):
    rows = [[video, left, top, left + size, top, frame]]  # first row: the long axis, skipped
    for y in range(top, top + size + 1, 2):
        rows.append([video, left, y, left + size, y, frame])
    return rows


def make_release(root):
    for seed, name in enumerate(("0X1A", "0X2B", "0X3C")):
        f.video(root / "Videos" / f"{name}.avi", [f.speckle(seed=seed * 10 + index) for index in range(5)])
    rows = chords(1, 4, 4, 12) + chords(3, 6, 6, 10)
    rows += [[row[0].replace("0X1A", "0X2B"), *row[1:]] for row in chords(2, 10, 20, 12)]
    f.table(root / "VolumeTracings.csv", rows, ["FileName", "X1", "Y1", "X2", "Y2", "Frame"])
    f.table(
        root / "FileList.csv",
        [
            ["0X1A", 55.0, 20, 45, 32, 40, 50, 5, "TRAIN"],
            ["0X2B", 60.1, 21, 50, 32, 40, 50, 5, "TEST"],
            ["0X3C", 61, 22, 51, 32, 40, 50, 5, "VAL"],
        ],
        ["FileName", "EF", "ESV", "EDV", "FrameHeight", "FrameWidth", "FPS", "NumberOfFrames", "Split"],
    )
    # 0X3C has no tracing: skipped as missing mask
    return {"converted": 2, "skipped": 1, "classes": {"left ventricle": 3}}
