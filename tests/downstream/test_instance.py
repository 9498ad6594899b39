import json
import time

import numpy as np

from ultrasam_hf.data import decoded_rows as load_rows
from ultrasam_hf.downstream.instance import coco_mask_map, make_examples
from ultrasam_hf.models.configuration_ultrasam import UltraSamConfig


def test_usgra_shard_instances_are_components(usgra_shards):
    rows = load_rows(usgra_shards, "usgra", split=["train", "validation"])
    assert len(rows) == 6 and len(load_rows(usgra_shards, "usgra", split=["test"])) == 3
    assert len(load_rows(usgra_shards, "usgra", split=["train", "validation"], limit=4)) == 4
    categories = sorted(obj["category"] for obj in rows[0]["objects"])
    assert categories in (["nerve", "vessel", "vessel"], ["nerve", "vessel"])  # vessels may touch
    assert all(obj["mask"].dtype == bool and obj["mask"].any() for row in rows for obj in row["objects"])


def test_examples_masks_follow_the_image_geometry(usgra_shards):
    rows = load_rows(usgra_shards, "usgra", split=["test"])
    examples = make_examples(rows, UltraSamConfig.from_preset("tiny"), 40, ["nerve", "vessel"])  # 80 px -> 40 px
    for row, example in zip(rows, examples):
        assert example["valid"] == (40, 40) and example["masks"].shape == (len(row["objects"]), 40, 40)
        for obj, mask in zip(row["objects"], example["masks"]):
            assert abs(mask.sum().item() * 4 - obj["mask"].sum()) <= 0.25 * obj["mask"].sum()  # nearest, half size
            rows_, cols = np.nonzero(mask.numpy())
            x0, y0, x1, y1 = obj["bbox"]
            assert abs(cols.min() - x0 / 2) <= 1 and abs(rows_.max() + 1 - y1 / 2) <= 1


def test_coco_map_is_one_for_perfect_predictions(usgra_shards):
    rows = load_rows(usgra_shards, "usgra", split=["test"])
    examples = make_examples(rows, UltraSamConfig.from_preset("tiny-lite"), 64, ["nerve", "vessel"])
    predictions = [
        [
            {"mask": m[: e["valid"][0], : e["valid"][1]].numpy(), "score": 0.9, "label": int(c)}
            for m, c in zip(e["masks"], e["labels"])
        ]
        for e in examples
    ]
    metrics = coco_mask_map(examples, predictions, ["nerve", "vessel"])
    assert np.isclose(metrics["AP"], 1.0) and np.isclose(metrics["AP_vessel"], 1.0)
    assert coco_mask_map(examples, [[] for _ in examples], ["nerve", "vessel"])["AP"] == 0.0


def test_script_tiny_end_to_end(usgra_shards, load_script, tmp_path):
    main = load_script("finetune_instance").main
    out = tmp_path / "instance_segmentation_results.md"
    start = time.time()
    main(
        [
            "--shards",
            str(usgra_shards),
            "--init",
            "preset:tiny-lite",
            "preset:tiny",
            "--image-size",
            "64",
            "--steps",
            "4",
            "--batch-size",
            "2",
            "--hidden-dim",
            "32",
            "--fpn-channels",
            "16",
            "--queries",
            "8",
            "--decoder-layers",
            "1",
            "--encoder-layers",
            "1",
            "--out",
            str(out),
        ]
    )
    elapsed = time.time() - start
    assert "| preset:tiny-lite |" in out.read_text() and "AP vessel" in out.read_text()
    records = json.loads(out.with_suffix(".json").read_text())["results"]
    assert len(records) == 2 and all(0 <= r["AP"] <= 1 for r in records)
    assert elapsed < 60, f"tiny instance run took {elapsed:.0f} s"


def test_cached_taps_give_the_backbone_feature_maps():
    """The frozen-encoder path: the backbone's pyramid on its cached encoder taps is the backbone itself."""
    import torch

    from ultrasam_hf.downstream.instance import build_instance_model, freeze_encoder

    model, _ = build_instance_model("preset:tiny-lite", 64, 2, fpn_channels=16, hidden_dim=32, num_queries=4)
    backbone = model.model.pixel_level_module.encoder
    pixels = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        expected = backbone(pixels).feature_maps
        assert freeze_encoder(model) is backbone
        cached = model.model.pixel_level_module.encoder
        cached.taps = backbone.encoder_taps(pixels)
        got = cached(torch.zeros(2, 3, 64, 64)).feature_maps
    assert len(got) == len(expected) == 4 and all(torch.allclose(a, b) for a, b in zip(got, expected))
    trainable = {name for name, _ in model.named_parameters()}
    assert not any(".encoder.encoder." in name for name in trainable)  # the encoder left the trained model
    assert any(".encoder.levels." in name for name in trainable)  # the pyramid trains


