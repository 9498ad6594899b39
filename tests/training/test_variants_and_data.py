import numpy as np
import pytest
import torch
from tiny_models import seeded_model

from ultrasam_hf.models.transforms import low_res_size
from ultrasam_hf.training.data import (
    ExampleBuilder,
    MixingSampler,
    collate,
    load_split,
    mixing_weights,
    scale_mixing,
)
from ultrasam_hf.training.module import UltraSamTrainingModule
from ultrasam_hf.training.trainer import lr_lambda, make_image_processor
from ultrasam_hf.training.variants import apply_variant, trains_encoder


def _model(preset="tiny"):
    return seeded_model(preset)


def _batch(model, shards):
    rows = load_split(shards, "train")
    builder = ExampleBuilder(
        make_image_processor(model.config), model.config.prompt_encoder_config.image_size, low_res_size(model.config)
    )
    return collate([{**builder(rows[i], 0, i), "position": i} for i in range(3)])


@pytest.mark.parametrize(
    "variant,encoder_trains",
    [("full", True), ("lora", True), ("adapter", True), ("decoder-only", False), ("frozen-encoder", False)],
)
@pytest.mark.parametrize("preset", ["tiny", "tiny-lite"])
def test_variants_train_the_right_parameters(tiny_shards, variant, encoder_trains, preset):
    model = apply_variant(_model(preset), variant)
    module = UltraSamTrainingModule(model, clicks=1, train_encoder=encoder_trains)
    module(_batch(model, tiny_shards))["loss"].backward()
    named = dict(module.named_parameters())
    encoder = {n: p for n, p in named.items() if "vision_encoder" in n and p.requires_grad}
    decoder = {n: p for n, p in named.items() if "mask_decoder" in n and p.requires_grad}
    # (but the key biases that the softmax cancels: the split decoder leaves out their zero gradient)
    cancelled = {n for n in decoder if n.endswith("token_to_image.k_proj.bias") and ".layers.0." not in n}
    assert decoder and all(p.grad is not None for n, p in decoder.items() if n not in cancelled)
    assert bool(encoder) == encoder_trains
    # LoRA's A gets no gradient on the first step (B starts at zero); everything else does
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for n, p in encoder.items() if "lora_A" not in n)
    if variant in ("lora", "adapter"):
        assert all(("lora_" in n or "ia3_" in n) for n in encoder)
    assert not any(p.requires_grad for n, p in named.items() if "positional_embedding" in n)


def test_mixing_sampler_is_seeded_and_weighted():
    rows = ["a"] * 90 + ["b"] * 10
    sampler = MixingSampler(rows, seed=3)
    first = list(sampler)
    assert sorted(r for _, _, r in first) == list(range(100))  # T=1: a permutation
    sampler.set_epoch(1)
    assert [r for *_, r in sampler] != [r for *_, r in first]
    sampler.set_epoch(0)
    assert list(sampler) == first
    uniform = MixingSampler(rows, seed=3, temperature=1e6)
    drawn = [rows[r] for _, _, r in uniform]
    assert 0.35 < drawn.count("b") / len(drawn) < 0.65
    weights = mixing_weights({"a": 90, "b": 10}, temperature=2.0)
    assert weights["a"] == pytest.approx(3 / 4)


def test_dataset_factors_scale_the_mixing_probabilities():
    """`--dataset-weights b=3`: dataset b is drawn three times as often as its temperature weight says."""
    rows = ["a"] * 50 + ["b"] * 50
    sampler = MixingSampler(rows, seed=0, factors={"b": 3.0}, num_samples=4000)
    assert sampler.weights == pytest.approx({"a": 0.25, "b": 0.75})
    drawn = [rows[r] for _, _, r in sampler]  # drawn with replacement, no longer a permutation at T=1
    assert 0.72 < drawn.count("b") / len(drawn) < 0.78
    assert MixingSampler(rows, seed=0, factors={}).weights == MixingSampler(rows, seed=0).weights
    assert scale_mixing({"a": 0.5, "b": 0.5}, None) == {"a": 0.5, "b": 0.5}
    with pytest.raises(ValueError, match=r"--dataset-weights names \['c'\], which are not among the training data"):
        MixingSampler(rows, factors={"c": 2.0})


def test_example_builder_flip_and_shapes(tiny_shards):
    model = _model()
    rows = load_split(tiny_shards, "train")
    processor = make_image_processor(model.config)
    builder = ExampleBuilder(processor, 64, 32, flip_probability=1.0)
    plain = ExampleBuilder(processor, 64, 32, flip_probability=0.0)
    flipped, original = builder(rows[0], 0, 0), plain(rows[0], 0, 0)
    assert flipped["key"].endswith("|flip") and not original["key"].endswith("|flip")
    assert flipped["pixel_values"].shape == (3, 64, 64) and flipped["masks"].shape[1:] == (32, 32)
    assert flipped["valid_size"].tolist() == [48, 64]  # image 48 x 64 -> input 48 x 64
    # mirrored pixels inside the resized image
    np.testing.assert_allclose(flipped["pixel_values"][:, :48, :64], original["pixel_values"][:, :48, ::-1], atol=1e-5)
    np.testing.assert_array_equal(flipped["masks"][:, :24, :32], original["masks"][:, :24, ::-1])
    again = builder(rows[0], 0, 0)
    np.testing.assert_array_equal(again["masks"], flipped["masks"])  # a pure function of (seed, epoch, position)


