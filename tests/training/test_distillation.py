"""Encoder distillation (`ultrasam_hf.training.distillation`, `scripts/distill_encoder.py`): the student shares
everything but its encoder with the teacher, and training brings its embeddings towards the teacher's."""

import json

import pytest
import torch
from script_runs import run_python
from tiny_models import seeded_model

from ultrasam_hf import UltraSamModel
from ultrasam_hf.models.image_processing_ultrasam import UltraSamImageProcessor
from ultrasam_hf.training.data import load_split, rows_per_dataset
from ultrasam_hf.training.distillation import (
    DistillationConfig,
    DistillationPairs,
    distill_encoder,
    learning_rate_factor,
    student_from_teacher,
)
from ultrasam_hf.training.embedding_cache import build_embedding_cache


@pytest.fixture(scope="module")
def teacher():
    """A seeded nano-preset model stands in for the lite teacher: the same 256 px geometry and 64x64x256
    embedding, at a fraction of the cost."""
    return seeded_model("nano").eval()


@pytest.fixture(scope="module")
def teacher_pairs(teacher, tiny_shards, tmp_path_factory):
    rows = load_split(tiny_shards, "train", ["alpha"]).select(range(4))
    processor = UltraSamImageProcessor.from_model_config(teacher.config)
    cache = build_embedding_cache(teacher, rows, processor, tmp_path_factory.mktemp("teacher"), progress=False)
    return DistillationPairs(rows, processor, cache)


def test_student_copies_everything_but_the_encoder(teacher):
    torch.manual_seed(1)
    student = student_from_teacher(teacher, "nano")
    assert student.config.preset == "nano"
    assert student.config.preprocessing == teacher.config.preprocessing
    teacher_state = teacher.state_dict()
    for name, tensor in student.state_dict().items():
        if name.startswith("vision_encoder."):
            continue
        assert torch.equal(tensor, teacher_state[name]), name
    trainable = {name for name, parameter in student.named_parameters() if parameter.requires_grad}
    assert trainable and all(name.startswith("vision_encoder.") for name in trainable)
    # the encoder is a fresh one, not the teacher's
    assert not torch.equal(student.vision_encoder.neck.pointwise.weight, teacher.vision_encoder.neck.pointwise.weight)


def test_student_can_be_wider_than_the_preset(teacher):
    torch.manual_seed(1)
    wide = {"nano_embed_dims": [64, 96, 192], "nano_depths": [1, 1, 2], "nano_num_heads": 6}
    student = student_from_teacher(teacher, "nano", wide)
    vision = student.config.vision_config
    assert (vision.nano_embed_dims, vision.nano_depths, vision.nano_num_heads) == ([64, 96, 192], [1, 1, 2], 6)
    assert vision.hidden_size == 192  # follows the last stage's width
    assert student.vision_encoder.neck.lateral[-1].in_channels == 192
    with torch.no_grad():
        assert student.get_image_embeddings(torch.zeros(1, 3, 256, 256)).shape == (1, 256, 64, 64)
    assert torch.equal(student.mask_decoder.iou_token.weight, teacher.mask_decoder.iou_token.weight)


def test_student_overrides_are_checked(teacher):
    with pytest.raises(ValueError, match=r"unknown vision config fields \['nano_width'\]"):
        student_from_teacher(teacher, "nano", {"nano_width": 3})
    with pytest.raises(ValueError, match="nano_num_heads=7 must divide 160"):
        student_from_teacher(teacher, "nano", {"nano_num_heads": 7})
    with pytest.raises(ValueError, match="Field 'nano_num_heads' expected int, got str"):
        student_from_teacher(teacher, "nano", {"nano_num_heads": "abc"})
    with pytest.raises(ValueError, match="nano_embed_dims"):
        student_from_teacher(teacher, "nano", {"nano_embed_dims": 64})
    with pytest.raises(ValueError, match="output_channels is 128 for the student, 256 for the teacher"):
        student_from_teacher(teacher, "nano", {"output_channels": 128})


def test_student_refuses_a_teacher_of_another_geometry():
    with pytest.raises(ValueError, match="image_size is 256 for the student, 64 for the teacher"):
        student_from_teacher(seeded_model("tiny"), "nano")


def test_pairs_are_pixels_and_the_teachers_embedding(teacher, teacher_pairs):
    assert len(teacher_pairs) == 8  # 4 images, both orientations
    pixels, target = teacher_pairs[1]
    assert pixels.shape == (3, 256, 256) and target.shape == (256, 64, 64)
    with torch.no_grad():
        expected = teacher.get_image_embeddings(pixels[None])[0]
    torch.testing.assert_close(target, expected, atol=5e-3, rtol=5e-3)  # stored as float16


