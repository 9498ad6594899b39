"""Official splits named by folders or by release lists."""

from ultrasam_hf.data.readers import RawItem
from ultrasam_hf.data.splits import assign_splits


def items(*paths):
    return [
        RawItem(path.rsplit("/", 1)[-1].split(".")[0], path.rsplit("/", 1)[-1].split(".")[0], [path]) for path in paths
    ]


def test_official_folder_with_a_validation_folder():
    """TG3K: `val` is a folder regex there, not a fraction."""
    listed = items("image/train/1.jpg", "image/val/2.jpg", "image/test/3.jpg")
    rule = {"rule": "official_folder", "test": "^image/test/", "val": "^image/val/"}
    splits = assign_splits(".", "x", listed, {item.item_id: item.item_id for item in listed}, rule)
    assert splits == {"1": "train", "2": "validation", "3": "test"}


def test_official_lists_read_the_release_lists(tmp_path):
    """MMOTU-2D: the images of val_cls.txt ("<name>.JPG <class>" lines) are the test set."""
    (tmp_path / "val_cls.txt").write_text("3.JPG 2\n")
    listed = items("images/1.JPG", "images/3.JPG")
    rule = {
        "rule": "official_lists",
        "test": {"file": "val_cls.txt", "sep": "space", "header": False, "strip_suffix": True},
    }
    splits = assign_splits(tmp_path, "x", listed, {item.item_id: item.item_id for item in listed}, rule)
    assert splits == {"1": "train", "3": "test"}
