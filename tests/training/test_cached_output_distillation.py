"""`--variant frozen-encoder --distill-outputs`: both models' embeddings are cached once, and the prompt encoder and
decoder learn to answer as the teacher does from the model's own embeddings, at decoder speed."""

import json
from pathlib import Path

import pytest
import torch
from script_runs import run_python
from tiny_models import seeded_model

from ultrasam_hf import UltraSamModel
from ultrasam_hf.errors import UsageError
from ultrasam_hf.models.transforms import low_res_size
from ultrasam_hf.training.config import TrainingConfig, validate_config
from ultrasam_hf.training.data import ExampleBuilder, collate, load_split, rows_per_dataset
from ultrasam_hf.training.embedding_cache import EmbeddingCache, build_embedding_cache
from ultrasam_hf.training.module import UltraSamTrainingModule
from ultrasam_hf.training.trainer import make_image_processor


def _other_model(seed):
    torch.manual_seed(seed)
    return UltraSamModel(seeded_model("tiny").config).eval().requires_grad_(False)


def _cached_batch(student, teacher, shards, cache_root):
    """A batch of three rows from the student's embedding cache and, with a `teacher`, the teacher's."""
    rows = load_split(shards, "train").select(range(3))
    processor = make_image_processor(student.config)
    caches = {
        name: build_embedding_cache(model, rows, processor, cache_root / name, flips=False, progress=False)
        for name, model in (("student", student), ("teacher", teacher))
        if model is not None
    }
    builder = ExampleBuilder(
        processor,
        student.config.prompt_encoder_config.image_size,
        low_res_size(student.config),
        flip_probability=0.0,
        embedding_cache=caches["student"],
        teacher_cache=caches.get("teacher"),
    )
    return collate([{**builder(rows[i], 0, i), "position": i} for i in range(3)])


def test_cached_batches_hold_embeddings_not_pixels(tiny_shards, tmp_path):
    student = seeded_model("tiny")
    alone = _cached_batch(student, None, tiny_shards, tmp_path)
    assert "pixel_values" not in alone and "teacher_embeddings" not in alone
    both = _cached_batch(student, _other_model(2), tiny_shards, tmp_path)
    assert "pixel_values" not in both
    torch.testing.assert_close(both["image_embeddings"], alone["image_embeddings"])
    assert both["teacher_embeddings"].shape == both["image_embeddings"].shape
    assert not torch.allclose(both["teacher_embeddings"], both["image_embeddings"])


def test_the_decoder_learns_the_teachers_answers_from_cached_embeddings(tiny_shards, tmp_path):
    student = seeded_model("tiny")
    batch = _cached_batch(student, _other_model(2), tiny_shards, tmp_path)

    def run(teacher, teacher_embeddings):
        module = UltraSamTrainingModule(
            student, clicks=1, train_encoder=False, teacher_model=teacher, output_distill_weight=2.0
        )
        return module({**batch, "teacher_embeddings": teacher_embeddings})

    # the student's own weights and embeddings as the teacher: its answers, the lowest the term can be
    at_copy = run(seeded_model("tiny").eval().requires_grad_(False), batch["image_embeddings"])
    at_other = run(_other_model(2), batch["teacher_embeddings"])
    assert float(at_copy["logs"]["distill"]) == 0.0  # no embedding term: the encoder is frozen
    assert 0 < float(at_copy["logs"]["distill_outputs"]) < float(at_other["logs"]["distill_outputs"])
    student.zero_grad()
    at_other["loss"].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in student.mask_decoder.parameters())
    module = UltraSamTrainingModule(student, train_encoder=False, teacher_model=_other_model(2))
    assert module.logged_terms == ("focal", "dice", "iou_mse", "iou", "distill_outputs")
    with pytest.raises(ValueError, match="needs a teacher_encoder or the batch's cached teacher_embeddings"):
        module({key: value for key, value in batch.items() if key != "teacher_embeddings"})


def test_a_reused_cache_must_hold_every_training_image(tiny_shards, tmp_path):
    model = seeded_model("tiny")
    processor = make_image_processor(model.config)
    rows = load_split(tiny_shards, "train")
    few = rows_per_dataset(rows, 2, seed=0)
    cache = build_embedding_cache(model, few, processor, tmp_path / "c", flips=False, progress=False)
    assert len(cache) == 4
    # complete for this encoder, so reused without embedding anything: the same or fewer rows are fine
    again = build_embedding_cache(model, few.select([0, 3]), processor, tmp_path / "c", flips=False, progress=False)
    assert isinstance(again, EmbeddingCache) and len(again) == 4
    with pytest.raises(ValueError, match=r"lacks 14 of the 18 training images' embeddings .*built for other images"):
        build_embedding_cache(model, rows, processor, tmp_path / "c", flips=False, progress=False)


