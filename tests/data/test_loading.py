"""load_us43d on a local build, mixing weights, node sharding, push_to_hub (Hub mocked), CLI wiring."""

import shutil

import numpy as np
import pytest
from data_fixtures import build, make_spec, save, two_blobs, ultrasound_like

from ultrasam_hf.data import FEATURES, decode_instance_mask, load_us43d, mixing_weights, push_to_hub, shard_for_node
from ultrasam_hf.data.loading import interleave_by_dataset


@pytest.fixture
def built(tmp_path):
    raw = tmp_path / "raw"
    for index in range(8):
        save(raw / "images" / f"im{index}.png", ultrasound_like(seed=index))
        save(raw / "masks" / f"im{index}.png", two_blobs())
    split = {"rule": "group_hash", "seed": 0, "val": 0.25, "test": 0.25}
    for slug, redistribution in (("open-set", "allowed"), ("closed-set", "forbidden")):
        spec = make_spec(
            "image_mask_pairs",
            {"images": "images/*.png", "mask": "masks/{name}"},
            {1: "nerve", 2: "vessel"},
            split=split,
            slug=slug,
        )
        spec.redistribution = redistribution
        build(spec, raw, tmp_path / "out")
    return tmp_path / "out"


def test_load_us43d_returns_feature_rows(built, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "cache"))
    splits = load_us43d(built, datasets=["open-set"])
    assert sum(len(ds) for ds in splits.values()) == 8
    train = load_us43d(built, datasets=["open-set"], split="train")
    assert train.features == FEATURES
    row = train[0]
    assert row["dataset"] == "open-set" and row["image"].size == (64, 48)
    np.testing.assert_array_equal(decode_instance_mask(row["objects"][-1]), two_blobs() == 2)
    streamed = next(iter(load_us43d(built, split="train", streaming=True)))
    assert set(streamed) == set(FEATURES)
    assert len(shard_for_node(train, rank=0, world_size=2)) == (len(train) + 1) // 2


def test_load_us43d_refuses_unknown_split_and_dataset(built):
    with pytest.raises(ValueError, match="unknown split"):
        load_us43d(built, split="dev")
    with pytest.raises(ValueError, match="not built"):
        load_us43d(built, datasets=["nope"])


def test_mixing_weights_temperature():
    counts = {"big": 900, "small": 100}
    assert mixing_weights(counts, 1.0) == pytest.approx({"big": 0.9, "small": 0.1})
    assert mixing_weights(counts, 1e9) == pytest.approx({"big": 0.5, "small": 0.5})
    assert mixing_weights(counts, 2.0)["small"] == pytest.approx(10 / 40)
    with pytest.raises(ValueError, match="temperature"):
        mixing_weights(counts, 0)


def test_interleave_by_dataset(built, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "cache"))
    parts = {slug: load_us43d(built, datasets=[slug], split="train") for slug in ("open-set", "closed-set")}
    mixed = interleave_by_dataset(parts, temperature=2.0, seed=0)
    assert {row["dataset"] for row in mixed} == {"open-set", "closed-set"}


class FolderApi:
    """Stands in for HfApi: copies uploads into a local folder (the Hub is unreachable from tests)."""

    def __init__(self, root):
        self.root, self.calls = root, []

    def create_repo(self, repo_id, **kwargs):
        self.calls.append(("create_repo", repo_id))

    def upload_folder(self, repo_id, folder_path, path_in_repo, **kwargs):
        shutil.copytree(
            folder_path,
            self.root / repo_id / path_in_repo,
            ignore=shutil.ignore_patterns("*.json", "!manifest.json"),
            dirs_exist_ok=True,
        )
        self.calls.append(("upload_folder", path_in_repo))

    def upload_file(self, repo_id, path_or_fileobj, path_in_repo, **kwargs):
        self.calls.append(("upload_file", path_in_repo))


def test_push_to_hub_skips_datasets_that_forbid_redistribution(built, tmp_path):
    registry = {
        slug: make_spec("image_mask_pairs", {}, {1: "nerve"}, slug=slug, card_path=str(tmp_path / "card.md"))
        for slug in ("open-set", "closed-set")
    }
    registry["closed-set"].redistribution = "forbidden"
    api = FolderApi(tmp_path / "hub")
    result = push_to_hub(built, "org/us43d", registry=registry, api=api)
    assert result["pushed"] == ["open-set"]
    assert "forbidden" in result["skipped"]["closed-set"]
    assert ("upload_folder", "open-set") in api.calls and ("upload_folder", "closed-set") not in api.calls
    assert list((tmp_path / "hub" / "org" / "us43d" / "open-set").glob("*/*.parquet"))


def test_cli_data_build_and_info(tmp_path, capsys):
    from ultrasam_hf.cli import main

    raw = tmp_path / "raw"
    save(raw / "training_set" / "000_HC.png", ultrasound_like(60, 80))
    head = np.zeros((60, 80), dtype=np.uint8)
    head[20:40, 20:50] = 255
    save(raw / "training_set" / "000_HC_Annotation.png", head)
    (raw / "training_set_pixel_size_and_HC.csv").write_text(
        "filename,pixel size(mm),head circumference (mm)\n000_HC.png,0.1,50\n"
    )
    assert main(["data", "build", "hc18", "--raw", str(raw), "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    assert "hc18: 1/1 items converted" in capsys.readouterr().out
    assert main(["data", "info"]) == 0
    assert "bus-bra" in capsys.readouterr().out
    assert main(["data", "build", "hc18", "--out", str(tmp_path / "out")]) == 1  # no --raw: clear error, exit 1
