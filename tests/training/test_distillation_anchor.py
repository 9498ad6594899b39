"""The teacher terms of pretrain.py (`--distill-teacher`, `--distill-weight`, `--distill-only`, `--distill-outputs`):
the end-to-end stages of a distilled student keep its embedding, and optionally its decoder's answers, near the
teacher's while the task loss adapts it."""

import json
from types import SimpleNamespace

import pytest
import torch
from script_runs import run_python
from tiny_models import seeded_model

from ultrasam_hf import UltraSamModel
from ultrasam_hf.errors import UsageError
from ultrasam_hf.models.transforms import low_res_size
from ultrasam_hf.training.config import TrainingConfig, validate_config
from ultrasam_hf.training.data import ExampleBuilder, collate, load_split
from ultrasam_hf.training.distillation import mask_output_distillation
from ultrasam_hf.training.module import UltraSamTrainingModule
from ultrasam_hf.training.trainer import load_teacher, make_image_processor


def _batch(model, shards):
    rows = load_split(shards, "train")
    builder = ExampleBuilder(
        make_image_processor(model.config), model.config.prompt_encoder_config.image_size, low_res_size(model.config)
    )
    return collate([{**builder(rows[i], 0, i), "position": i} for i in range(3)])


def _frozen(encoder):
    return encoder.eval().requires_grad_(False)


def test_the_term_is_zero_for_the_teachers_own_encoder_and_stays_out_of_the_module(tiny_shards):
    teacher = seeded_model("tiny")
    student = seeded_model("tiny")
    batch = _batch(student, tiny_shards)
    module = UltraSamTrainingModule(student, teacher_encoder=_frozen(teacher.vision_encoder), distill_weight=5.0)
    output = module(batch)
    assert float(output["logs"]["distill"]) == pytest.approx(0.0, abs=1e-10)
    without = UltraSamTrainingModule(seeded_model("tiny"))(batch)
    assert float(output["loss"].detach()) == pytest.approx(
        float(without["loss"].detach()), rel=1e-6
    )  # same prompts, same seed
    # frozen weights of the teacher: not parameters of the module, not in its state dict
    assert len(list(module.parameters())) == len(list(student.parameters()))
    assert not any(name.startswith("teacher") for name in module.state_dict())


def test_distill_only_trains_the_encoder_on_the_teacher_term_alone(tiny_shards):
    teacher = seeded_model("tiny")
    torch.manual_seed(1)
    student = UltraSamModel(teacher.config)  # another encoder under the same geometry
    batch = _batch(student, tiny_shards)
    module = UltraSamTrainingModule(
        student, teacher_encoder=_frozen(teacher.vision_encoder), distill_weight=2.0, distill_only=True
    )
    output = module(batch)
    with torch.no_grad():
        target = teacher.vision_encoder(batch["pixel_values"]).last_hidden_state
        embeddings = student.vision_encoder(batch["pixel_values"]).last_hidden_state
    relative = torch.mean((embeddings - target) ** 2) / target.var()
    assert float(output["logs"]["distill"]) == pytest.approx(float(relative), rel=1e-5)
    assert float(output["loss"].detach()) == pytest.approx(2.0 * float(relative), rel=1e-5)
    assert output["prompts"] == 0 and float(output["logs"]["focal"]) == 0.0
    output["loss"].backward()
    assert all(p.grad is not None for p in student.vision_encoder.parameters() if p.requires_grad)
    assert all(p.grad is None for p in student.mask_decoder.parameters())  # no decoder pass
    assert all(p.grad is None for p in teacher.parameters())


def test_cached_teacher_embeddings_replace_the_teachers_encoder(tiny_shards):
    teacher = seeded_model("tiny")
    torch.manual_seed(1)
    student = UltraSamModel(teacher.config)
    batch = _batch(student, tiny_shards)
    with torch.no_grad():
        target = teacher.vision_encoder(batch["pixel_values"]).last_hidden_state

    def live(encoder):
        return UltraSamTrainingModule(student, teacher_encoder=encoder, teacher_model=_frozen(teacher), seed=4)

    expected = live(_frozen(teacher.vision_encoder))(batch)

    def never_called(pixel_values):
        raise AssertionError("the teacher's encoder ran although the batch holds its embeddings")

    cached = live(never_called)({**batch, "teacher_embeddings": target})
    for term in ("distill", "distill_outputs"):
        assert float(cached["logs"][term]) == pytest.approx(float(expected["logs"][term]), rel=1e-6), term
    assert float(cached["logs"]["distill"]) > 0


def test_a_teacher_of_another_geometry_or_no_pixels_is_refused(tiny_shards):
    student = seeded_model("tiny")
    batch = _batch(student, tiny_shards)

    class Halved(torch.nn.Module):  # an encoder of another embedding size
        def forward(self, pixels):
            return SimpleNamespace(last_hidden_state=torch.zeros(len(pixels), 128, 16, 16))

    module = UltraSamTrainingModule(student, teacher_encoder=Halved())
    with pytest.raises(ValueError, match=r"the teacher's embeddings are \(128, 16, 16\), the model's \(32, 8, 8\)"):
        module(batch)
    module = UltraSamTrainingModule(student, teacher_encoder=_frozen(seeded_model("tiny").vision_encoder))
    cached = {**batch, "pixel_values": None, "image_embeddings": torch.zeros(3, 32, 8, 8)}
    with pytest.raises(ValueError, match="needs the batch's pixel_values"):
        module(cached)
    with pytest.raises(ValueError, match="distill_only needs a teacher_encoder"):
        UltraSamTrainingModule(student, distill_only=True)


