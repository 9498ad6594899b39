"""`--variant iou-head` and `--distill-ranking`: which candidate mask a click returns is recalibrated (to the
ground truth's IoUs, or toward the teacher's scores and order) while every mask stays as it was."""

import pytest
import torch
from script_runs import run_python
from tiny_models import seeded_model

from ultrasam_hf import UltraSamModel
from ultrasam_hf.errors import UsageError
from ultrasam_hf.training.config import TrainingConfig, validate_config
from ultrasam_hf.training.distillation import mask_output_distillation
from ultrasam_hf.training.variants import apply_variant, count_parameters


def _outputs(scores):
    scores = torch.tensor(scores, requires_grad=True)
    masks = torch.zeros(1, scores.shape[1], 4, 4)
    return masks, scores


def test_only_the_iou_heads_mlp_trains():
    model = apply_variant(seeded_model("tiny"), "iou-head")
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    assert trainable and all(name.startswith("mask_decoder.iou_prediction_head.") for name in trainable)
    head = sum(p.numel() for p in model.mask_decoder.iou_prediction_head.parameters())
    assert count_parameters(model)[0] == head
    assert not model.mask_decoder.iou_token.weight.requires_grad  # it feeds the transformer, hence the masks


def test_ranking_term_orders_the_candidates_as_the_teacher():
    teacher_masks, teacher_scores = torch.zeros(1, 3, 4, 4), torch.tensor([[0.83, 0.56, 0.77]])
    masks, swapped = _outputs([[0.82, 0.68, 0.83]])  # the third candidate outranks the teacher's first
    plain = mask_output_distillation(masks, swapped, teacher_masks, teacher_scores)
    ranked = mask_output_distillation(masks, swapped, teacher_masks, teacher_scores, ranking_weight=1.0)
    assert ranked.item() > plain.item() + 0.1  # the MSE alone is ~0.005
    ranked.sum().backward()
    assert swapped.grad[0, 0] < 0 < swapped.grad[0, 2]  # descent raises the teacher's pick, lowers the impostor
    same = [
        mask_output_distillation(masks, teacher_scores, teacher_masks, teacher_scores, ranking_weight=weight)
        for weight in (0.0, 1.0)
    ]
    torch.testing.assert_close(same[1], same[0])  # the teacher's own order costs nothing
    # one candidate (a box, a refinement pass): nothing to order
    single, score = _outputs([[0.5]])
    args = (single, score, torch.zeros(1, 1, 4, 4), torch.tensor([[0.9]]))
    torch.testing.assert_close(mask_output_distillation(*args, ranking_weight=5.0), mask_output_distillation(*args))


def test_settings_are_checked(tiny_shards, tiny_init, tmp_path):
    def config(**overrides):
        return TrainingConfig(
            init=str(tiny_init), data=[str(tiny_shards)], output_dir=str(tmp_path / "r"), **overrides
        )

    teacher = {"distill_teacher": str(tiny_init), "variant": "iou-head"}
    validate_config(config(**teacher, distill_outputs=1.0, distill_ranking=1.0, teacher_cache_dir=str(tmp_path)))
    with pytest.raises(UsageError, match="--variant iou-head trains no encoder: .* needs --distill-outputs"):
        validate_config(config(**teacher))
    with pytest.raises(UsageError, match="--distill-ranking weighs a part of the --distill-outputs term"):
        validate_config(config(distill_teacher=str(tiny_init), distill_ranking=1.0))
    with pytest.raises(UsageError, match="--distill-ranking must be a finite number >= 0"):
        validate_config(config(**teacher, distill_outputs=1.0, distill_ranking=-1.0))


@pytest.mark.parametrize("with_teacher", [True, False], ids=["teacher", "ground-truth"])
def test_pretrain_iou_head_changes_scores_not_masks(tiny_shards, tiny_init, tmp_path, with_teacher):
    teacher_dir, out = tmp_path / "teacher", tmp_path / "run"
    teacher_args = []
    if with_teacher:
        torch.manual_seed(2)
        UltraSamModel(seeded_model("tiny").config).save_pretrained(teacher_dir)
        teacher_args = ["--distill-teacher", teacher_dir, "--distill-outputs", 1, "--distill-ranking", 1]
    run_python(
        [
            "--init", tiny_init, "--data", tiny_shards, "--variant", "iou-head", *teacher_args, "--iou-all-masks",
            "--rows-per-dataset", 4, "--no-cache-flips", "--max-steps", 3, "--batch-size", 2, "--learning-rate",
            1e-2, "--point-probability", 1, "--output-dir", out, "--no-progress",
        ]
    )  # fmt: skip
    trained, initial = UltraSamModel.from_pretrained(out).eval(), UltraSamModel.from_pretrained(tiny_init).eval()
    changed = {
        name for name, tensor in trained.state_dict().items() if not torch.equal(tensor, initial.state_dict()[name])
    }
    assert changed and all(name.startswith("mask_decoder.iou_prediction_head.") for name in changed)
    size = trained.config.vision_config.image_size
    torch.manual_seed(0)
    pixels = torch.randn(1, 3, size, size)
    points, labels = torch.tensor([[[[size / 2, size / 3]]]]), torch.ones(1, 1, 1, dtype=torch.long)
    with torch.no_grad():
        after = trained(pixel_values=pixels, input_points=points, input_labels=labels)
        before = initial(pixel_values=pixels, input_points=points, input_labels=labels)
    torch.testing.assert_close(after.pred_masks, before.pred_masks)
    assert not torch.allclose(after.iou_scores, before.iou_scores)
