"""Loading an UltraSam model for use: strictly, or not at all.

`transformers`' `from_pretrained` fills whatever a folder lacks with random weights and only logs it: a BERT folder,
a config without weights or weights of another shape would segment with a random model and exit 0. Here a folder
either loads completely or raises a [`ModelLoadError`] naming the folder and what is wrong. `ultrasam segment`,
`ultrasam demo`, `ultrasam eval`, `UltraSamPredictor.from_pretrained` and training's `--init` all load through
[`load_model`].
"""

import contextlib
import json
import re
from pathlib import Path

from ..models.configuration_ultrasam import UltraSamConfig
from ..models.errors import ModelLoadError, ModelNotFoundError, UltraSamError
from ..models.processing_ultrasam import UltraSamProcessor

WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
PROCESSOR_FILES = ("preprocessor_config.json", "processor_config.json")
HUB_KWARGS = ("cache_dir", "revision", "token", "local_files_only", "force_download", "proxies")
# "name" or "org/name", as the Hub spells repository ids; anything else is only ever a local path
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)?$")
_FOLDER_HINT = "give a folder written by `ultrasam convert` or `UltraSamModel.save_pretrained`"


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def resolve_model_folder(path_or_repo_id, **hub_kwargs) -> Path:
    """The local folder of `path_or_repo_id`: itself when it exists, else the shipped checkpoint of that name
    (`ultrasam-lite-us`, `ultrasam-nano-us`), else the Hub snapshot of that repository id (from the local cache when
    offline). [`ModelNotFoundError`] when it is none of these."""
    from .default_model import packaged_model_dir, packaged_model_names

    name = str(path_or_repo_id)
    path = Path(name).expanduser()
    if path.exists():
        return path
    packaged = packaged_model_dir(name)
    if packaged is not None:
        return packaged
    if name.startswith((".", "/", "~")) or not _HUB_ID.match(name):
        raise ModelNotFoundError(f"model folder {name} does not exist: {_FOLDER_HINT}.")
    from huggingface_hub import snapshot_download

    try:
        return Path(
            snapshot_download(name, allow_patterns=["*.json", "*.safetensors", "*.bin", "*.py", "*.md"], **hub_kwargs)
        )
    except Exception as error:  # offline, unknown repository, network: all mean "not available here"
        raise ModelNotFoundError(
            f"'{name}' is neither an existing folder, a shipped checkpoint ({', '.join(packaged_model_names())}) "
            f"nor a Hub model available here ({_first_line(error)}): {_FOLDER_HINT}, or check the repository id."
        ) from error


def check_model_folder(folder) -> dict:
    """Cheap checks of a local folder before anything is loaded: a `config.json` of valid JSON with
    `model_type: "ultrasam"`, and a weights file. Returns the parsed config; [`ModelLoadError`] otherwise."""
    folder = Path(folder)
    if not folder.exists():
        raise ModelNotFoundError(f"model folder {folder} does not exist: {_FOLDER_HINT}.")
    if not folder.is_dir():
        raise ModelLoadError(f"'{folder}' is a file, not a model folder: {_FOLDER_HINT}.")
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise ModelLoadError(f"'{folder}' has no config.json: not a model folder ({_FOLDER_HINT}).")
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelLoadError(
            f"'{config_file}' cannot be read as JSON ({_first_line(error)}): the folder is damaged; convert or save "
            "the model again."
        ) from error
    if not isinstance(config, dict):
        raise ModelLoadError(f"'{config_file}' holds a JSON {type(config).__name__}, not a model config.")
    model_type = config.get("model_type")
    if model_type != UltraSamConfig.model_type:
        what = f"a '{model_type}' model" if model_type else "a config without model_type"
        raise ModelLoadError(f"'{folder}' holds {what} (config.json), not an UltraSam model: {_FOLDER_HINT}.")
    if not any((folder / name).is_file() for name in WEIGHT_FILES):
        raise ModelLoadError(
            f"'{folder}' has a config.json but no weights ({' / '.join(WEIGHT_FILES[::2])}): copy the weights file "
            "next to it, or convert / save the model again."
        )
    return config