def test_settings_are_checked_before_the_run(tiny_shards, tiny_init, tmp_path):
    def config(**overrides):
        return TrainingConfig(
            init=str(tiny_init), data=[str(tiny_shards)], output_dir=str(tmp_path / "r"), **overrides
        )

    teacher = {"distill_teacher": str(tiny_init), "variant": "frozen-encoder"}
    validate_config(config(**teacher, distill_outputs=1.0, teacher_cache_dir=str(tmp_path / "t")))
    validate_config(config(distill_teacher=str(tiny_init), distill_outputs=1.0, teacher_cache_dir="t"))  # full
    with pytest.raises(UsageError, match="--teacher-cache-dir holds a --distill-teacher's embeddings"):
        validate_config(config(teacher_cache_dir="t"))
    with pytest.raises(UsageError, match="--teacher-cache-dir embeds the rows of --data shards: not with --pack"):
        validate_config(config(distill_teacher=str(tiny_init), teacher_cache_dir="t", streaming=True))
    with pytest.raises(UsageError, match="--rows-seed draws the rows of --rows-per-dataset"):
        validate_config(config(rows_seed=0))
    with pytest.raises(UsageError, match="--rows-per-dataset must be >= 1"):
        validate_config(config(rows_per_dataset=0))
    with pytest.raises(UsageError, match="--rows-per-dataset selects rows of --data shards: not with --pack"):
        validate_config(config(rows_per_dataset=3, pack=str(tmp_path / "pack.npz")))
    slug = sorted(p.name for p in Path(tiny_shards).iterdir() if p.is_dir())[0]
    validate_config(config(dataset_weights=[f"{slug}=2.5"]))
    for bad in ([slug], [f"{slug}=0"], [f"{slug}=nan"], [f"{slug}=x"], ["=2"]):
        with pytest.raises(UsageError, match="--dataset-weights takes SLUG=FACTOR with a finite factor > 0"):
            validate_config(config(dataset_weights=bad))
    with pytest.raises(UsageError, match="--dataset-weights names 'a' twice"):
        validate_config(config(dataset_weights=["a=2", "a=3"]))
    with pytest.raises(UsageError, match=r"--dataset-weights names \['no-such-set'\], which this run does not train"):
        validate_config(config(dataset_weights=["no-such-set=2"]))


def test_pretrain_frozen_encoder_distill_outputs(tiny_shards, tiny_init, tmp_path):
    from ultrasam_hf.training.trackers import read_csv_metrics

    teacher_dir, out = tmp_path / "teacher", tmp_path / "run"
    _other_model(2).save_pretrained(teacher_dir)
    run_python(
        [
            "--init", tiny_init, "--data", tiny_shards, "--variant", "frozen-encoder", "--distill-teacher",
            teacher_dir, "--distill-outputs", 2, "--rows-per-dataset", 4, "--no-cache-flips", "--clicks", 1,
            "--max-steps", 3, "--batch-size", 2, "--log-every", 1, "--output-dir", out, "--no-progress",
            "--log-with", "csv",
        ]
    )  # fmt: skip
    metrics = read_csv_metrics(out / "logs" / "ultrasam" / "metrics.csv")
    outputs = [m["value"] for m in metrics if m["name"] == "train/distill_outputs"]
    assert len(outputs) == 3 and all(value > 0 for value in outputs)
    assert not [m for m in metrics if m["name"] == "train/distill"]  # no embedding term without an encoder to train
    assert len(EmbeddingCache(out / "teacher_cache")) == 8  # the 4 + 4 drawn images, one orientation
    trained, initial = UltraSamModel.from_pretrained(out), UltraSamModel.from_pretrained(tiny_init)
    for name, tensor in trained.vision_encoder.state_dict().items():
        assert torch.equal(tensor, initial.vision_encoder.state_dict()[name]), name
    assert any(
        not torch.equal(tensor, initial.mask_decoder.state_dict()[name])
        for name, tensor in trained.mask_decoder.state_dict().items()
    )
    record = json.loads((out / "training_config.json").read_text())
    assert record["rows_per_dataset"] == 4 and record["distill_outputs"] == 2.0