def _embedding_error(student, pairs) -> float:
    with torch.no_grad():
        return sum(
            torch.mean((student.get_image_embeddings(pixels[None])[0] - target) ** 2).item()
            for pixels, target in pairs
        ) / len(pairs)


@pytest.mark.slow  # ~30 s; test_script_writes_a_complete_model runs the same loop
def test_distillation_lowers_the_embedding_error(teacher, teacher_pairs):
    torch.manual_seed(0)
    student = student_from_teacher(teacher, "nano")
    decoder_before = {name: tensor.clone() for name, tensor in student.mask_decoder.state_dict().items()}
    before = _embedding_error(student, teacher_pairs)
    config = DistillationConfig(steps=8, batch_size=4, learning_rate=1e-2, warmup_steps=1)
    losses = distill_encoder(student, teacher_pairs, config, progress=False)
    assert len(losses) == 8
    after = _embedding_error(student, teacher_pairs)
    assert losses[-1] < 0.85 * losses[0] and after < 0.85 * before  # 1.00 -> 0.81 in 8 steps
    for name, tensor in student.mask_decoder.state_dict().items():
        assert torch.equal(tensor, decoder_before[name]), name  # the decoder is the teacher's, untouched


def test_learning_rate_warms_up_then_decays_to_zero():
    config = DistillationConfig(steps=100, warmup_steps=10)
    assert learning_rate_factor(0, config) == pytest.approx(0.1)
    assert learning_rate_factor(9, config) == pytest.approx(1.0)
    assert learning_rate_factor(55, config) == pytest.approx(0.5)
    assert learning_rate_factor(100, config) == pytest.approx(0.0)


def test_rows_per_dataset_caps_each_dataset(tiny_shards):
    rows = load_split(tiny_shards, "train")  # alpha 12, beta 6
    capped = rows_per_dataset(rows, 5, seed=0)
    assert sorted(capped["dataset"]).count("alpha") == 5 and sorted(capped["dataset"]).count("beta") == 5
    assert capped["image_id"] == rows_per_dataset(rows, 5, seed=0)["image_id"]  # seeded
    assert len(rows_per_dataset(rows, None)) == 18
    with pytest.raises(ValueError, match="must be >= 1"):
        rows_per_dataset(rows, 0)


def test_script_writes_a_complete_model(teacher, tiny_shards, tmp_path):
    teacher_dir, out = tmp_path / "teacher", tmp_path / "student"
    teacher.save_pretrained(teacher_dir)
    run_python(
        [
            "scripts/distill_encoder.py",
            "--teacher", teacher_dir, "--data", tiny_shards, "--per-dataset", 2, "--cache-dir", tmp_path / "cache",
            "--steps", 2, "--batch-size", 2, "--warmup-steps", 1, "--out", out, "--no-progress",
        ],
        script=True,
    )  # fmt: skip
    student = UltraSamModel.from_pretrained(out)
    assert student.config.vision_config.encoder_type == "nano"
    log = json.loads((out / "distillation_log.json").read_text())
    assert log["images"] == {"alpha": 2, "beta": 2} and log["pairs"] == 4 and log["config"]["steps"] == 2
    assert "distillation" in (out / "README.md").read_text()


def test_script_writes_a_wider_untrained_student(teacher, tmp_path):
    teacher_dir, out = tmp_path / "teacher", tmp_path / "wide"
    teacher.save_pretrained(teacher_dir)
    run_python(
        [
            "scripts/distill_encoder.py", "--teacher", teacher_dir, "--student-only", "--out", out,
            "--encoder", "nano_embed_dims=64,96,192", "nano_depths=1,1,2", "nano_num_heads=6",
        ],
        script=True,
    )  # fmt: skip
    vision = UltraSamModel.from_pretrained(out).config.vision_config
    assert (vision.nano_embed_dims, vision.nano_depths, vision.nano_num_heads, vision.hidden_size) == (
        [64, 96, 192],
        [1, 1, 2],
        6,
        192,
    )
    with pytest.raises(AssertionError, match="expected FIELD=VALUE, got 'nano_depths'"):
        run_python(
            ["scripts/distill_encoder.py", "--student-only", "--out", out, "--encoder", "nano_depths"], script=True
        )