def test_output_distillation_is_lowest_at_the_teachers_answers():
    torch.manual_seed(0)
    masks, scores = 4 * torch.randn(5, 3, 16, 16), torch.rand(5, 3)
    at_teacher = mask_output_distillation(masks, scores, masks, scores)
    assert at_teacher.shape == (5,)
    for other_masks, other_scores in (
        (masks + torch.randn_like(masks), scores),
        (masks, scores.flip(1)),
        (-masks, scores),
    ):
        assert (mask_output_distillation(other_masks, other_scores, masks, scores) > at_teacher).all()
    student = (masks + torch.randn_like(masks)).requires_grad_()
    student_scores = torch.rand(5, 3, requires_grad=True)
    mask_output_distillation(student, student_scores, masks, scores).sum().backward()
    assert student.grad.abs().sum() > 0 and student_scores.grad.abs().sum() > 0
    with pytest.raises(ValueError, match=r"the teacher's outputs are \(5, 1, 16, 16\) / \(5, 1\), the model's"):
        mask_output_distillation(masks, scores, masks[:, :1], scores[:, :1])


def test_the_output_term_holds_every_decoder_pass_to_the_teachers(tiny_shards):
    student = seeded_model("tiny")
    batch = _batch(student, tiny_shards)

    def run(teacher):
        module = UltraSamTrainingModule(
            student,
            clicks=1,
            single_mask_clicks=True,
            point_probability=0.5,
            teacher_encoder=_frozen(teacher.vision_encoder),
            teacher_model=_frozen(teacher),
            output_distill_weight=3.0,
        )
        return module(batch)

    student.zero_grad()
    copy = seeded_model("tiny")  # the student's own weights: its answers are the teacher's
    torch.manual_seed(2)
    other = UltraSamModel(student.config)
    at_copy, at_other = run(copy), run(other)
    assert float(at_copy["logs"]["distill"]) == pytest.approx(0.0, abs=1e-10)
    assert 0 < float(at_copy["logs"]["distill_outputs"]) < float(at_other["logs"]["distill_outputs"])
    without = UltraSamTrainingModule(student, clicks=1, single_mask_clicks=True, point_probability=0.5)(batch)
    # the term of every round's pass, weighted, is in the loss (logged as a mean over the 2 rounds); the single-mask
    # pass of the first round's clicks adds its own
    added = float(at_other["loss"].detach()) - float(without["loss"].detach())
    assert added >= 2 * 3.0 * float(at_other["logs"]["distill_outputs"]) * (1 - 1e-5)
    at_other["loss"].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in student.mask_decoder.parameters())
    assert all(p.grad is None for p in other.parameters())
    with pytest.raises(ValueError, match="teacher_model needs a teacher_encoder or the batch's cached"):
        UltraSamTrainingModule(student, teacher_model=other)(batch)
    with pytest.raises(ValueError, match="teacher_model needs prompts"):
        UltraSamTrainingModule(student, teacher_encoder=other.vision_encoder, teacher_model=other, distill_only=True)


def test_settings_are_checked_before_the_run(tiny_shards, tiny_init, tmp_path):
    lite_init = tmp_path / "nano"
    seeded_model("nano").save_pretrained(lite_init)

    def config(**overrides):
        return TrainingConfig(
            init=str(tiny_init), data=[str(tiny_shards)], output_dir=str(tmp_path / "r"), **overrides
        )

    with pytest.raises(UsageError, match="--distill-only needs --distill-teacher"):
        validate_config(config(distill_only=True))
    with pytest.raises(UsageError, match="--variant decoder-only does not"):
        validate_config(config(distill_teacher=str(tiny_init), variant="decoder-only"))
    with pytest.raises(UsageError, match="--variant frozen-encoder trains no encoder: .* needs --distill-outputs"):
        validate_config(config(distill_teacher=str(tiny_init), variant="frozen-encoder"))
    with pytest.raises(UsageError, match="--distill-teacher .* embeds 256 px images into 256x64x64; the model, 64 px"):
        validate_config(config(distill_teacher=str(lite_init)))
    with pytest.raises(UsageError, match="--distill-weight must be"):
        validate_config(config(distill_teacher=str(tiny_init), distill_weight=0.0))
    validate_config(config(distill_teacher=str(tiny_init), variant="encoder-only", distill_only=True))
    with pytest.raises(UsageError, match="--distill-outputs needs --distill-teacher"):
        validate_config(config(distill_outputs=1.0))
    with pytest.raises(UsageError, match="--distill-outputs needs --distill-teacher"):
        validate_config(
            config(distill_teacher=str(tiny_init), variant="encoder-only", distill_only=True, distill_outputs=1.0)
        )
    with pytest.raises(UsageError, match="--distill-outputs must be"):
        validate_config(config(distill_teacher=str(tiny_init), distill_outputs=-1.0))
    validate_config(config(distill_teacher=str(tiny_init), distill_outputs=0.5))
    assert load_teacher(None, "cpu") is None
    teacher = load_teacher(str(tiny_init), "cpu")
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
    # the shipped models by their names, as student and teacher: no Hub involved
    shipped = TrainingConfig(
        init="ultrasam-nano-us", distill_teacher="ultrasam-lite-us", data=[str(tiny_shards)], output_dir=str(tmp_path)
    )
    validate_config(shipped)


