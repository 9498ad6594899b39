"""Regional-US/brachial_plexus: data/<device>/videos/<id>.mp4 with per-frame JPG masks in ac_masks/<id>/ and
needle/needle_masks/<id>/ (<id>_<frame:03d>.jpg), plus bounding-box text files and readme files."""

from . import formats as f


def make_release(root):
    data = root / "data"
    f.video(data / "Sonosite" / "videos" / "s071.mp4", [f.speckle(seed=seed) for seed in range(4)])
    f.image(data / "Sonosite" / "ac_masks" / "s071" / "s071_000.jpg", f.box())
    f.image(data / "Sonosite" / "ac_masks" / "s071" / "s071_001.jpg", f.box(top=6))
    f.image(data / "Sonosite" / "ac_masks" / "s071" / "s071_002.jpg", f.box(value=0))  # empty frame
    f.image(data / "Sonosite" / "needle" / "needle_masks" / "s071" / "s071_001.jpg", f.box(top=20, left=24, size=8))
    f.text(data / "Sonosite" / "needle" / "needle_masks" / "s071" / "readme.md", "needle masks")  # excluded
    f.text(data / "Sonosite" / "needle" / "needle_coordinates" / "s071.txt", "1 24 20 32 28\n")  # excluded
    f.text(data / "Sonosite" / "bb_annotations" / "s071.txt", "0 4 4 14 14\n")  # excluded
    f.video(data / "Butterfly" / "videos" / "b240.mp4", [f.speckle(seed=seed) for seed in range(10, 13)])
    f.image(data / "Butterfly" / "ac_masks" / "b240" / "b240_000.jpg", f.box(left=20))
    f.video(data / "Butterfly" / "videos" / "b267.mp4", [f.speckle(seed=20)])  # no masks: missing mask
    f.image(data / "demo" / "P_021_09_masks" / "P_021_09_000.jpg", f.box())  # masks without a video: excluded
    return {"converted": 2, "skipped": 5, "classes": {"nerve plexus": 3, "needle": 1}}
