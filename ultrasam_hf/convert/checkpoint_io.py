"""Reading source checkpoints safely, loading them strictly, and writing a converted folder.

Everything here is shared by the per-layout converters (`sam.py`, `litemedsam.py`, `ultrasam.py`):

- [`read_checkpoint`] opens `.pth`/`.pt`/`.bin` with `torch.load(weights_only=True)` (never full unpickling: a file
  that needs arbitrary Python objects is refused with a [`CheckpointError`] that says why) and `.safetensors` files.
  Whatever the bytes, it returns a dict or raises a [`CheckpointError`] (`tests/convert/test_checkpoint_fuzz.py`).
- [`unwrap_state_dict`] accepts a bare state dict or the usual `{"model": ...}` / `{"state_dict": ...}` wrappers.
- [`load_strictly`] checks every key and shape against the target model and names each missing, unexpected or
  mis-shaped key in one [`CheckpointError`] before loading.

[`CheckpointError`] subclasses `ValueError` (`CheckpointNotFoundError` also `FileNotFoundError`).
- [`save_converted`] writes `model.safetensors`, `config.json`, the processor config and a model card.
"""

from __future__ import annotations

import datetime
import pickle
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch

from ..models.errors import CheckpointError, CheckpointNotFoundError

TORCH_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt", ".pkl")
WRAPPER_KEYS = ("model", "state_dict")
# Keys some exporters add that no converter needs (SAM's pixel statistics are constants of the processor).
IGNORABLE_SOURCE_KEYS = ("pixel_mean", "pixel_std")


# what a torch.save file starts with: a zip archive (since torch 1.6), or a pickle (protocol 2+) for legacy files
_ZIP_MAGIC, _PICKLE_MAGIC = b"PK\x03\x04", b"\x80"
_AGAIN = "download or copy it again"


