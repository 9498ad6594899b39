"""The `late-encoder` variant: TinyViT split at a stage, the early part cached once, the late part + neck + decoder
trained on top of the cache, exported as a plain `UltraSamModel`."""

import copy

import pytest
import torch
from tiny_models import seeded_model

from ultrasam_hf import UltraSamConfig, UltraSamModel
from ultrasam_hf.models.transforms import low_res_size
from ultrasam_hf.training.data import ExampleBuilder, collate, image_array, load_split, row_key
from ultrasam_hf.training.embedding_cache import EmbeddingCache, encoder_fingerprint
from ultrasam_hf.training.module import UltraSamTrainingModule
from ultrasam_hf.training.trainer import make_image_processor
from ultrasam_hf.training.variants import apply_variant

LATE = ("vision_encoder.layers.2.", "vision_encoder.layers.3.", "vision_encoder.neck.")
EARLY = ("vision_encoder.patch_embed.", "vision_encoder.layers.0.", "vision_encoder.layers.1.")
DECODER = ("prompt_encoder.", "mask_decoder.")


def _model(preset="tiny-lite"):
    return seeded_model(preset)


@pytest.mark.parametrize("preset,stages", [("tiny-lite", [0, 1, 2, 3, 4]), ("lite", [2])])
def test_up_to_stage_then_from_stage_is_forward(preset, stages):
    model = _model(preset).eval()
    encoder = model.vision_encoder
    size = model.config.vision_config.image_size
    pixels = torch.rand(1 if preset == "lite" else 2, 3, size, size)
    with torch.no_grad():
        expected = encoder(pixels).last_hidden_state
        for stage in stages:
            features = encoder.up_to_stage(stage, pixels)
            assert features.ndim == 4 and features.shape[0] == pixels.shape[0]
            assert torch.equal(encoder.from_stage(stage, features).last_hidden_state, expected), stage
    assert encoder.modules_up_to_stage(2) == ["patch_embed", "layers.0", "layers.1"]
    with pytest.raises(ValueError, match=r"in \[0, 4\]"):
        encoder.up_to_stage(5, pixels)


def _batch(model, shards, count=3):
    rows = load_split(shards, "train")
    builder = ExampleBuilder(
        make_image_processor(model.config), model.config.prompt_encoder_config.image_size, low_res_size(model.config)
    )
    return collate([{**builder(rows[i], 0, i), "position": i} for i in range(count)])


def test_late_encoder_trains_only_the_late_stages_neck_and_decoder(tiny_shards):
    model = apply_variant(_model(), "late-encoder", frozen_stages=2)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith(LATE + DECODER) for n in trainable)
    assert any(n.startswith(LATE) for n in trainable) and any(n.startswith("mask_decoder.") for n in trainable)
    assert not any(n.startswith(EARLY) for n in trainable)

    batch = _batch(model, tiny_shards)
    module = UltraSamTrainingModule(model, clicks=1, train_encoder=True, frozen_stages=2, seed=1)
    with torch.no_grad():  # as the cache is built: frozen part in eval mode (batch-norm running statistics)
        features = model.eval().vision_encoder.up_to_stage(2, batch.pop("pixel_values"))
    batch["encoder_features"] = features
    # in eval mode the cached path is the whole encoder: the same embeddings as from the pixels
    module.eval()
    pixels = {"pixel_values": _batch(model, tiny_shards)["pixel_values"]}
    with torch.no_grad():
        assert torch.equal(module._embeddings(batch), module._embeddings(pixels))

    module.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.AdamW([p for p in module.parameters() if p.requires_grad], lr=1e-2, weight_decay=0.1)
    module(batch)["loss"].backward()
    optimizer.step()
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert not any(k.startswith(EARLY) for k in changed)
    assert all(k.startswith(LATE + DECODER) for k in changed)
    for prefix in (*LATE, "mask_decoder."):
        assert any(k.startswith(prefix) for k in changed), prefix


@pytest.mark.parametrize("preset", ["tiny", "nano"])
def test_late_encoder_refuses_non_tinyvit_encoders(preset):
    with pytest.raises(ValueError, match="TinyViT"):
        apply_variant(UltraSamModel(UltraSamConfig.from_preset(preset)), "late-encoder")


