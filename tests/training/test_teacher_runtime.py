"""`--teacher-runtime`: a distillation teacher's encoder on ONNX Runtime gives the batch the embeddings PyTorch gives,
and the choice follows the device and what is installed."""

import json

import pytest
import torch
from script_runs import run_python
from tiny_models import seeded_model

from ultrasam_hf.errors import UsageError
from ultrasam_hf.training.config import TrainingConfig, validate_config
from ultrasam_hf.training.data import load_split
from ultrasam_hf.training.embedding_cache import build_embedding_cache
from ultrasam_hf.training.teacher_runtime import OnnxTeacherEncoder, teacher_encoder
from ultrasam_hf.training.trainer import make_image_processor, make_processor

pytest.importorskip("onnxruntime")


def _teacher(preset, folder):
    teacher = seeded_model(preset).eval().requires_grad_(False)
    teacher.save_pretrained(folder)
    return teacher, make_processor(make_image_processor(teacher.config))


@pytest.mark.parametrize("preset", ["tiny-lite", "tiny"])
def test_the_onnx_teacher_gives_the_pytorch_embeddings(preset, tmp_path):
    teacher, processor = _teacher(preset, tmp_path / "teacher")
    encoder = teacher_encoder(teacher, str(tmp_path / "teacher"), "auto", "cpu", processor, verbose=False)
    assert isinstance(encoder, OnnxTeacherEncoder)
    size = teacher.config.vision_config.image_size
    pixels = torch.randn(3, 3, size, size, generator=torch.Generator().manual_seed(0))  # a batch, flips included
    pixels[1] = pixels[0].flip(-1)
    with torch.no_grad():
        expected = teacher.vision_encoder(pixels).last_hidden_state
    got = encoder(pixels).last_hidden_state
    assert got.shape == expected.shape and got.dtype == expected.dtype
    assert (got - expected).abs().max() <= 1e-4 * max(1.0, float(expected.abs().max()))


def test_a_cache_built_on_the_onnx_teacher_holds_the_pytorch_embeddings(tiny_shards, tmp_path):
    teacher, processor = _teacher("tiny-lite", tmp_path / "teacher")
    runner = teacher_encoder(teacher, str(tmp_path / "teacher"), "onnx", "cpu", processor, verbose=False)
    rows = load_split(tiny_shards, "train")
    settings = {"flips": True, "dtype": "float32", "progress": False}
    via_onnx = build_embedding_cache(
        teacher,
        rows,
        processor.image_processor,
        tmp_path / "onnx",
        vision_encoder=runner,
        **settings,
    )
    via_pytorch = build_embedding_cache(teacher, rows, processor.image_processor, tmp_path / "pytorch", **settings)
    assert len(via_onnx) == len(via_pytorch) == 2 * len(rows)
    for key in via_pytorch.index:
        assert torch.allclose(via_onnx.get(key), via_pytorch.get(key), atol=1e-4), key
    with pytest.raises(ValueError, match="does not combine with frozen_stages"):
        build_embedding_cache(
            teacher, rows, processor.image_processor, tmp_path / "x", frozen_stages=1, vision_encoder=print
        )


def test_pytorch_and_devices_other_than_the_cpu_keep_the_teachers_own_encoder(tmp_path, monkeypatch):
    teacher, processor = _teacher("tiny-lite", tmp_path / "teacher")
    folder = str(tmp_path / "teacher")
    assert teacher_encoder(teacher, folder, "pytorch", "cpu", processor) is teacher.vision_encoder
    assert teacher_encoder(teacher, folder, "auto", "cuda", processor) is teacher.vision_encoder
    with pytest.raises(ValueError, match="runs the teacher on the CPU"):
        teacher_encoder(teacher, folder, "onnx", "cuda", processor)
    with pytest.raises(ValueError, match="teacher runtime must be one of"):
        teacher_encoder(teacher, folder, "tensorrt", "cpu", processor)
    monkeypatch.setattr("ultrasam_hf.inference.backends.onnxruntime_available", lambda: False)
    assert teacher_encoder(teacher, folder, "auto", "cpu", processor) is teacher.vision_encoder


def test_a_teacher_runtime_without_a_teacher_is_refused(tiny_shards, tmp_path):
    config = TrainingConfig(data=str(tiny_shards), preset="tiny", output_dir=str(tmp_path), teacher_runtime="onnx")
    with pytest.raises(UsageError, match="--teacher-runtime onnx needs --distill-teacher"):
        validate_config(config)


def test_pretrain_says_where_the_teacher_runs_and_records_it(tiny_shards, tiny_init, tmp_path):
    common = ["--init", tiny_init, "--data", tiny_shards, "--variant", "encoder-only", "--distill-only"]
    for runtime, said in (("onnx", "ONNX Runtime"), ("pytorch", "PyTorch (cpu)")):
        out = tmp_path / runtime
        result = run_python(
            [*common, "--distill-teacher", tiny_init, "--teacher-runtime", runtime, "--max-steps", "1"]
            + ["--batch-size", "2", "--output-dir", out, "--no-progress", "--log-with", "none"]
        )
        assert f"distillation teacher's encoder: {said}" in result.stdout
        assert json.loads((out / "training_config.json").read_text())["teacher_runtime"] == runtime