def _reason(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[0][:200]}" if lines else type(error).__name__


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The raw object stored in `path` (a dict), read without unpickling arbitrary objects.

    Raises [`CheckpointNotFoundError`] for a missing file and [`CheckpointError`] for a file that is empty,
    truncated, corrupt, not a checkpoint, or needs full (unsafe) unpickling; never another exception type.
    """
    path = Path(path)
    if not path.is_file():
        if path.is_dir():
            raise CheckpointError(f"{path} is a folder: give the checkpoint file (.pth, .pt, .bin or .safetensors).")
        raise CheckpointNotFoundError(f"Checkpoint not found: {path} (check the path)")
    try:
        with path.open("rb") as handle:
            head = handle.read(4)
    except OSError as error:
        raise CheckpointError(f"Cannot read {path}: {error.strerror or error}.") from error
    if not head:
        raise CheckpointError(f"{path} is empty (0 bytes): the download or copy did not finish; {_AGAIN}.")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            obj = dict(load_file(str(path), device="cpu"))
        except Exception as error:  # safetensors raises its own SafetensorError for corrupt headers/data
            raise CheckpointError(
                f"{path} is not a readable .safetensors file (truncated or corrupt?): {_reason(error)}; {_AGAIN}."
            ) from error
        return obj
    if not head.startswith((_ZIP_MAGIC, _PICKLE_MAGIC)):
        raise CheckpointError(
            f"{path} is not a PyTorch checkpoint (neither a torch.save zip archive nor a pickle: it starts with "
            f"{head!r}); give a .pth/.pt/.bin written by torch.save, or a .safetensors file."
        )
    try:
        with warnings.catch_warnings(record=True) as caught:  # torch warns about odd pickle protocols of bad bytes
            warnings.simplefilter("always")
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
        for message in dict.fromkeys(str(w.message) for w in caught):
            warnings.warn(f"{path}: {message}", UserWarning, stacklevel=2)
    except pickle.UnpicklingError as error:
        if "Unsupported global" not in str(error) and "was not an allowed global" not in str(error):
            raise CheckpointError(
                f"{path} could not be read as a PyTorch checkpoint (truncated or corrupt?): {_reason(error)}; "
                f"{_AGAIN}."
            ) from error
        # weights_only refuses every global that is not a tensor/container; say so plainly.
        raise CheckpointError(
            f"Refusing to load {path}: it needs full unpickling of Python objects, which can run arbitrary code "
            f"(torch.load(weights_only=True) said: {_reason(error)}). Only plain state dicts of tensors "
            "are converted; re-save the weights with `torch.save(model.state_dict(), ...)` or as .safetensors."
        ) from error
    except MemoryError as error:
        raise CheckpointError(f"{path}: not enough memory to read it (or a corrupt size field); {_AGAIN}.") from error
    except Exception as error:  # torch.load raises RuntimeError, EOFError, KeyError, IndexError, ... on bad bytes
        raise CheckpointError(
            f"{path} could not be read as a PyTorch checkpoint (truncated or corrupt?): {_reason(error)}; {_AGAIN}."
        ) from error
    if not isinstance(obj, Mapping):
        raise CheckpointError(
            f"{path} holds a {type(obj).__name__}, not a dict of tensors (state dict): give the file of "
            "`torch.save(model.state_dict(), ...)`."
        )
    return dict(obj)


def unwrap_state_dict(checkpoint: Mapping[str, Any], source: str | Path = "checkpoint") -> dict[str, torch.Tensor]:
    """The state dict inside `checkpoint`: itself, or its `"model"` / `"state_dict"` entry; only tensors allowed."""
    for key in WRAPPER_KEYS:
        if key in checkpoint and isinstance(checkpoint[key], Mapping):
            checkpoint = checkpoint[key]
            break
    not_names = [k for k in checkpoint if not isinstance(k, str)]
    if not_names:
        raise CheckpointError(f"{source}: not a state dict; these keys are not names: {not_names[:10]!r:.200}")
    not_tensors = sorted(k for k, v in checkpoint.items() if not isinstance(v, torch.Tensor))
    if not_tensors:
        raise CheckpointError(
            f"{source}: not a state dict of tensors; these entries are not tensors: {not_tensors[:10]}"
            + (f" (and {len(not_tensors) - 10} more)" if len(not_tensors) > 10 else "")
        )
    if not checkpoint:
        raise CheckpointError(f"{source}: the state dict is empty.")
    return {k: v for k, v in checkpoint.items() if k not in IGNORABLE_SOURCE_KEYS}


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """`read_checkpoint` + `unwrap_state_dict`."""
    return unwrap_state_dict(read_checkpoint(path), source=path)


TIED_KEYS = (("shared_image_embedding.positional_embedding", "prompt_encoder.shared_embedding.positional_embedding"),)


def fill_tied_keys(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Copy each tied tensor to its partner key where only one of the pair is present."""
    for first, second in TIED_KEYS:
        if first in state_dict and second not in state_dict:
            state_dict[second] = state_dict[first]
        elif second in state_dict and first not in state_dict:
            state_dict[first] = state_dict[second]
    return state_dict


