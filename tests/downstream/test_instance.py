import json
import time

import numpy as np

from ultrasam_hf.downstream.data import usgra_rows
from ultrasam_hf.downstream.instance import coco_mask_map, make_examples


def test_usgra_reader_instances_are_components(fake_usgra):
    rows = usgra_rows(fake_usgra, "train")
    assert len(rows) == 6 and len(usgra_rows(fake_usgra, "test")) == 3
    categories = sorted(obj["category"] for obj in rows[0]["objects"])
    assert categories in (["nerve", "vessel", "vessel"], ["nerve", "vessel"])  # vessels may touch


def test_coco_map_is_one_for_perfect_predictions(fake_usgra):
    examples = make_examples(usgra_rows(fake_usgra, "test"), 64, "litemedsam", ["nerve", "vessel"])
    predictions = [
        [{"mask": m[: e["valid"][0], : e["valid"][1]].numpy(), "score": 0.9, "label": int(c)} for m, c in zip(e["masks"], e["labels"])]
        for e in examples
    ]
    metrics = coco_mask_map(examples, predictions, ["nerve", "vessel"])
    assert np.isclose(metrics["AP"], 1.0) and np.isclose(metrics["AP_vessel"], 1.0)
    assert coco_mask_map(examples, [[] for _ in examples], ["nerve", "vessel"])["AP"] == 0.0


def test_script_tiny_end_to_end(fake_usgra, load_script, tmp_path):
    main = load_script("finetune_instance").main
    out = tmp_path / "instance_segmentation_results.md"
    start = time.time()
    main([
        "--raw", str(fake_usgra), "--init", "preset:tiny-lite", "preset:tiny", "--image-size", "64", "--steps", "4",
        "--batch-size", "2", "--hidden-dim", "32", "--fpn-channels", "16", "--queries", "8", "--decoder-layers", "1",
        "--encoder-layers", "1", "--out", str(out),
    ])
    elapsed = time.time() - start
    assert "| preset:tiny-lite |" in out.read_text() and "AP vessel" in out.read_text()
    records = json.loads(out.with_suffix(".json").read_text())["results"]
    assert len(records) == 2 and all(0 <= r["AP"] <= 1 for r in records)
    assert elapsed < 60, f"tiny instance run took {elapsed:.0f} s"
