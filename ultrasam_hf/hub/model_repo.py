"""Self-contained model repositories: every folder the package writes loads with `trust_remote_code=True` alone, on a
machine without `ultrasam_hf`, and can be pushed to the Hub as it is.

- [`write_remote_code`] copies the package's own model files (`ultrasam_hf/models/`, the ones the `auto_map` and
  `custom_pipelines` name plus their relative imports) into the folder: copied at write time, never a second copy
  in git.
- [`complete_auto_map`] makes `config.json` / `processor_config.json` name every Auto class (AutoConfig, AutoModel,
  AutoModelForMaskGeneration, AutoProcessor, AutoImageProcessor) and the mask-generation pipeline.
- [`prepare_model_repo`] does both (and, for a PEFT adapter folder, points `adapter_config.json` at transformers'
  `AutoModel` so that `AutoPeftModel` loads it); [`check_model_repo`] lists what is still missing;
  [`push_model_repo`] prepares a copy of a folder and uploads it.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id

from .model_card import check_model_card

MODELS_DIR = Path(__file__).resolve().parents[1] / "models"
# The model files a repository's auto_map and custom_pipelines name; their relative imports travel with them.
REMOTE_CODE_ENTRIES = (
    "configuration_ultrasam.py",
    "modeling_ultrasam.py",
    "processing_ultrasam.py",
    "image_processing_ultrasam.py",
    "pipeline_ultrasam.py",
)
MODEL_AUTO_MAP = {
    "UltraSamModel": {
        "AutoConfig": "configuration_ultrasam.UltraSamConfig",
        "AutoModel": "modeling_ultrasam.UltraSamModel",
        "AutoModelForMaskGeneration": "modeling_ultrasam.UltraSamModel",
    },
    "UltraSamForPromptedClassification": {
        "AutoConfig": "configuration_ultrasam.UltraSamConfig",
        "AutoModel": "modeling_ultrasam.UltraSamForPromptedClassification",
    },
}
PROCESSOR_AUTO_MAP = {
    "AutoProcessor": "processing_ultrasam.UltraSamProcessor",
    "AutoImageProcessor": "image_processing_ultrasam.UltraSamImageProcessor",
}
# What AutoPeftModel imports to build an adapter's base model: transformers' AutoModel (with trust_remote_code), not
# ultrasam_hf (absent on the Hub user's machine, and outside peft's import allowlist).
ADAPTER_AUTO_MAPPING = {"base_model_class": "AutoModel", "parent_library": "transformers"}


def remote_code_files() -> list[Path]:
    """The package's model files a repository needs, in a stable order."""
    from transformers.dynamic_module_utils import get_relative_import_files

    files = {}
    for entry in REMOTE_CODE_ENTRIES:
        path = MODELS_DIR / entry
        for needed in [path, *map(Path, get_relative_import_files(str(path)))]:
            files[needed.name] = needed
    return [files[name] for name in sorted(files)]


def write_remote_code(folder: str | Path) -> list[Path]:
    """Copy [`remote_code_files`] into `folder` (replacing older copies); returns the written paths."""
    folder = Path(folder)
    written = []
    for source in remote_code_files():
        target = folder / source.name
        if target.is_symlink():
            target.unlink()
        shutil.copyfile(source, target)
        written.append(target)
    return written


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _architecture(config: dict, folder: Path) -> str:
    architectures = config.get("architectures") or ["UltraSamModel"]
    if architectures[0] not in MODEL_AUTO_MAP:
        raise ValueError(
            f"{folder}/config.json: architecture {architectures[0]!r} is not one of {sorted(MODEL_AUTO_MAP)}"
        )
    return architectures[0]


def complete_auto_map(folder: str | Path) -> None:
    """Name every Auto class (and, for `UltraSamModel`, the mask-generation pipeline) in the folder's `config.json`
    and `processor_config.json` (written from the config when missing)."""
    folder = Path(folder)
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{folder} has no config.json: not a saved UltraSam model folder")
    config = _read_json(config_path)
    architecture = _architecture(config, folder)
    config["auto_map"] = {**(config.get("auto_map") or {}), **MODEL_AUTO_MAP[architecture], **PROCESSOR_AUTO_MAP}
    if "AutoModelForMaskGeneration" in MODEL_AUTO_MAP[architecture]:
        from ..models.pipeline_ultrasam import CUSTOM_PIPELINES  # imports transformers' pipelines: only when needed

        config["custom_pipelines"] = json.loads(json.dumps(CUSTOM_PIPELINES))
    _write_json(config_path, config)

    processor_path = folder / "processor_config.json"
    if not processor_path.is_file():
        from ..models.configuration_ultrasam import UltraSamConfig
        from ..models.processing_ultrasam import UltraSamProcessor

        UltraSamProcessor.from_model_config(UltraSamConfig.from_dict(config)).save_pretrained(folder)
    processor = _read_json(processor_path)
    processor["auto_map"] = {**(processor.get("auto_map") or {}), "AutoProcessor": PROCESSOR_AUTO_MAP["AutoProcessor"]}
    image_processor = processor.get("image_processor")
    if isinstance(image_processor, dict):
        image_processor["auto_map"] = {**(image_processor.get("auto_map") or {}), **PROCESSOR_AUTO_MAP}
    _write_json(processor_path, processor)