def test_pretrain_distill_only_moves_the_student_towards_the_teacher(tiny_shards, tiny_init, tmp_path):
    student_dir, out = tmp_path / "student", tmp_path / "run"
    torch.manual_seed(3)
    student = UltraSamModel(seeded_model("tiny").config)
    student.save_pretrained(student_dir)
    teacher = UltraSamModel.from_pretrained(tiny_init).eval()
    batch = _batch(student, tiny_shards)

    def error(model):
        with torch.no_grad():
            target = teacher.vision_encoder(batch["pixel_values"]).last_hidden_state
            return float(torch.mean((model.vision_encoder(batch["pixel_values"]).last_hidden_state - target) ** 2))

    result = run_python(
        [
            "--init", student_dir, "--data", tiny_shards, "--variant", "encoder-only", "--distill-teacher", tiny_init,
            "--distill-only", "--max-steps", 6, "--batch-size", 4, "--learning-rate", 1e-2, "--warmup-steps", 0,
            "--flip-probability", 0, "--output-dir", out, "--no-progress", "--log-with", "none",
        ]
    )  # fmt: skip
    trained = UltraSamModel.from_pretrained(out).eval()
    assert error(trained) < 0.9 * error(student.eval()), result.stdout[-2000:]
    for name, tensor in trained.mask_decoder.state_dict().items():
        assert torch.equal(tensor, student.mask_decoder.state_dict()[name]), name
    record = json.loads((out / "training_config.json").read_text())
    assert record["distill_only"] is True and record["distill_teacher"] == str(tiny_init)


def test_pretrain_distill_outputs_logs_its_term_and_records_it(tiny_shards, tiny_init, tmp_path):
    from ultrasam_hf.training.trackers import read_csv_metrics

    out = tmp_path / "run"
    run_python(
        [
            "--init", tiny_init, "--data", tiny_shards, "--variant", "full", "--distill-teacher", tiny_init,
            "--distill-outputs", 2, "--clicks", 1, "--max-steps", 2, "--batch-size", 2, "--log-every", 1,
            "--output-dir", out, "--no-progress", "--log-with", "csv",
        ]
    )  # fmt: skip
    metrics = read_csv_metrics(out / "logs" / "ultrasam" / "metrics.csv")
    outputs = [m["value"] for m in metrics if m["name"] == "train/distill_outputs"]
    assert len(outputs) == 2 and all(value > 0 for value in outputs)
    assert json.loads((out / "training_config.json").read_text())["distill_outputs"] == 2.0


def test_pretrain_full_reads_the_teachers_embeddings_from_its_cache(tiny_shards, tiny_init, tmp_path):
    """A full stage of seed 5 caches the teacher's embeddings of the --rows-seed 0 draw (scripts/distill_encoder.py's
    draw at its default seed) and trains with the embedding term."""
    from ultrasam_hf.training.data import row_key, rows_per_dataset
    from ultrasam_hf.training.embedding_cache import EmbeddingCache
    from ultrasam_hf.training.trackers import read_csv_metrics

    torch.manual_seed(3)
    student_dir, out, cache_dir = tmp_path / "student", tmp_path / "run", tmp_path / "teacher_cache"
    UltraSamModel(seeded_model("tiny").config).save_pretrained(student_dir)
    run_python(
        [
            "--init", student_dir, "--data", tiny_shards, "--variant", "full", "--distill-teacher", tiny_init,
            "--distill-outputs", 1, "--teacher-cache-dir", cache_dir, "--no-cache-flips", "--rows-per-dataset", 2,
            "--rows-seed", 0, "--seed", 5, "--max-steps", 2, "--batch-size", 2, "--log-every", 1,
            "--output-dir", out, "--no-progress", "--log-with", "csv",
        ]
    )  # fmt: skip
    drawn = rows_per_dataset(load_split(tiny_shards, "train"), 2, seed=0)
    cache = EmbeddingCache(cache_dir)
    assert sorted(cache.index) == sorted(row_key(row, False) for row in drawn)  # one orientation: flips are off
    metrics = read_csv_metrics(out / "logs" / "ultrasam" / "metrics.csv")
    assert [m["value"] > 0 for m in metrics if m["name"] == "train/distill"] == [True, True]
    record = json.loads((out / "training_config.json").read_text())
    assert record["rows_seed"] == 0 and record["seed"] == 5
