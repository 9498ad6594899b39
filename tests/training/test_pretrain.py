"""End-to-end runs of scripts/pretrain.py on generated shards (tiny preset, a few steps each)."""

import json

import pytest
import torch
from script_runs import run_script

COMMON = [
    "--preset",
    "tiny",
    "--batch-size",
    "3",
    "--warmup-steps",
    "2",
    "--milestones",
    "4",
    "--no-progress",
    "--log-with",
    "none",
]


def _digest(path):
    return (path).read_text().strip()


def test_accelerate_launch_tiny_end_to_end(tiny_shards, tmp_path):
    from ultrasam_hf import UltraSamModel
    from ultrasam_hf.training.trackers import read_csv_metrics

    out = tmp_path / "run"
    result = run_script(
        [
            *COMMON[:-2],
            "--data",
            tiny_shards,
            "--output-dir",
            out,
            "--max-steps",
            "4",
            "--clicks",
            "1",
            "--log-every",
            "2",
            "--eval-every",
            "4",
            "--log-with",
            "csv",
            "--dataset-weights",
            "beta=3",
        ]
    )
    assert "eval step 4 | alpha box" in result.stdout and "point" in result.stdout
    # 12 alpha and 6 beta images, beta weighted x3: 12 : 18
    assert "dataset mix (--mixing-temperature 1, --dataset-weights): beta 60.0%, alpha 40.0%" in result.stdout
    assert json.loads((out / "training_config.json").read_text())["dataset_weights"] == "beta=3"
    model = UltraSamModel.from_pretrained(out)
    assert model.config.preset == "tiny"
    assert (out / "processor_config.json").is_file() or (out / "preprocessor_config.json").is_file()
    metrics = read_csv_metrics(out / "logs" / "ultrasam" / "metrics.csv")
    names = {m["name"] for m in metrics}
    assert {"train/loss", "train/lr", "val/alpha/box_dice", "val/beta/point_dice"} <= names
    assert json.loads((out / "eval_results.json").read_text())["alpha"]["instances"] > 0
    # the training data and its licences travel with the model (fixture datasets have no card: "unknown")
    mix = json.loads((out / "training_data.json").read_text())
    assert {slug: entry["rows"] for slug, entry in mix["datasets"].items()} == {"alpha": 12, "beta": 6}
    assert mix["licences"]["unknown"]["datasets"] == ["alpha", "beta"]
    assert "## Training data" in (out / "README.md").read_text()


@pytest.mark.slow  # ~17 s: two accelerate processes
def test_two_processes_disjoint_data_identical_weights(tiny_shards, tmp_path):
    out = tmp_path / "ddp"
    run_script(
        [*COMMON, "--data", tiny_shards, "--output-dir", out, "--max-steps", "3", "--record-samples"],
        launcher=(
            "accelerate",
            "launch",
            "--multi_gpu",
            "--num_processes",
            "2",
            "--num_machines",
            "1",
            "--mixed_precision",
            "no",
            "--dynamo_backend",
            "no",
        ),
    )
    seen = [set((out / f"samples_rank{r}.txt").read_text().split()) for r in (0, 1)]
    positions = [{s.rsplit(":", 1)[0] for s in ranks} for ranks in seen]
    assert positions[0] and positions[1] and not positions[0] & positions[1]
    assert _digest(out / "weights_rank0.sha256") == _digest(out / "weights_rank1.sha256")


