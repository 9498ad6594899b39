"""`scripts/pretrain.py` given settings and inputs that cannot work: one line `pretrain.py: error: ...`, exit status
1, and the output folder never created; a damaged checkpoint on `--resume` is one line too."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from bad_input_helpers import assert_one_line_error

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "data"))  # data_fixtures: the builder on fixtures

from data_fixtures import build, make_spec, save, two_blobs, ultrasound_like  # noqa: E402


def pretrain_main():
    spec = importlib.util.spec_from_file_location("pretrain_script", REPO / "scripts" / "pretrain.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def run_pretrain(argv, capsys):
    code = pretrain_main()([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    root = tmp_path_factory.mktemp("pretrain_data")
    for index in range(3):
        save(root / "raw" / "images" / f"img{index}.png", ultrasound_like(seed=index))
        save(root / "raw" / "masks" / f"img{index}.png", two_blobs())
    spec = make_spec("image_mask_pairs", {"images": "images/*.png", "mask": "masks/{stem}.png"}, {1: "a", 2: "b"})
    build(spec, root / "raw", root / "shards")
    return root / "shards"


@pytest.fixture(scope="module")
def config_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("configs")
    (root / "broken.yaml").write_text("batch_size: [1, 2\n")
    (root / "broken.json").write_text('{"batch_size": ')
    (root / "list.yaml").write_text("- 1\n- 2\n")
    (root / "unknown.yaml").write_text("batch_sise: 4\n")
    (root / "zero_batch.yaml").write_text("batch_size: 0\n")
    (root / "bad_variant.yaml").write_text("variant: everything\n")
    return root


def settings_cases(shards, config_files, bad_models, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    a_file = tmp_path / "taken"
    a_file.write_text("x")
    data = ["--data", shards, "--preset", "tiny"]
    return [
        ([], ["--data (shard folder) or --pack (training pack) is required"]),
        (["--data", tmp_path / "nope"], [str(tmp_path / "nope"), "is not a folder"]),
        (["--data", empty], [str(empty), "has no 'train' shards", "<slug>/train/*.parquet"]),
        ([*data, "--datasets", "fixture", "nope"], ["--datasets ['nope'] have no 'train' shards"]),
        ([*data, "--batch-size", "0"], ["--batch-size must be >= 1, got 0"]),
        ([*data, "--learning-rate", "nan"], ["--learning-rate must be a finite number > 0"]),
        ([*data, "--point-probability", "1.5"], ["--point-probability must be in [0, 1]"]),
        ([*data, "--max-steps", "0"], ["--max-steps must be >= 1"]),
        ([*data, "--milestones", "-3"], ["--milestones must be step numbers >= 0"]),
        (["--data", shards, "--preset", "vit-z"], ["--preset must be one of"]),
        ([*data, "--init", bad_models["bert"][0]], [str(bad_models["bert"][0]), "'bert' model"]),
        ([*data, "--init", bad_models["no-weights"][0]], ["no weights"]),
        ([*data, "--pack", tmp_path / "no.pack"], ["--pack", "does not exist", "make_training_pack.py"]),
        ([*data, "--output-dir", a_file], [str(a_file), "is an existing file"]),
        ([*data, "--resume", tmp_path / "no-checkpoint"], ["--resume", "is not a checkpoint folder"]),
        ([*data, "--config", tmp_path / "none.yaml"], ["--config", "cannot be read"]),
        ([*data, "--config", config_files / "broken.yaml"], ["is not valid YAML"]),
        ([*data, "--config", config_files / "broken.json"], ["is not valid JSON"]),
        ([*data, "--config", config_files / "list.yaml"], ["holds a list, not a mapping"]),
        ([*data, "--config", config_files / "unknown.yaml"], ["unknown keys", "batch_sise"]),
        ([*data, "--config", config_files / "zero_batch.yaml"], ["--batch-size must be >= 1, got 0"]),
        ([*data, "--config", config_files / "bad_variant.yaml"], ["--variant must be one of", "everything"]),
        ([*data, "--variant", "late-encoder"], ["--variant late-encoder splits a TinyViT encoder", "'vit'"]),
        (
            ["--data", shards, "--preset", "tiny-lite", "--variant", "late-encoder", "--frozen-stages", "9"],
            ["--frozen-stages must be in [0, 4]", "got 9"],
        ),
    ]


def test_bad_settings_are_one_line_and_create_nothing(shards, config_files, bad_models, tmp_path, capsys):
    out = tmp_path / "run"
    for argv, needles in settings_cases(shards, config_files, bad_models, tmp_path):
        argv = [*argv, "--no-progress", "--log-with", "none"]
        if "--output-dir" not in argv:
            argv += ["--output-dir", out]
        code, stdout, err = run_pretrain(argv, capsys)
        assert code == 1, argv
        assert_one_line_error(err, "pretrain.py", *needles)
        assert stdout == "" and not out.exists(), argv


def checkpoint_folder(root: Path, state_text: str, weights: bytes | None = None) -> Path:
    folder = root / "checkpoints" / "step_2"
    folder.mkdir(parents=True)
    (folder / "trainer_state_rank0.json").write_text(state_text)
    if weights is not None:
        (folder / "model.safetensors").write_bytes(weights)
    return folder


def test_a_damaged_resume_checkpoint_is_one_line(shards, tmp_path, capsys):
    state = json.dumps({"step": 2, "epoch": 0, "batches_in_epoch": 2, "prompt_generator": [0] * 16})
    cases = [
        ("truncated-state", state[:25], None, "is truncated or corrupt"),
        ("incomplete-state", json.dumps({"step": 2}), None, "lacks ['epoch', 'batches_in_epoch', 'prompt_generator']"),
        ("truncated-weights", state, b'\x10\x00\x00\x00\x00\x00\x00\x00{"w":', "model.safetensors is truncated"),
    ]
    for name, state_text, weights, needle in cases:
        run_dir = tmp_path / name
        checkpoint = checkpoint_folder(run_dir, state_text, weights)
        for resume in (checkpoint, "latest"):
            argv = [
                "--data",
                shards,
                "--preset",
                "tiny",
                "--output-dir",
                run_dir,
                "--resume",
                resume,
                "--no-progress",
                "--log-with",
                "none",
            ]
            code, _, err = run_pretrain(argv, capsys)
            assert code == 1, (name, resume)
            assert_one_line_error(err, "pretrain.py", "cannot resume from", str(checkpoint), needle)
        assert sorted(p.name for p in run_dir.iterdir()) == ["checkpoints"]  # nothing else created


def test_debug_shows_the_traceback(tmp_path, capsys, monkeypatch):
    from ultrasam_hf.errors import UsageError

    with pytest.raises(UsageError, match="is not a folder"):
        pretrain_main()(["--data", str(tmp_path / "nope"), "--debug"])
    monkeypatch.setenv("ULTRASAM_DEBUG", "1")
    with pytest.raises(UsageError):
        pretrain_main()(["--data", str(tmp_path / "nope")])


def _launch(command, tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow  # ~27 s: accelerate launch; the same errors are checked in-process
def test_under_accelerate_launch_quiet_one_line_and_no_folder(tmp_path):
    out = tmp_path / "run"
    script = [str(REPO / "scripts" / "pretrain.py"), "--data", str(tmp_path / "nope"), "--output-dir", str(out)]
    accelerate = str(Path(sys.executable).with_name("accelerate"))
    for command in (
        [sys.executable, *script],
        [
            accelerate,
            "launch",
            "-q",
            "--num_processes",
            "1",
            "--num_machines",
            "1",
            "--mixed_precision",
            "no",
            "--dynamo_backend",
            "no",
            "--cpu",
            *script,
        ],
    ):
        result = _launch(command, tmp_path)
        assert result.returncode == 1, result.stderr
        errors = [line for line in result.stderr.splitlines() if "error" in line.lower() or "Traceback" in line]
        assert errors == [
            f"pretrain.py: error: --data {tmp_path / 'nope'} is not a folder (a build folder of "
            "`ultrasam data build --out`)"
        ], result.stderr
        assert not out.exists()


@pytest.mark.slow  # ~25 s: two training runs
def test_a_damaged_optimizer_state_is_one_line(shards, tmp_path):
    """A real checkpoint whose optimizer file was cut: Accelerate's own loader fails, reported as one line."""
    run_dir = tmp_path / "run"
    common = [
        str(REPO / "scripts" / "pretrain.py"),
        "--data",
        str(shards),
        "--preset",
        "tiny",
        "--batch-size",
        "2",
        "--output-dir",
        str(run_dir),
        "--no-progress",
        "--log-with",
        "none",
        "--warmup-steps",
        "0",
    ]
    result = _launch([sys.executable, *common, "--max-steps", "1", "--save-every", "1"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    (checkpoint,) = (run_dir / "checkpoints").iterdir()
    optimizer = checkpoint / "optimizer.bin"
    assert optimizer.is_file(), sorted(p.name for p in checkpoint.iterdir())
    optimizer.write_bytes(optimizer.read_bytes()[: optimizer.stat().st_size // 2])
    result = _launch([sys.executable, *common, "--max-steps", "2", "--resume", "latest"], tmp_path)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower() or "Traceback" in line]
    assert len(errors) == 1 and errors[0].startswith(f"pretrain.py: error: cannot resume from {checkpoint}"), errors
    assert np.isfinite(1.0)