def test_frozen_encoder_run_resumes_from_its_cache_and_has_an_oracle_row(
    usgra_shards, load_script, tmp_path, monkeypatch
):
    from ultrasam_hf.models.configuration_ultrasam import UltraSamConfig
    from ultrasam_hf.models.modeling_ultrasam import UltraSamModel
    from ultrasam_hf.models.modeling_ultrasam_backbone import UltraSamBackbone

    folder = tmp_path / "tiny-lite-model"
    UltraSamModel(UltraSamConfig.from_preset("tiny-lite")).save_pretrained(folder)
    main = load_script("finetune_instance").main
    head = ["--hidden-dim", "32", "--fpn-channels", "16", "--queries", "8", "--decoder-layers", "1"]
    args = ["--shards", str(usgra_shards), "--dataset", "usgra", "--init", str(folder), "preset:tiny-lite", *head]
    args += ["--encoder-layers", "1", "--image-size", "64", "--steps", "3", "--batch-size", "2", "--frozen-encoder"]
    args += ["--cache-dir", str(tmp_path / "cache"), "--bootstrap-resamples", "20"]
    main([*args, "--oracle", str(folder), "--out", str(tmp_path / "first.md")])
    assert len(list((tmp_path / "cache").glob("*.pt"))) == 2

    def no_encoder(self, pixel_values):
        raise AssertionError("the frozen encoder ran although its features were cached")

    monkeypatch.setattr(UltraSamBackbone, "encoder_taps", no_encoder)
    out = tmp_path / "second.md"
    main([*args, "--out", str(out)])
    first = json.loads((tmp_path / "first.json").read_text())["results"]
    second = json.loads(out.with_suffix(".json").read_text())["results"]
    assert [r["AP"] for r in second] == [r["AP"] for r in first[:2]]
    assert [r["variant"] for r in first] == [
        "frozen encoder",
        "frozen encoder",
        "oracle: prompted with ground-truth boxes",
    ]
    for record in first:
        interval = record["intervals"]["AP"]
        assert 0 <= interval["low"] <= interval["high"] <= 1 and record["intervals"]["unit"] == "image"
    table = (tmp_path / "first.md").read_text()
    assert "mask AP [95 % CI]" in table and "oracle" in table and "bootstrap over the test images" in table


def test_training_stops_when_validation_ap_stalls_and_keeps_the_best_weights(usgra_shards, monkeypatch):
    """Early stopping: checks every 2 steps; AP 0.1, 0.3, 0.2, 0.25 with patience 2 stops at step 8 and restores the
    weights of step 4 (the 0.3 check); with `min_steps` 12 the same curve runs on to step 12."""
    import torch

    from ultrasam_hf.data import decoded_rows
    from ultrasam_hf.downstream import instance

    rows = decoded_rows(usgra_shards, "usgra", split=["train"])
    snapshots = {}

    def train(min_steps):
        model, config = instance.build_instance_model(
            "preset:tiny-lite",
            64,
            2,
            fpn_channels=16,
            hidden_dim=32,
            num_queries=4,
            decoder_layers=1,
            encoder_layers=1,
        )
        examples = instance.make_examples(rows, config, 64, ["nerve", "vessel"])
        scripted = iter([0.1, 0.3, 0.2, 0.25, 0.2, 0.2, 0.2, 0.9])
        snapshots.clear()

        def fake_ap(model, validation, categories, args):
            snapshots[len(snapshots) + 1] = {k: v.clone() for k, v in model.state_dict().items()}
            return next(scripted)

        monkeypatch.setattr(instance, "validation_ap", fake_ap)
        args = instance.InstanceArguments(
            image_size=64, steps=20, batch_size=2, eval_every=2, patience=2, min_steps=min_steps
        )
        return model, instance.train_instance(model, examples, args, log=lambda _: None, validation=examples[:2])

    model, record = train(min_steps=0)
    assert record["steps_run"] == 8 and record["best_step"] == 4 and record["validation_AP"] == 0.3
    assert [step for step, _ in record["validation_curve"]] == [2, 4, 6, 8]
    kept = model.state_dict()
    assert all(torch.equal(kept[k], snapshots[2][k]) for k in kept)
    assert not all(torch.equal(kept[k], snapshots[4][k]) for k in kept)  # training moved on after the best check
    _, record = train(min_steps=12)
    assert record["steps_run"] == 12 and record["best_step"] == 4
