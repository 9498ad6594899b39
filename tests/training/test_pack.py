"""Training packs: what the device sees equals what the processor and the example builder produce."""

import numpy as np
import pytest
import torch
from script_runs import run_python

from ultrasam_hf import UltraSamConfig
from ultrasam_hf.models.transforms import low_res_size
from ultrasam_hf.training.data import ExampleBuilder, load_split
from ultrasam_hf.training.pack import ResidentBatches, build_pack, read_pack_summary
from ultrasam_hf.training.trainer import make_image_processor


@pytest.fixture(scope="module", params=["tiny-lite", "tiny"])
def packed(request, tiny_shards, tmp_path_factory):
    config = UltraSamConfig.from_preset(request.param)
    processor = make_image_processor(config)
    path = tmp_path_factory.mktemp("pack") / f"{request.param}.npz"
    build_pack(tiny_shards, path, processor, low_res_size(config), progress=False)
    return config, processor, path


def test_pack_pixels_and_masks_equal_the_builders(packed, tiny_shards):
    config, processor, path = packed
    size, low = config.prompt_encoder_config.image_size, low_res_size(config)
    summary = read_pack_summary(path)
    assert summary["images"] == {"alpha": 12, "beta": 6} and summary["input_size"] == size
    pack = ResidentBatches(path, processor, "cpu", batch_size=4, flip_probability=0.0, max_instances=0)
    rows = load_split(tiny_shards, "train")
    builder = ExampleBuilder(processor, size, low, flip_probability=0.0, max_instances=0)
    for index in (0, 5, 17):
        row = rows[index]
        expected = builder(row, 0, 0)
        position = pack.keys.index(f"{row['dataset']}/{row['image_id']}")
        batch = pack.batch([position], [0])
        np.testing.assert_allclose(batch["pixel_values"][0].numpy(), expected["pixel_values"], atol=1e-5)
        np.testing.assert_array_equal(batch["masks"].numpy(), expected["masks"])
        assert batch["valid_sizes"][0].tolist() == expected["valid_size"].tolist()


def test_flips_mirror_inside_the_valid_image_and_instances_are_capped(packed):
    config, processor, path = packed
    plain = ResidentBatches(path, processor, "cpu", batch_size=4, flip_probability=0.0, max_instances=0)
    flipped = ResidentBatches(path, processor, "cpu", batch_size=4, flip_probability=1.0, max_instances=0)
    a, b = plain.batch([2], [0]), flipped.batch([2], [0])
    height, width = a["valid_sizes"][0].tolist()
    torch.testing.assert_close(
        b["pixel_values"][0, :, :height, :width], a["pixel_values"][0, :, :height, :width].flip(-1)
    )
    assert (b["pixel_values"][0, :, :, width:] == 0).all()
    low_width = plain.low_valid_sizes[2, 1]
    assert torch.equal(b["masks"][..., :low_width], a["masks"][..., :low_width].flip(-1))
    capped = ResidentBatches(path, processor, "cpu", batch_size=4, max_instances=1)
    batch = capped.batch(list(range(18)), list(range(18)))
    assert torch.equal(batch["image_index"], torch.arange(18))


def test_epochs_follow_the_mixing_sampler_and_resume_by_skipping(packed):
    config, processor, path = packed
    pack = ResidentBatches(path, processor, "cpu", batch_size=4, seed=1)
    pack.set_epoch(3)
    keys = [batch["keys"] for batch in pack]
    assert len(keys) == len(pack) == 5 and sorted(sum(keys, [])) == sorted(pack.keys)
    assert [batch["keys"] for batch in pack.skip(2)] == keys[2:]
    ranks = [ResidentBatches(path, processor, "cpu", batch_size=4, seed=1, rank=r, world_size=2) for r in (0, 1)]
    for rank in ranks:
        rank.set_epoch(3)
    assert [b["keys"] for b in ranks[0]] + [b["keys"] for b in ranks[1]] == keys[0::2] + keys[1::2]
    with pytest.raises(ValueError, match="not in the pack"):
        ResidentBatches(path, processor, "cpu", batch_size=4, datasets=["gamma"])


@pytest.mark.slow  # ~38 s; pack building and reading stay in the default suite (the other tests of this file)
def test_pretrain_on_a_pack(tiny_shards, tmp_path):
    run_python(
        [
            "scripts/make_training_pack.py",
            "--data",
            tiny_shards,
            "--preset",
            "tiny-lite",
            "--codec",
            "webp",
            "--out",
            tmp_path / "p.npz",
        ],
        script=True,
    )
    output = tmp_path / "run"
    run_python(
        [
            "--preset",
            "tiny-lite",
            "--pack",
            tmp_path / "p.npz",
            "--batch-size",
            "4",
            "--max-steps",
            "3",
            "--warmup-steps",
            "1",
            "--clicks",
            "1",
            "--iou-all-masks",
            "--no-progress",
            "--log-with",
            "none",
            "--output-dir",
            output,
        ]
    )
    assert (output / "model.safetensors").is_file()
    with pytest.raises(AssertionError, match="was made for input"):
        run_python(
            [
                "--preset",
                "tiny",
                "--pack",
                tmp_path / "p.npz",
                "--max-steps",
                "1",
                "--no-progress",
                "--log-with",
                "none",
                "--output-dir",
                tmp_path / "wrong",
            ]
        )
