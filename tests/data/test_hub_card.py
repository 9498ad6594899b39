"""The root dataset card of a build folder: `load_dataset(build_dir)` (every dataset) and
`load_dataset(build_dir, "<slug>")` (one) work on the folder as on the Hub repository `push_to_hub` writes."""

import shutil

import pytest
from data_fixtures import build, make_spec, save, two_blobs, ultrasound_like
from datasets import load_dataset
from test_loading import FolderApi

from ultrasam_hf.data.hub import ALL_CONFIG, push_to_hub, root_card, write_root_card

SLUGS = ("fixture-a", "fixture-b")


@pytest.fixture
def build_dir(tmp_path):
    raw = tmp_path / "raw"
    for index in range(6):
        save(raw / "images" / f"im{index}.png", ultrasound_like(seed=index))
        save(raw / "masks" / f"im{index}.png", two_blobs())
    split = {"rule": "group_hash", "seed": 0, "val": 0.0, "test": 0.34}
    for slug in SLUGS:
        spec = make_spec(
            "image_mask_pairs",
            {"images": "images/*.png", "mask": "masks/{name}"},
            {1: "nerve", 2: "vessel"},
            split=split,
            slug=slug,
        )
        build(spec, raw, tmp_path / "out")
    return tmp_path / "out"


@pytest.fixture
def registry(tmp_path):
    card = tmp_path / "card.md"
    card.write_text("---\npretty_name: fixture\n---\n# fixture\n")
    return {slug: make_spec("image_mask_pairs", {}, {1: "nerve"}, slug=slug, card_path=str(card)) for slug in SLUGS}


def test_root_card_configs_load_every_dataset_and_each_one(build_dir, registry, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "cache"))
    assert list((build_dir / SLUGS[0] / "train").glob("*.parquet.json")), "the build writes sidecars next to shards"
    write_root_card(build_dir, registry=registry)
    assert "cc-by-4.0" in (build_dir / "LICENSE.md").read_text()
    everything = load_dataset(str(build_dir))
    one = load_dataset(str(build_dir), SLUGS[1])
    assert set(everything) == set(one) == {"train", "test"}
    assert {row["dataset"] for row in everything["train"]} == set(SLUGS)
    assert {row["dataset"] for row in one["train"]} == {SLUGS[1]}
    assert sum(map(len, everything.values())) == 2 * sum(map(len, one.values())) == 12
    explicit = load_dataset(str(build_dir), ALL_CONFIG, split="test")
    assert len(explicit) == len(everything["test"])


def test_root_card_refuses_a_dataset_without_shards(build_dir, registry):
    with pytest.raises(ValueError, match="no shards"):
        root_card(build_dir, ["not-built"], registry)


def test_push_writes_the_root_card_of_the_pushed_datasets(build_dir, registry, tmp_path, monkeypatch):
    """The pushed repository (a folder standing in for the Hub) loads per config like the build folder."""
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "cache"))
    registry[SLUGS[1]].redistribution = "forbidden"

    class CardFolderApi(FolderApi):
        def upload_file(self, repo_id, path_or_fileobj, path_in_repo, **kwargs):
            super().upload_file(repo_id, path_or_fileobj, path_in_repo, **kwargs)
            target = self.root / repo_id / path_in_repo
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(path_or_fileobj, bytes):
                target.write_bytes(path_or_fileobj)
            else:
                shutil.copyfile(path_or_fileobj, target)

    api = CardFolderApi(tmp_path / "hub")
    result = push_to_hub(build_dir, "org/us43d", registry=registry, api=api)
    assert result["pushed"] == [SLUGS[0]]
    repo = tmp_path / "hub" / "org" / "us43d"
    assert (repo / "README.md").is_file() and SLUGS[1] not in (repo / "README.md").read_text()
    assert not list(repo.rglob("*.parquet.json"))
    one = load_dataset(str(repo), SLUGS[0], split="train")
    assert {row["dataset"] for row in one} == {SLUGS[0]}
    with pytest.raises(ValueError):
        load_dataset(str(repo), SLUGS[1])