def check_state_dict(model: torch.nn.Module, state_dict: Mapping[str, torch.Tensor]) -> None:
    """Raise one `ValueError` naming every missing, unexpected and mis-shaped key (after conversion)."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    mis_shaped = sorted(
        f"{key}: checkpoint {tuple(state_dict[key].shape)} vs model {tuple(expected[key].shape)}"
        for key in set(expected) & set(state_dict)
        if tuple(state_dict[key].shape) != tuple(expected[key].shape)
    )
    problems = []
    if missing:
        problems.append(f"missing keys ({len(missing)}): {missing}")
    if unexpected:
        problems.append(f"unexpected keys ({len(unexpected)}): {unexpected}")
    if mis_shaped:
        problems.append(f"mis-shaped keys ({len(mis_shaped)}): {mis_shaped}")
    if problems:
        raise CheckpointError("The converted state dict does not fit the model: " + "; ".join(problems))


def load_strictly(model: torch.nn.Module, state_dict: dict[str, torch.Tensor]) -> torch.nn.Module:
    """Check (by name) then load `state_dict` into `model` with `strict=True`; tied keys are filled first."""
    state_dict = fill_tied_keys(dict(state_dict))
    check_state_dict(model, state_dict)
    expected = model.state_dict()
    state_dict = {k: v.to(expected[k].dtype) for k, v in state_dict.items()}
    model.load_state_dict(state_dict, strict=True)
    return model.eval()


@dataclass
class SourceInfo:
    """What the model card says about where the weights came from."""

    source: str  # sam | medsam | litemedsam | ultrasam
    title: str
    checkpoint: str
    licence: str  # in words, for the card's text
    citation: str
    homepage: str
    intended_use: str
    notes: list[str] = field(default_factory=list)
    base_model: str | None = None  # Hub id of the same or the parent weights (`ultrasam_hf.hub.repo_ids`)
    license_id: str = "apache-2.0"  # the Hub licence identifier
    license_name: str | None = None  # with license_id "other"
    license_link: str | None = None  # with license_id "other": a URL


def _package_version() -> str:
    try:
        from importlib.metadata import version

        return version("ultrasam-hf")
    except Exception:
        from .. import __version__

        return __version__


def model_card(info: SourceInfo, config, command: str, repo_id: str = "<this folder>") -> str:
    """Markdown body of a converted folder's card (its metadata: `ultrasam_hf.hub.model_card`)."""
    from ..hub.card_texts import usage_section

    today = datetime.date.today().isoformat()
    vision = config.vision_config
    encoder = (
        f"TinyViT ({list(vision.tiny_vit_embed_dims)} widths, {vision.image_size} px)"
        if vision.encoder_type == "tiny_vit"
        else f"ViT ({vision.hidden_size} wide, {vision.num_hidden_layers} layers, {vision.image_size} px)"
    )
    notes = "".join(f"- {note}\n" for note in info.notes)
    return f"""# {info.title} (UltraSam / transformers format)

Weights of **{info.title}** converted to `UltraSamModel` (a `transformers` `SamModel` subclass) by
the `ultrasam-hf` package (UltraSam: https://github.com/CAMMA-public/UltraSam). The numbers are the original ones: only names (and, where
noted, a mathematically equivalent re-parameterisation) changed.

- Source checkpoint: `{info.checkpoint}` ({info.homepage})
- Architecture: {encoder}, decoder refinement passes: {config.num_mask_refinements}, preprocessing: `{config.preprocessing}`
- Licence: {info.licence} (the licence of the source weights applies to this folder)

## Intended use

{info.intended_use}

Not a medical device: outputs are research results and must not be used for diagnosis.

{usage_section(repo_id, bool(config.multimask_output_default))}
## How it was converted

- Command: `{command}`
- ultrasam-hf {_package_version()}, torch {torch.__version__}, date {today}
- Keys renamed to the transformers SAM layout and loaded strictly (no missing, unexpected or mis-shaped key).
{notes}
## Citation

```bibtex
{info.citation.strip()}
```
"""


def save_converted(model, processor, out_dir: str | Path, info: SourceInfo, command: str) -> Path:
    """Write `model.safetensors` + `config.json`, the processor config and `README.md` to `out_dir`: a
    self-contained Hub repository (remote code, complete auto_map, Hub-valid card; `ultrasam_hf.hub`)."""
    from ..hub.model_card import default_repo_id, write_model_card
    from ..hub.model_repo import prepare_model_repo

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    if processor is not None:
        processor.save_pretrained(out_dir)
    prepare_model_repo(out_dir)
    repo_id = default_repo_id(out_dir)
    write_model_card(
        out_dir,
        model_card(info, model.config, command, repo_id),
        repo_id=repo_id,
        base_model=info.base_model,
        license=info.license_id,
        license_name=info.license_name,
        license_link=info.license_link,
    )
    return out_dir