def test_collate_maps_masks_to_their_images(tiny_shards):
    model = _model()
    batch = _batch(model, tiny_shards)
    counts = torch.bincount(batch["image_index"], minlength=3)
    assert counts.sum() == batch["masks"].shape[0] == batch["valid_sizes"].shape[0]
    assert batch["pixel_values"].shape[0] == 3 and (counts > 0).all()


def test_learning_rate_schedule():
    factor = lr_lambda(500, 0.001, [20000, 28888], 0.1)
    assert factor(0) == pytest.approx(0.001)
    assert factor(250) == pytest.approx(0.001 + 0.999 * 0.5)
    assert factor(500) == 1.0 and factor(19999) == 1.0
    assert factor(20000) == pytest.approx(0.1) and factor(29000) == pytest.approx(0.01)


@pytest.mark.parametrize("multimask_boxes", [True, False])
def test_multimask_first_round_for_points_and_optionally_boxes(tiny_shards, multimask_boxes):
    model = _model()
    module = UltraSamTrainingModule(model, clicks=1, multimask=True, multimask_boxes=multimask_boxes, seed=3)
    calls = []
    decode = module._decode

    def recording_decode(embeddings, image_index, kind, prompts, clicks, click_labels, mask_prompt, multimask):
        calls.append((kind, clicks is None, multimask))
        return decode(embeddings, image_index, kind, prompts, clicks, click_labels, mask_prompt, multimask)

    module._decode = recording_decode
    batch = _batch(model, tiny_shards)
    while {kind for kind, _, _ in calls} != {0, 1}:  # prompt kinds are drawn on the device: until both occur
        module(batch)["loss"].backward()
    first_round = {kind: multimask for kind, first, multimask in calls if first}
    assert first_round == {0: multimask_boxes, 1: True}  # BOX = 0, POINT = 1
    assert not any(multimask for _, first, multimask in calls if not first)


@pytest.mark.parametrize("single_mask_clicks", [False, True])
def test_single_mask_clicks_trains_token_zero_on_first_round_clicks(tiny_shards, single_mask_clicks):
    """Without corrective clicks, a point-only batch trains the single-mask output (its hypernetwork) only with
    `single_mask_clicks` (token 0's embedding gets gradients either way, through the transformer's attention). The
    lite layout: with a refinement pass (vit-b), the first pass is single-mask anyway."""
    model = _model("tiny-lite")
    module = UltraSamTrainingModule(
        model, clicks=0, multimask=True, single_mask_clicks=single_mask_clicks, point_probability=1.0, seed=3
    )
    module(_batch(model, tiny_shards))["loss"].backward()

    def gradient(mlp):
        return sum(float(p.grad.abs().sum()) for p in mlp.parameters() if p.grad is not None)

    hypernetworks = model.mask_decoder.output_hypernetworks_mlps
    assert (gradient(hypernetworks[0]) > 0) == single_mask_clicks
    assert all(gradient(mlp) > 0 for mlp in hypernetworks[1:])  # the multimask outputs train either way


def test_prompt_sampling_is_seeded_and_restorable(tiny_shards):
    model = _model()
    batch = _batch(model, tiny_shards)
    module = UltraSamTrainingModule(model, clicks=1, seed=7)
    state = module.generator_state()
    first = float(module(batch)["loss"])
    module.set_generator_state(state)
    assert float(module(batch)["loss"]) == first
    assert float(UltraSamTrainingModule(model, clicks=1, seed=7)(batch)["loss"]) == first


@pytest.mark.parametrize("preset", ["tiny", "tiny-lite"])
def test_encoder_only_trains_the_encoder_under_a_frozen_decoder(tiny_shards, preset):
    """The distilled encoder's end-to-end stage: mask losses reach the encoder through the unchanged decoder."""
    model = apply_variant(_model(preset), "encoder-only")
    module = UltraSamTrainingModule(model, clicks=1, train_encoder=trains_encoder("encoder-only"))
    module(_batch(model, tiny_shards))["loss"].backward()
    trainable = {n: p for n, p in module.named_parameters() if p.requires_grad}
    assert trainable and all(".vision_encoder." in n for n in trainable)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in trainable.values())
    frozen = [p for n, p in module.named_parameters() if "mask_decoder" in n or "prompt_encoder" in n]
    assert frozen and all(p.grad is None for p in frozen)