def test_late_encoder_settings_are_checked_before_the_run(tiny_shards, tmp_path):
    from ultrasam_hf.errors import UsageError
    from ultrasam_hf.training.config import TrainingConfig, validate_config

    def config(**overrides):
        return TrainingConfig(
            variant="late-encoder", data=[str(tiny_shards)], output_dir=str(tmp_path / "r"), **overrides
        )

    with pytest.raises(UsageError, match="TinyViT .*'vit'"):
        validate_config(config(preset="tiny"))
    with pytest.raises(UsageError, match=r"--frozen-stages must be in \[0, 4\]"):
        validate_config(config(preset="tiny-lite", frozen_stages=5))
    validate_config(config(preset="tiny-lite", frozen_stages=4))
    with pytest.raises(ValueError, match="stage"):
        apply_variant(_model(), "late-encoder", frozen_stages=-1)


def test_the_cache_fingerprint_covers_the_frozen_part_and_the_split():
    model = _model()
    processor = make_image_processor(model.config)

    def fingerprint(stages=2):
        return encoder_fingerprint(model, processor, "float16", True, stages)

    reference = fingerprint()
    assert len({reference, fingerprint(1), fingerprint(3), fingerprint(None)}) == 4
    with torch.no_grad():
        model.vision_encoder.layers[2].blocks[0].attn.qkv.weight.add_(1.0)  # late: trained on top of the cache
        model.vision_encoder.neck.conv1.weight.add_(1.0)
        assert fingerprint() == reference
        model.vision_encoder.layers[1].downsample.conv1.batch_norm.running_mean.add_(1.0)  # early: a new cache
    assert fingerprint() != reference


def test_the_fingerprint_ignores_what_names_code_not_pixels():
    model = seeded_model("tiny-lite")
    processor = make_image_processor(model.config)
    saved = copy.deepcopy(processor)

    def fingerprint(image_processor):
        return encoder_fingerprint(model, image_processor, "float16", False)

    saved.auto_map = {"AutoImageProcessor": "image_processing_ultrasam.UltraSamImageProcessor"}
    assert fingerprint(saved) == fingerprint(processor)
    saved.image_mean = [0.5, 0.5, 0.5]
    assert fingerprint(saved) != fingerprint(processor)


@pytest.mark.slow  # ~30 s; the late-encoder split and training step stay in the default suite
def test_pretrain_late_encoder_caches_once_and_exports_a_plain_model(tiny_shards, tiny_lite_init, tmp_path):
    from script_runs import run_python

    args = ["--init", tiny_lite_init, "--data", tiny_shards, "--variant", "late-encoder", "--batch-size", "3"]
    args += ["--warmup-steps", "0", "--learning-rate", "1e-3", "--no-progress", "--log-with", "none"]
    out = tmp_path / "late"
    result = run_python([*args, "--output-dir", out, "--max-steps", "3"])
    assert "variant late-encoder" in result.stdout
    cache_dir = out / "stage2_cache"
    cache = EmbeddingCache(cache_dir)
    rows = load_split(tiny_shards, "train")
    assert len(cache) == 2 * len(rows) and cache.flips
    assert cache.frozen_stages == 2 and cache.field == "encoder_features"

    init = UltraSamModel.from_pretrained(tiny_lite_init).eval()
    row = rows[0]
    pixels = make_image_processor(init.config)(images=image_array(row["image"]), return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        expected = init.vision_encoder.up_to_stage(2, pixels)[0]
    torch.testing.assert_close(cache.get(row_key(row)), expected, atol=2e-3, rtol=2e-3)  # float16 cache

    trained = UltraSamModel.from_pretrained(out).eval()
    assert type(trained.vision_encoder).__name__ == "UltraSamTinyVitEncoder"
    initial, final = init.state_dict(), trained.state_dict()
    assert set(initial) == set(final)
    changed = {k for k in initial if not torch.equal(initial[k], final[k])}
    assert not any(k.startswith(EARLY) for k in changed)  # the frozen part is exported as it was loaded
    assert all(k.startswith(LATE + DECODER) for k in changed), sorted(changed)
    for prefix in (*LATE, "mask_decoder."):
        assert any(k.startswith(prefix) for k in changed), prefix

    # a second run reuses the complete cache: nothing rewritten
    files = sorted(cache_dir.iterdir())
    stamps = {p.name: p.stat().st_mtime_ns for p in files}
    run_python([*args, "--output-dir", out, "--max-steps", "1"])
    assert {p.name: p.stat().st_mtime_ns for p in sorted(cache_dir.iterdir())} == stamps
