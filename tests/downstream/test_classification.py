import json
import time

import numpy as np
import pytest
import torch

from ultrasam_hf.data import decoded_rows as load_rows
from ultrasam_hf.downstream.classification import (
    add_lora,
    load_classification_metric,
    load_prompted_model,
    make_examples,
    trainable_parameter_names,
)
from ultrasam_hf.downstream.data import bus_bra_folds
from ultrasam_hf.models.configuration_ultrasam import UltraSamConfig


def test_bus_bra_folds_and_shard_rows(fake_bus_bra, bus_bra_shards):
    folds = bus_bra_folds(fake_bus_bra)
    assert sorted(folds) == [1, 2, 3, 4, 5]
    assert len(folds[1]["test"]) == 6 and len(folds[1]["train"]) == 6 and not folds[1]["validation"]
    rows = load_rows(bus_bra_shards, "bus-bra", image_ids=folds[1]["test"][:2])
    assert sorted(row["image_id"] for row in rows) == sorted(folds[1]["test"][:2])
    obj = rows[0]["objects"][0]
    assert obj["class_label"] == "malignant" and obj["mask"].dtype == bool
    x0, y0, x1, y1 = obj["bbox"]
    assert obj["mask"][int(y0) : int(y1), int(x0) : int(x1)].sum() == obj["mask"].sum()
    everything = load_rows(bus_bra_shards, "bus-bra")  # all splits of the build: the folds pick the images
    assert sorted(row["image_id"] for row in everything) == sorted(folds[1]["train"] + folds[1]["test"])
    assert len(load_rows(bus_bra_shards, "bus-bra", limit=3)) == 3


def test_examples_use_the_model_processor(bus_bra_shards):
    rows = load_rows(bus_bra_shards, "bus-bra", limit=2)
    config = UltraSamConfig.from_preset("tiny-lite")  # litemedsam mode: per-image min-max to [0, 1], padded with 0
    size = config.vision_config.image_size
    examples = make_examples(rows, config, ["benign", "malignant"])
    for row in rows:
        example = examples[row["image_id"]]
        height, width = row["image"].shape[:2]
        new_w = int(width * size / height + 0.5)  # long side (height) -> size
        # a grey image in litemedsam mode: three equal channels, stored once
        assert example["pixels"].shape == (1, size, size) and example["mask"].shape == (size, size)
        assert (
            float(example["pixels"][:, :, :new_w].min()) == 0.0 and float(example["pixels"][:, :, :new_w].max()) == 1.0
        )
        assert not example["pixels"][:, :, new_w:].any() and not example["mask"][:, new_w:].any()
        assert abs(example["mask"].sum().item() / (size * new_w) - row["objects"][0]["mask"].mean()) < 0.02
        x0, y0, x1, y1 = example["box"]  # tight inclusive box of the preprocessed mask
        rows_, cols = np.nonzero(example["mask"].numpy())
        assert [x0, y0, x1, y1] == [cols.min(), rows_.min(), cols.max(), rows_.max()]


def test_metric_matches_definitions():
    metric = load_classification_metric()
    result = metric.compute(
        predictions=[0, 1, 1, 0, 1],
        references=[0, 1, 0, 0, 1],
        scores=[[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.7, 0.3], [0.45, 0.55]],
    )
    assert result["accuracy"] == pytest.approx(0.8)
    assert result["balanced_accuracy"] == pytest.approx((2 / 3 + 1) / 2)
    assert result["f1"] == pytest.approx(0.8)
    assert result["roc_auc"] == pytest.approx(5 / 6)  # one (positive, negative) pair of six is misordered
    tied = metric.compute(predictions=[0, 1], references=[0, 1], scores=[[0.5, 0.5], [0.5, 0.5]])
    assert tied["roc_auc"] == pytest.approx(0.5)


def test_lora_trains_only_lora_and_head():
    model = add_lora(load_prompted_model("preset:tiny-lite", 2), rank=4, alpha=4)
    names = trainable_parameter_names(model)
    assert names and all("lora_" in n or "classifier" in n for n in names)
    assert any("lora_" in n for n in names) and any("classifier" in n for n in names)
    assert all("vision_encoder" in n for n in names if "lora_" in n)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    outputs = model(
        pixel_values=torch.rand(2, 3, 64, 64), input_boxes=torch.tensor([[[8.0, 8, 40, 40]], [[4.0, 10, 30, 50]]])
    )
    torch.nn.functional.cross_entropy(outputs.logits[:, 0], torch.tensor([0, 1])).backward()
    optimizer.step()
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed and changed <= set(names)


def test_script_tiny_end_to_end(fake_bus_bra, bus_bra_shards, load_script, tmp_path):
    main = load_script("finetune_classification").main

    out = tmp_path / "classification_results.md"
    start = time.time()
    main(
        [
            "--shards",
            str(bus_bra_shards),
            "--raw",
            str(fake_bus_bra),
            "--init",
            "preset:tiny-lite",
            "--variant",
            "full",
            "lora",
            "head",
            "image-linear",
            "image-full",
            "--folds",
            "1",
            "2",
            "--steps",
            "3",
            "--head-steps",
            "20",
            "--batch-size",
            "4",
            "--lora-rank",
            "4",
            "--out",
            str(out),
        ]
    )
    elapsed = time.time() - start
    table = out.read_text()
    assert "| preset:tiny-lite | lora | 1,2 |" in table and "image-linear" in table
    result = json.loads(out.with_suffix(".json").read_text())
    assert len(result["per_fold"]) == 10 and len(result["summary"]) == 5
    for record in result["per_fold"]:
        assert 0 <= record["accuracy"] <= 1 and record["count"] == 6 and np.isfinite(record["roc_auc"])
    assert elapsed < 60, f"tiny classification run took {elapsed:.0f} s"