@contextlib.contextmanager
def _quiet_transformers():
    """No load report or progress bar from transformers: what matters is checked and raised here."""
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def _listed(keys, limit: int = 5) -> str:
    keys = sorted(str(k if isinstance(k, str) else k[0]) for k in keys)
    return ", ".join(keys[:limit]) + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def load_model(path_or_repo_id, model_class=None, **kwargs):
    """
    Load `model_class` (default [`UltraSamModel`]) from a folder or Hub id, strictly: every weight of the model
    present in the checkpoint with its shape, no tensor left over, all finite.

    Args:
        path_or_repo_id: a local folder or a Hub repository id (resolved offline from the cache when offline).
        model_class: an `UltraSamPreTrainedModel` subclass.
        kwargs: Hub arguments (`cache_dir`, `revision`, `token`, ...) and `from_pretrained` arguments.

    Raises:
        [`ModelLoadError`] (or [`ModelNotFoundError`]) naming the folder and what is wrong.
    """
    if model_class is None:
        from ..models.modeling_ultrasam import UltraSamModel as model_class
    hub_kwargs = {key: kwargs.pop(key) for key in HUB_KWARGS if key in kwargs}
    folder = resolve_model_folder(path_or_repo_id, **hub_kwargs)
    check_model_folder(folder)
    try:
        config = UltraSamConfig.from_pretrained(folder)
    except Exception as error:
        raise ModelLoadError(
            f"'{folder}/config.json' is not a valid UltraSam config ({_first_line(error)}): convert or save the model "
            "again."
        ) from error
    try:
        with _quiet_transformers():
            model, info = model_class.from_pretrained(
                folder, config=config, output_loading_info=True, ignore_mismatched_sizes=True, **kwargs
            )
    except UltraSamError:
        raise
    except Exception as error:  # unreadable weights: truncated safetensors, a bad index, a pickle...
        raise ModelLoadError(
            f"cannot load the weights in '{folder}' ({_first_line(error)}): the weights file is damaged or "
            "incomplete; copy it again, or convert / save the model again."
        ) from error
    problems = []
    for kind, keys in (
        ("missing", info.get("missing_keys")),
        ("unexpected", info.get("unexpected_keys")),
        ("mis-shaped", info.get("mismatched_keys")),
    ):
        if keys:
            problems.append(f"{len(keys)} {kind} ({_listed(keys)})")
    if info.get("error_msgs"):
        problems.append("; ".join(str(m) for m in info["error_msgs"])[:300])
    if problems:
        raise ModelLoadError(
            f"the weights in '{folder}' do not fit its config ({'; '.join(problems)}): the weights belong to another "
            "model or were damaged; convert or save the model again."
        )
    for name, tensor in model.state_dict().items():
        if tensor.is_floating_point() and not bool(tensor.isfinite().all()):
            raise ModelLoadError(
                f"the weights in '{folder}' hold NaN or infinite values ({name}): the file is damaged; convert or "
                "save the model again."
            )
    return model.eval()


def load_processor(folder, config: UltraSamConfig) -> UltraSamProcessor:
    """The folder's saved processor when it has one, else the one its config implies (`from_model_config`)."""
    folder = Path(folder)
    if not any((folder / name).is_file() for name in PROCESSOR_FILES):
        return UltraSamProcessor.from_model_config(config)
    try:
        with _quiet_transformers():
            return UltraSamProcessor.from_pretrained(folder)
    except UltraSamError:
        raise
    except Exception as error:
        raise ModelLoadError(
            f"the processor config in '{folder}' cannot be loaded ({_first_line(error)}): fix or delete it (the "
            "model config then implies the processor)."
        ) from error


def load_model_and_processor(path_or_repo_id, model_class=None, **kwargs):
    """[`load_model`] and the processor saved with it (or implied by its config)."""
    hub_kwargs = {key: kwargs.pop(key) for key in HUB_KWARGS if key in kwargs}
    folder = resolve_model_folder(path_or_repo_id, **hub_kwargs)
    model = load_model(folder, model_class, **kwargs)
    return model, load_processor(folder, model.config)


__all__ = [
    "check_model_folder",
    "load_model",
    "load_model_and_processor",
    "load_processor",
    "resolve_model_folder",
]
