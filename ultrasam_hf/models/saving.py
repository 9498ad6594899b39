# Copyright 2025 The ultrasam-hf authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.
"""What `save_pretrained` / `push_to_hub` of an UltraSam model write besides transformers' defaults:

- every Auto class of `_extra_auto_classes` in the folder's `auto_map`, and for mask-generation models the
  `custom_pipelines` entry of `pipeline_ultrasam.py` (copied with the model files), so that the folder is a complete
  remote-code repository;
- the weights in the floating dtype they were loaded from (an fp16 checkpoint loaded as float32 is saved as fp16
  again, unless the model was cast since), and the model card (`README.md`) of the folder it was loaded from.
"""

import os
import tempfile
from pathlib import Path

import torch
from transformers.utils import cached_file
from transformers.utils import hub as transformers_hub

MODEL_CARD_NAME = "README.md"
_UNSET = object()
_SAFETENSORS_FLOAT_DTYPES = {"F16": torch.float16, "BF16": torch.bfloat16, "F32": torch.float32, "F64": torch.float64}


def stored_float_dtype(checkpoint_files) -> torch.dtype | None:
    """Dtype of the first floating tensor of the first `.safetensors` checkpoint file (`None` for other formats)."""
    from safetensors import safe_open

    files = [str(f) for f in checkpoint_files or () if str(f).endswith(".safetensors")]
    if not files:
        return None
    with safe_open(files[0], framework="pt") as handle:
        for key in handle.keys():  # noqa: SIM118 (a safetensors handle, not a dict)
            dtype = _SAFETENSORS_FLOAT_DTYPES.get(handle.get_slice(key).get_dtype())
            if dtype is not None:
                return dtype
    return None


def find_model_card(pretrained_model_name_or_path, **hub_kwargs) -> str | None:
    """Text of the `README.md` next to the weights (a local folder, or a Hub repo's file when it can be fetched)."""
    subfolder = hub_kwargs.get("subfolder") or ""
    if os.path.isdir(pretrained_model_name_or_path):
        path = Path(pretrained_model_name_or_path) / subfolder / MODEL_CARD_NAME
        return path.read_text(encoding="utf-8") if path.is_file() else None
    try:
        path = cached_file(
            pretrained_model_name_or_path,
            MODEL_CARD_NAME,
            _raise_exceptions_for_missing_entries=False,
            _raise_exceptions_for_connection_errors=False,
            **{k: v for k, v in hub_kwargs.items() if k in ("cache_dir", "revision", "subfolder", "token")},
        )
    except (OSError, ValueError):  # not a repo id, or no access: a card is optional
        return None
    return Path(path).read_text(encoding="utf-8") if path else None


class UltraSamSavingMixin:
    """`save_pretrained` / `push_to_hub` for UltraSam models (see the module docstring)."""

    # Auto classes that a saved folder's `auto_map` names besides `_auto_class` (`register_for_auto_class` keeps one).
    _extra_auto_classes: tuple[str, ...] = ()
    _loaded_weights_dtype: torch.dtype | None = None  # the dtype of the loaded checkpoint's tensors
    _dtype_after_loading: torch.dtype | None = None  # the model's dtype right after `from_pretrained`
    _loaded_model_card: str | None = None

    @staticmethod
    def _load_pretrained_model(model, state_dict, checkpoint_files, load_config, *args, **kwargs):
        # transformers calls this with the resolved weight files: the one place that knows what they store.
        load = super(UltraSamSavingMixin, type(model))._load_pretrained_model
        result = load(model, state_dict, checkpoint_files, load_config, *args, **kwargs)
        model._loaded_weights_dtype = stored_float_dtype(checkpoint_files)
        return result

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        loaded = super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        model = loaded[0] if isinstance(loaded, tuple) else loaded  # output_loading_info=True
        if isinstance(pretrained_model_name_or_path, (str, os.PathLike)):
            model._loaded_model_card = find_model_card(pretrained_model_name_or_path, **kwargs)
        model._dtype_after_loading = model.dtype
        return loaded

    def _record_auto_classes(self) -> None:
        if self._auto_class is None or not self._extra_auto_classes:
            return
        name = f"{type(self).__module__.rsplit('.', 1)[-1]}.{type(self).__name__}"
        auto_map = dict(getattr(self.config, "auto_map", None) or {})
        auto_map.update(dict.fromkeys(self._extra_auto_classes, name))
        self.config.auto_map = auto_map
        if "AutoModelForMaskGeneration" in self._extra_auto_classes:
            # The relative import also makes transformers copy pipeline_ultrasam.py with the model files.
            from .pipeline_ultrasam import CUSTOM_PIPELINES

            self.config.custom_pipelines = {task: dict(entry) for task, entry in CUSTOM_PIPELINES.items()}

    def _state_dict_in_loaded_dtype(self) -> dict | None:
        stored, current = self._loaded_weights_dtype, self.dtype
        if stored is None or stored == current or current != self._dtype_after_loading:
            return None  # nothing to keep, or the model was cast on purpose after loading
        return {
            name: tensor.to(stored) if tensor.is_floating_point() else tensor
            for name, tensor in self.state_dict().items()
        }

    def save_pretrained(self, save_directory, *args, state_dict=None, **kwargs):
        pipelines_before = getattr(self.config, "custom_pipelines", _UNSET)
        self._record_auto_classes()
        if state_dict is None:
            state_dict = self._state_dict_in_loaded_dtype()
        try:
            result = super().save_pretrained(save_directory, *args, state_dict=state_dict, **kwargs)
        finally:
            # only the saved config names the remote-code pipeline: with it, `pipeline(model=<this object>)` would
            # ask for trust_remote_code
            if pipelines_before is _UNSET:
                vars(self.config).pop("custom_pipelines", None)
            else:
                self.config.custom_pipelines = pipelines_before
        card = Path(save_directory) / MODEL_CARD_NAME
        if self._loaded_model_card is not None and not card.exists():
            card.write_text(self._loaded_model_card, encoding="utf-8")
        return result

    def push_to_hub(self, repo_id, *args, **kwargs):
        if self._loaded_model_card is None or args:
            return super().push_to_hub(repo_id, *args, **kwargs)
        # transformers' push writes the Hub repo's current card, or a template, over README.md: push the loaded card.
        hub_api = transformers_hub.hf_api()
        repo_id = hub_api.create_repo(
            repo_id, private=kwargs.get("private"), token=kwargs.get("token"), exist_ok=True
        ).repo_id
        with tempfile.TemporaryDirectory() as tmp_dir:
            self.save_pretrained(tmp_dir, max_shard_size=kwargs.get("max_shard_size", "50GB"))
            return self._upload_modified_files(
                tmp_dir,
                repo_id,
                files_timestamps={},
                commit_message=kwargs.get("commit_message"),
                token=kwargs.get("token"),
                create_pr=kwargs.get("create_pr", False),
                revision=kwargs.get("revision"),
                commit_description=kwargs.get("commit_description"),
            )


__all__ = ["MODEL_CARD_NAME", "UltraSamSavingMixin", "find_model_card", "stored_float_dtype"]