def test_cached_run_resumes_and_reports_patient_intervals(
    fake_bus_bra, bus_bra_shards, load_script, tmp_path, monkeypatch
):
    """`--cache-dir` keeps the frozen models' head inputs: a second run never runs the encoder. The summary pools the
    out-of-fold predictions (each image once) with patient-bootstrap intervals and pairs the second init with the
    first."""
    from ultrasam_hf.downstream import classification

    script = load_script("finetune_classification")
    cache = tmp_path / "cache"
    args = ["--shards", str(bus_bra_shards), "--raw", str(fake_bus_bra), "--init", "preset:tiny-lite", "preset:tiny"]
    args += ["--variant", "head", "image-linear", "--head-steps", "10", "--batch-size", "4", "--cache-dir", str(cache)]
    args += [
        "--folds",
        "1",
        "2",
        "3",
        "--bootstrap-resamples",
        "200",
    ]  # the fake release's fold 3 holds no test image: skipped, said so
    script.main([*args, "--out", str(tmp_path / "first.md")])
    files = sorted(p.name for p in cache.glob("*.pt"))
    assert len(files) == 2 and files[0].startswith("preset_tiny-") and not list(cache.glob("*.partial"))

    def no_encoder(*args, **kwargs):
        raise AssertionError("the encoder ran although every head input was cached")

    monkeypatch.setattr(classification, "cache_head_inputs", no_encoder)
    out = tmp_path / "second.md"
    script.main([*args, "--out", str(out)])
    first = json.loads((tmp_path / "first.json").read_text())
    result = json.loads(out.with_suffix(".json").read_text())
    assert [r["roc_auc"] for r in result["per_fold"]] == [r["roc_auc"] for r in first["per_fold"]]

    head = next(s for s in result["summary"] if s["init"] == "preset:tiny-lite" and s["variant"] == "head")
    scored = [
        i
        for r in result["per_fold"]
        if r["init"] == "preset:tiny-lite" and r["variant"] == "head"
        for i in r["image_ids"]
    ]
    assert len(scored) == len(set(scored)) == 12  # every fake image held out once over the five folds
    auc = head["pooled"]["roc_auc"]
    assert 0 <= auc["low"] <= auc["value"] <= auc["high"] <= 1 and auc["resamples"] > 180
    other = next(s for s in result["summary"] if s["init"] == "preset:tiny" and s["variant"] == "head")
    assert other["difference"]["reference"] == "preset:tiny-lite"
    assert "difference" not in head
    table = out.read_text()
    assert "AUC [95 % CI]" in table and "Paired differences to `preset:tiny-lite`" in table


def test_objects_of_another_dataset_are_classified_with_one_encoder_pass_per_image(
    usgra_shards, load_script, tmp_path
):
    """USGRA: each nerve / vessel is an example (`<image id>#<k>`), the build's split is the fold, and the frozen
    model encodes each image once with all its boxes."""
    import torch

    from ultrasam_hf.downstream import classification

    rows = load_rows(usgra_shards, "usgra")
    config = UltraSamConfig.from_preset("tiny-lite")
    examples = classification.make_examples(rows, config, ["nerve", "vessel"], "category")
    assert len(examples) == sum(len(row["objects"]) for row in rows) and all("#" in key for key in examples)
    model = classification.load_prompted_model("preset:tiny-lite", 2)
    calls = []
    model.register_forward_pre_hook(
        lambda module, args, kwargs: calls.append(kwargs["pixel_values"].shape[0]), with_kwargs=True
    )
    one_by_one = classification.cache_head_inputs(model, examples, sorted(examples), batch_size=4)
    assert sum(calls) == len(rows)  # images, not objects
    alone = {}  # the same vectors as prompting each object alone
    for key in sorted(examples):
        alone.update(classification.cache_head_inputs(model, examples, [key], batch_size=1))
    assert all(torch.allclose(one_by_one[key], alone[key], atol=1e-4) for key in examples)  # batch size: GEMM order

    out = tmp_path / "usgra.md"
    script = load_script("finetune_classification")
    script.main(
        ["--shards", str(usgra_shards), "--dataset", "usgra", "--init", "preset:tiny-lite", "--variant", "head"]
        + ["image-linear", "--head-steps", "10", "--bootstrap-resamples", "50", "--out", str(out)]
    )
    result = json.loads(out.with_suffix(".json").read_text())
    assert result["meta"]["label_names"] == ["nerve", "vessel"] and "F1 vessel" in out.read_text()
    (record,) = [r for r in result["per_fold"] if r["variant"] == "head"]
    test_objects = sum(len(row["objects"]) for row in rows if row["split"] == "test")
    assert record["fold"] == 1 and record["count"] == test_objects
