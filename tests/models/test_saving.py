"""What `save_pretrained` keeps of a loaded checkpoint: the floating dtype its weights were stored in (fp16 stays fp16
unless the model was cast since loading) and its model card; what it records for the Hub (`custom_pipelines`)."""

import json

import torch
from safetensors import safe_open

from ultrasam_hf import UltraSamConfig, UltraSamModel


def stored_dtypes(folder) -> set:
    """The floating dtypes of a folder's tensors (integer buffers keep theirs)."""
    with safe_open(str(folder / "model.safetensors"), framework="pt") as handle:
        dtypes = {handle.get_slice(key).get_dtype() for key in handle.keys()}  # noqa: SIM118 (a safetensors handle)
    return dtypes - {"I64", "I32", "BOOL"}


def fp16_folder(tmp_path):
    """A folder as `ship_checkpoint.py` writes it: fp16 tensors, config dtype float32, a model card."""
    torch.manual_seed(0)
    model = UltraSamModel(UltraSamConfig.from_preset("tiny-lite"))
    model.save_pretrained(
        tmp_path / "fp16",
        state_dict={k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()},
    )
    (tmp_path / "fp16" / "README.md").write_text("---\nlicense: apache-2.0\n---\n# the card\n")
    return tmp_path / "fp16"


def test_fp16_checkpoint_is_resaved_in_fp16_with_its_card(tmp_path):
    folder = fp16_folder(tmp_path)
    assert stored_dtypes(folder) == {"F16"}
    loaded = UltraSamModel.from_pretrained(folder)
    assert loaded.dtype == torch.float32  # the config's dtype: CPU inference in fp32
    loaded.save_pretrained(tmp_path / "again")
    assert stored_dtypes(tmp_path / "again") == {"F16"}
    assert (tmp_path / "again" / "README.md").read_text() == (folder / "README.md").read_text()
    assert (tmp_path / "again" / "model.safetensors").stat().st_size <= 1.01 * (
        folder / "model.safetensors"
    ).stat().st_size
    reloaded = UltraSamModel.from_pretrained(tmp_path / "again")
    for name, tensor in reloaded.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[name]), name  # fp16 -> fp32 -> fp16 loses nothing


def test_a_cast_after_loading_is_saved_as_cast(tmp_path):
    loaded = UltraSamModel.from_pretrained(fp16_folder(tmp_path)).to(torch.bfloat16)
    loaded.save_pretrained(tmp_path / "bf16")
    assert stored_dtypes(tmp_path / "bf16") == {"BF16"}


def test_fp32_checkpoint_stays_fp32_and_a_card_is_not_overwritten(tmp_path):
    torch.manual_seed(0)
    UltraSamModel(UltraSamConfig.from_preset("tiny-lite")).save_pretrained(tmp_path / "fp32")
    (tmp_path / "fp32" / "README.md").write_text("# old card\n")
    loaded = UltraSamModel.from_pretrained(tmp_path / "fp32")
    (tmp_path / "target").mkdir()
    (tmp_path / "target" / "README.md").write_text("# the target's own card\n")
    loaded.save_pretrained(tmp_path / "target")
    assert stored_dtypes(tmp_path / "target") == {"F32"}
    assert (tmp_path / "target" / "README.md").read_text() == "# the target's own card\n"


def test_saved_config_names_the_pipeline_but_the_live_config_does_not(tmp_path):
    model = UltraSamModel(UltraSamConfig.from_preset("tiny-lite"))
    model.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["custom_pipelines"]["mask-generation"]["impl"] == "pipeline_ultrasam.UltraSamMaskGenerationPipeline"
    assert (tmp_path / "pipeline_ultrasam.py").is_file()  # copied with the model files
    assert not hasattr(model.config, "custom_pipelines")  # pipeline(model=<object>) keeps working without remote code
