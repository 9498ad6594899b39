"""The Hub-viewer columns: `objects.anatomy` is a ClassLabel of the shared vocabulary (ids in the shards, names through
`decode_row`), and `instance_map` is a palette PNG of the instance ids that matches the RLE masks."""

import io

import numpy as np
import pyarrow.parquet as pq
import pytest
from data_fixtures import build, make_spec, save, two_blobs, ultrasound_like
from datasets import ClassLabel, Dataset, Features, List, Value, load_dataset
from PIL import Image

from ultrasam_hf.data import (
    ANATOMY_VOCABULARY,
    FEATURES,
    decode_instance_mask,
    decoded_rows,
    instance_ids,
    load_anatomy_vocabulary,
    load_us43d,
)
from ultrasam_hf.data.builder import build_dataset
from ultrasam_hf.data.hub import write_root_card
from ultrasam_hf.data.instances import encode_instance_map, layers_to_instances
from ultrasam_hf.data.schema import INSTANCE_PALETTE

SLUG = "fixture-viewer"
ANATOMY = {"nerve": "nerve", "vessel": "carotid artery"}


@pytest.fixture
def build_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "cache"))
    raw = tmp_path / "raw"
    for index in range(3):
        save(raw / "images" / f"im{index}.png", ultrasound_like(seed=index))
        save(raw / "masks" / f"im{index}.png", two_blobs())
    spec = make_spec(
        "image_mask_pairs",
        {"images": "images/*.png", "mask": "masks/{name}"},
        {1: "nerve", 2: "vessel"},
        anatomy=ANATOMY,
        slug=SLUG,
    )
    build(spec, raw, tmp_path / "out")
    return tmp_path / "out"


def test_the_classlabel_names_are_the_us43d_card_vocabulary_in_its_order():
    assert list(ANATOMY_VOCABULARY) == load_anatomy_vocabulary()
    assert len(ANATOMY_VOCABULARY) == len(set(ANATOMY_VOCABULARY)) == 58


def test_built_anatomy_is_a_classlabel_of_ids_that_map_back_to_the_names(build_dir):
    write_root_card(build_dir, registry={})
    train = load_dataset(str(build_dir), SLUG, split="train")
    anatomy = train.features["objects"].feature["anatomy"]
    assert isinstance(anatomy, ClassLabel) and anatomy.names == list(ANATOMY_VOCABULARY)
    assert train.features == FEATURES
    for row in train:
        ids = [obj["anatomy"] for obj in row["objects"]]
        assert all(isinstance(value, int) for value in ids)
        names = [anatomy.int2str(value) for value in ids]
        assert names == [ANATOMY[obj["category"]] for obj in row["objects"]] == ["nerve", "carotid artery"]
    assert load_us43d(build_dir, split="train").features == FEATURES


def test_decoded_rows_give_the_anatomy_name(build_dir):
    rows = decoded_rows(build_dir, SLUG)
    assert len(rows) == 3
    assert all(obj["anatomy"] == ANATOMY[obj["category"]] for row in rows for obj in row["objects"])


def test_an_anatomy_term_outside_the_vocabulary_stops_the_build(tmp_path):
    raw = tmp_path / "raw"
    save(raw / "images" / "im0.png", ultrasound_like())
    save(raw / "masks" / "im0.png", two_blobs())
    spec = make_spec(
        "image_mask_pairs",
        {"images": "images/*.png", "mask": "masks/{name}"},
        {1: "nerve", 2: "vessel"},
        anatomy={"nerve": "nerve", "vessel": "blood thing"},
    )
    with pytest.raises(ValueError, match=r"\['blood thing'\] are not in the shared anatomy vocabulary"):
        build_dataset(spec, raw, tmp_path / "out", progress=False)
    assert not list((tmp_path / "out").rglob("*.parquet"))


def test_instance_map_is_a_palette_png_of_the_instance_ids(build_dir):
    train = load_us43d(build_dir, datasets=[SLUG], split="train")
    for row in train:
        image = row["instance_map"]
        assert image.mode == "P" and image.size == (row["width"], row["height"])
        palette = image.getpalette()
        assert bytes(palette[:9]) == INSTANCE_PALETTE[:9] and palette[:3] == [0, 0, 0]
        ids = instance_ids(row)
        expected = np.zeros(ids.shape, dtype=int)
        for k, obj in enumerate(row["objects"], start=1):
            expected[decode_instance_mask(obj)] = k
        np.testing.assert_array_equal(ids, expected)
        assert sorted(np.unique(ids)) == [0, 1, 2]
    stored = pq.read_table(next((build_dir / SLUG / "train").glob("*.parquet"))).to_pylist()[0]["instance_map"]
    with Image.open(io.BytesIO(stored["bytes"])) as png:
        assert png.format == "PNG" and png.mode == "P"
    assert len(stored["bytes"]) < 1000


def test_later_objects_are_on_top_where_instances_overlap():
    first, second = np.zeros((20, 20), bool), np.zeros((20, 20), bool)
    first[2:12, 2:12], second[8:18, 8:18] = True, True
    instances = layers_to_instances({"1": first, "2": second}, {"1": "a", "2": "b"}, {"a": "tumor", "b": "tumor"}, 1)
    assert instances.ids[10, 10] == 2 and instances.ids[3, 3] == 1 and instances.ids[15, 15] == 2
    assert instances.ids[0, 0] == 0


def test_more_than_255_objects_fall_back_to_a_16_bit_map():
    ids = np.arange(300, dtype=np.int32).reshape(15, 20)
    data = encode_instance_map(ids)
    with Image.open(io.BytesIO(data)) as image:
        assert image.mode in ("I;16", "I")
    np.testing.assert_array_equal(instance_ids({"bytes": data}), ids)


def test_a_shard_of_the_previous_schema_still_loads(tmp_path, monkeypatch):
    """Schema 2 shards: string anatomy, no instance_map -> ids and a null map; decoded rows give the name."""
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "cache"))
    old_objects = dict(FEATURES["objects"].feature, anatomy=Value("string"))
    old = Features({**{k: v for k, v in FEATURES.items() if k != "instance_map"}, "objects": List(old_objects)})
    mask = np.zeros((48, 64), bool)
    mask[5:15, 5:17] = True
    from ultrasam_hf.data.instances import encode_mask

    buffer = io.BytesIO()
    Image.fromarray(ultrasound_like()).save(buffer, format="PNG")
    row = {
        "image": {"bytes": buffer.getvalue(), "path": None},
        **dict(dataset="old", image_id="a", group_id="a", frame_index=None, split="test", height=48, width=64),
        **dict(pixel_spacing_mm=None, license="cc-by-4.0", source_files=["a.png"]),
        "objects": [
            {"mask": encode_mask(mask), "bbox": [5, 5, 17, 15], "area": 120, "category": "c", "anatomy": "tumor"}
            | {"class_label": None}
        ],
    }
    (tmp_path / "old" / "test").mkdir(parents=True)
    Dataset.from_list([row], features=old).to_parquet(str(tmp_path / "old" / "test" / "test-00000-of-00001.parquet"))
    loaded = load_us43d(tmp_path, split="test")[0]
    assert loaded["instance_map"] is None
    assert loaded["objects"][0]["anatomy"] == ANATOMY_VOCABULARY.index("tumor")
    assert decoded_rows(tmp_path, "old")[0]["objects"][0]["anatomy"] == "tumor"