def test_embedding_error_script_scores_each_student_per_dataset(teacher, tiny_shards, tmp_path):
    """`scripts/embedding_error.py`: the teacher against itself is 0 on every dataset, a fresh student far from it."""
    teacher_dir, fresh_dir, out = tmp_path / "teacher", tmp_path / "fresh", tmp_path / "errors.json"
    teacher.save_pretrained(teacher_dir)
    torch.manual_seed(1)
    student_from_teacher(teacher, "nano").save_pretrained(fresh_dir)
    result = run_python(
        [
            "scripts/embedding_error.py", "--teacher", teacher_dir, "--models", teacher_dir, fresh_dir,
            "--data", tiny_shards, "--split", "train", "--per-dataset", 2, "--out", out, "--no-progress",
        ],
        script=True,
    )  # fmt: skip
    assert "| dataset | images | teacher | fresh |" in result.stdout
    record = json.loads(out.read_text())
    assert record["images"] == {"alpha": 2, "beta": 2}
    for errors in record["relative_error"].values():
        assert errors["teacher"] == 0.0
        assert errors["fresh"] > 0.5  # an untrained encoder is about as far as the teacher's own variance


def test_student_only_writes_the_untrained_student(teacher, tmp_path):
    teacher_dir, out = tmp_path / "teacher", tmp_path / "student"
    teacher.save_pretrained(teacher_dir)
    run_python(["scripts/distill_encoder.py", "--teacher", teacher_dir, "--student-only", "--out", out], script=True)
    student = UltraSamModel.from_pretrained(out)
    assert student.config.vision_config.encoder_type == "nano"
    for name, tensor in student.mask_decoder.state_dict().items():
        assert torch.equal(tensor, teacher.mask_decoder.state_dict()[name]), name
    assert not torch.equal(student.vision_encoder.neck.pointwise.weight, teacher.vision_encoder.neck.pointwise.weight)


@pytest.mark.slow  # ~1 min: the GPU chain of scripts/distill_nano.sh, two steps per stage on a CPU
def test_distill_nano_chain_runs_on_a_pack(teacher, tiny_shards, tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    teacher_dir, pack, out = tmp_path / "teacher", tmp_path / "pack.npz", tmp_path / "chain"
    teacher.save_pretrained(teacher_dir)
    run_python(
        ["scripts/make_training_pack.py", "--data", tiny_shards, "--init", teacher_dir, "--out", pack], script=True
    )
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "MSE_STEPS": "2", "TASK_STEPS": "2"}
    env.update(MSE_BATCH="2", TASK_BATCH="2", PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    env["PYTHONPATH"] = str(repo) + os.pathsep + env.get("PYTHONPATH", "")
    command = ["bash", "scripts/distill_nano.sh", pack, teacher_dir, out, "5", "5"]
    result = subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    student = UltraSamModel.from_pretrained(out / "nano-task")
    assert student.config.vision_config.encoder_type == "nano"
    record = json.loads((out / "nano-task" / "training_config.json").read_text())
    assert record["single_mask_clicks"] and record["iou_all_masks"] and record["distill_teacher"] == str(teacher_dir)
    assert record["distill_outputs"] == 2.0
    assert json.loads((out / "nano-mse" / "training_config.json").read_text())["distill_only"] is True


def test_script_continues_a_student(teacher, tiny_shards, tmp_path):
    teacher_dir, first, second = tmp_path / "teacher", tmp_path / "first", tmp_path / "second"
    teacher.save_pretrained(teacher_dir)
    run_python(["scripts/distill_encoder.py", "--teacher", teacher_dir, "--student-only", "--out", first], script=True)
    run_python(
        [
            "scripts/distill_encoder.py",
            "--teacher", teacher_dir, "--student", first, "--data", tiny_shards, "--per-dataset", 1,
            "--cache-dir", tmp_path / "cache", "--steps", 1, "--batch-size", 2, "--warmup-steps", 1,
            "--learning-rate", 1e-2, "--out", second, "--no-progress",
        ],
        script=True,
    )  # fmt: skip
    before, after = UltraSamModel.from_pretrained(first), UltraSamModel.from_pretrained(second)
    assert json.loads((second / "distillation_log.json").read_text())["continued_from"] == str(first)
    assert not torch.equal(after.vision_encoder.neck.pointwise.weight, before.vision_encoder.neck.pointwise.weight)
    for name, tensor in after.mask_decoder.state_dict().items():
        assert torch.equal(tensor, before.mask_decoder.state_dict()[name]), name