@pytest.mark.slow  # ~40 s: three training runs (data resume stays in test_pack)
def test_resume_reaches_the_uninterrupted_weights(tiny_shards, tmp_path):
    args = [
        *COMMON,
        "--data",
        tiny_shards,
        "--gradient-accumulation-steps",
        "2",
        "--clicks",
        "1",
        "--save-every",
        "2",
        "--record-samples",
    ]
    from script_runs import run_python

    run_python([*args, "--output-dir", tmp_path / "a", "--max-steps", "5"])
    run_python([*args, "--output-dir", tmp_path / "b", "--max-steps", "2"])
    run_python([*args, "--output-dir", tmp_path / "b", "--max-steps", "5", "--resume", "latest"])
    assert _digest(tmp_path / "a" / "weights_rank0.sha256") == _digest(tmp_path / "b" / "weights_rank0.sha256")
    from safetensors.torch import load_file

    a, b = load_file(tmp_path / "a" / "model.safetensors"), load_file(tmp_path / "b" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow  # ~27 s; the default suite keeps the adapter push (test_kept_adapter_from_a_preset_has_a_pushable_base)
def test_lora_merged_and_kept_adapter_agree(tiny_shards, tiny_init, tmp_path):
    from peft import PeftModel
    from script_runs import run_python

    from ultrasam_hf import UltraSamModel
    from ultrasam_hf.training.variants import read_adapter_base

    args = [
        *COMMON,
        "--init",
        tiny_init,
        "--data",
        tiny_shards,
        "--max-steps",
        "2",
        "--warmup-steps",
        "0",
        "--variant",
        "lora",
        "--lora-rank",
        "4",
    ]
    run_python([*args, "--output-dir", tmp_path / "merged"])
    run_python([*args, "--output-dir", tmp_path / "kept", "--keep-adapter"])
    merged = UltraSamModel.from_pretrained(tmp_path / "merged").eval()
    assert (tmp_path / "kept" / "adapter_config.json").is_file()
    assert read_adapter_base(tmp_path / "kept") == str(tiny_init)
    base = UltraSamModel.from_pretrained(tiny_init)
    kept = PeftModel.from_pretrained(base, tmp_path / "kept").eval()
    pixels = torch.rand(1, 3, 64, 64)
    boxes = torch.tensor([[[8.0, 8.0, 40.0, 40.0]]])
    with torch.no_grad():
        a = merged(pixel_values=pixels, input_boxes=boxes).pred_masks
        b = kept(pixel_values=pixels, input_boxes=boxes).pred_masks
    torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
    # LoRA trained something: the merged encoder differs from the base
    base = UltraSamModel.from_pretrained(tiny_init)
    qkv = "vision_encoder.layers.0.attn.qkv.weight"
    assert not torch.equal(merged.state_dict()[qkv], base.state_dict()[qkv])


def test_kept_adapter_from_a_preset_has_a_pushable_base(tiny_shards, tmp_path):
    """Started from a preset, `--keep-adapter` saves the initial weights as `base/`: a repository of its own (card,
    remote code), so that it can be pushed before the adapter that names it."""
    from script_runs import run_python

    from ultrasam_hf.hub.model_repo import check_model_repo
    from ultrasam_hf.training.variants import read_adapter_base

    out = tmp_path / "kept"
    run_python(
        [*COMMON, "--data", tiny_shards, "--max-steps", "1", "--warmup-steps", "0", "--variant", "lora"]
        + ["--lora-rank", "4", "--output-dir", out, "--keep-adapter"]
    )
    assert read_adapter_base(out) == str(out / "base")
    assert check_model_repo(out / "base") == [] and (out / "base" / "README.md").is_file()


def test_frozen_encoder_uses_the_embedding_cache(tiny_shards, tmp_path):
    from script_runs import run_python

    from ultrasam_hf import UltraSamModel
    from ultrasam_hf.training.data import image_array, load_split, row_key
    from ultrasam_hf.training.embedding_cache import EmbeddingCache
    from ultrasam_hf.training.trainer import make_image_processor

    out = tmp_path / "frozen"
    result = run_python(
        [*COMMON, "--data", tiny_shards, "--output-dir", out, "--max-steps", "3", "--variant", "frozen-encoder"]
    )
    cache = EmbeddingCache(out / "embedding_cache")
    rows = load_split(tiny_shards, "train")
    assert len(cache) == 2 * len(rows) and cache.flips
    model = UltraSamModel.from_pretrained(out).eval()
    row = rows[0]
    pixels = make_image_processor(model.config)(images=image_array(row["image"]), return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        expected = model.get_image_embeddings(pixels)[0]
    torch.testing.assert_close(cache.get(row_key(row)), expected, atol=2e-3, rtol=2e-3)  # float16 cache
    # a second run reuses the complete cache
    result = run_python(
        [*COMMON, "--data", tiny_shards, "--output-dir", out, "--max-steps", "1", "--variant", "frozen-encoder"]
    )
    assert "embedding cache" not in result.stderr


def test_streaming_and_config_file(tiny_shards, tmp_path):
    from script_runs import run_python

    config = tmp_path / "run.yaml"
    config.write_text(
        f"preset: tiny\nbatch-size: 2\nmax_steps: 2\nstreaming: true\ndata: [{tiny_shards}]\nmixing_temperature: 2.0\n"
    )
    out = tmp_path / "stream"
    run_python(["--config", config, "--output-dir", out, "--no-progress", "--log-with", "none", "--record-samples"])
    keys = (out / "samples_rank0.txt").read_text().split()
    assert len(keys) == 4
    assert json.loads((out / "training_config.json").read_text())["streaming"] is True


def test_a_runs_training_record_reads_back_as_its_config(tmp_path):
    """training_config.json comma-joins list flags for trackers; `--config` turns them back into lists."""
    from ultrasam_hf.errors import UsageError
    from ultrasam_hf.training.config import TRAINING_RECORD, flat_config, parse_args

    config = parse_args(
        ["--pack", "p.npz", "--preset", "tiny", "--milestones", "130", "200", "--datasets", "bus-bra", "tg3k"]
    )
    record = tmp_path / TRAINING_RECORD
    record.write_text(json.dumps(flat_config(config)))
    assert json.loads(record.read_text())["milestones"] == "130,200"
    assert parse_args(["--config", str(record)]) == config
    # one milestone is written "130" (argparse alone would make it the int 130), no --data ""
    record.write_text(json.dumps({**flat_config(config), "milestones": "130", "data": ""}))
    reread = parse_args(["--config", str(record)])
    assert (reread.milestones, reread.data) == ([130], [])
    yaml_file = tmp_path / "run.yaml"
    yaml_file.write_text("pack: p.npz\nmilestones: 650\ndatasets: tg3k\n")
    from_yaml = parse_args(["--config", str(yaml_file)])  # a YAML scalar where a list is expected
    assert (from_yaml.milestones, from_yaml.datasets) == ([650], ["tg3k"])
    for bad in ("20k", [1.5], True):
        record.write_text(json.dumps({"pack": "p.npz", "milestones": bad}))
        with pytest.raises(UsageError, match="milestones in .* must be a list of int"):
            parse_args(["--config", str(record)])


@pytest.mark.slow  # ~25 s; export_model itself runs in every default training test
def test_a_mid_run_checkpoint_exports_as_a_model_folder(tiny_shards, tmp_path):
    """`--resume <checkpoint> --max-steps <its step> --output-dir <new>` writes that checkpoint as a model folder."""
    from safetensors.torch import load_file
    from script_runs import run_python

    args = [*COMMON, "--data", tiny_shards, "--save-every", "2"]
    run_python([*args, "--output-dir", tmp_path / "run", "--max-steps", "3"])
    checkpoint = tmp_path / "run" / "checkpoints" / "step_2"
    run_python([*args, "--output-dir", tmp_path / "export", "--max-steps", "2", "--resume", checkpoint])
    exported = load_file(tmp_path / "export" / "model.safetensors")
    saved = {k.removeprefix("model."): v for k, v in load_file(checkpoint / "model.safetensors").items()}
    assert set(saved) <= set(exported) and all(torch.equal(exported[k], saved[k]) for k in saved)
    final = load_file(tmp_path / "run" / "model.safetensors")
    assert not all(torch.equal(final[k], exported[k]) for k in saved)  # step 3 differs from step 2