def is_adapter_folder(folder: str | Path) -> bool:
    return (Path(folder) / "adapter_config.json").is_file()


def _is_repo_id(value: str) -> bool:
    if os.path.isabs(value) or os.path.exists(value) or "/" not in value:
        return False
    try:
        validate_repo_id(value)
    except HFValidationError:
        return False
    return True


def prepare_adapter_config(folder: str | Path, base_model_id: str | None = None) -> dict:
    """Point a PEFT adapter folder's `adapter_config.json` at transformers' AutoModel (`ADAPTER_AUTO_MAPPING`) and,
    when given, at the Hub id of its base model; returns the updated config."""
    path = Path(folder) / "adapter_config.json"
    adapter = _read_json(path)
    adapter["auto_mapping"] = dict(ADAPTER_AUTO_MAPPING)
    if base_model_id is not None:
        if not _is_repo_id(base_model_id):
            raise ValueError(f"base_model_id must be a Hub repository id ('org/name'), got {base_model_id!r}")
        adapter["base_model_name_or_path"] = base_model_id
    _write_json(path, adapter)
    return adapter


def prepare_model_repo(folder: str | Path, base_model_id: str | None = None) -> Path:
    """Make `folder` a self-contained repository: remote code, complete auto_map (and for an adapter folder the
    `adapter_config.json` fixes of [`prepare_adapter_config`], its card updated to a new `base_model_id`). The card
    itself is `model_card.write_folder_card`'s job."""
    folder = Path(folder)
    write_remote_code(folder)
    if (folder / "config.json").is_file():
        complete_auto_map(folder)
    if is_adapter_folder(folder):
        prepare_adapter_config(folder, base_model_id)
        card = folder / "README.md"
        if base_model_id is not None and card.is_file():  # the card names the new base too
            from .model_card import write_folder_card

            write_folder_card(folder, card.read_text(encoding="utf-8"))
    return folder


def check_model_repo(folder: str | Path) -> list[str]:
    """What keeps `folder` from loading by remote code alone or from passing the Hub's card rules (empty: none)."""
    folder = Path(folder)
    problems = []
    missing = [path.name for path in remote_code_files() if not (folder / path.name).is_file()]
    if missing:
        problems.append(f"remote code missing: {missing}")
    if (folder / "config.json").is_file():
        config = _read_json(folder / "config.json")
        expected = {**MODEL_AUTO_MAP.get(_architecture(config, folder), {}), **PROCESSOR_AUTO_MAP}
        absent = sorted(set(expected) - set(config.get("auto_map") or {}))
        if absent:
            problems.append(f"config.json auto_map lacks {absent}")
    else:
        problems.append("no config.json")
    if is_adapter_folder(folder):
        adapter = _read_json(folder / "adapter_config.json")
        base = str(adapter.get("base_model_name_or_path") or "")
        if not _is_repo_id(base):
            problems.append(
                f"adapter_config.json base_model_name_or_path {base!r} is not a Hub repository id: push the base "
                "model first and pass its id (prepare_model_repo(folder, base_model_id=...))"
            )
        if adapter.get("auto_mapping") != ADAPTER_AUTO_MAPPING:
            problems.append(
                f"adapter_config.json auto_mapping is {adapter.get('auto_mapping')}, not {ADAPTER_AUTO_MAPPING}"
            )
    card = folder / "README.md"
    if not card.is_file():
        problems.append("no model card (README.md)")
    else:
        problems += [f"README.md: {problem}" for problem in check_model_card(card.read_text(encoding="utf-8"), folder)]
    return problems


def push_model_repo(
    folder: str | Path,
    repo_id: str,
    *,
    base_model_id: str | None = None,
    private: bool | None = None,
    commit_message: str | None = None,
    api=None,
    token=None,
):
    """Upload a model folder as Hub repository `repo_id`: a copy of it is prepared ([`prepare_model_repo`]) and
    checked ([`check_model_repo`], a `ValueError` lists the problems), so the folder itself is left as it is."""
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi(token=token)
    with tempfile.TemporaryDirectory() as staging:
        staged = Path(staging) / Path(folder).name
        shutil.copytree(folder, staged, symlinks=False)
        prepare_model_repo(staged, base_model_id)
        problems = check_model_repo(staged)
        if problems:
            raise ValueError(f"{folder} cannot be pushed as {repo_id}: " + "; ".join(problems))
        api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
        return api.upload_folder(
            repo_id=repo_id,
            repo_type="model",
            folder_path=str(staged),
            commit_message=commit_message or f"Upload {Path(folder).name}",
            ignore_patterns=["__pycache__/*", "*.pyc"],
        )


__all__ = [
    "ADAPTER_AUTO_MAPPING",
    "MODEL_AUTO_MAP",
    "PROCESSOR_AUTO_MAP",
    "REMOTE_CODE_ENTRIES",
    "check_model_repo",
    "complete_auto_map",
    "is_adapter_folder",
    "prepare_adapter_config",
    "prepare_model_repo",
    "push_model_repo",
    "remote_code_files",
    "write_remote_code",
]
