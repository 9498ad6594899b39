"""The one model-card writer: Hub metadata that passes the Hub's checks, around a Markdown body.

Every folder the package writes (`scripts/ship_checkpoint.py`, training output, `ultrasam convert`) gets its
`README.md` from [`write_model_card`]:

- `base_model` / `datasets` as Hub repository ids (`repo_ids.py` says where they come from), `base_model_relation`;
- `license`, and with `license: other` a `license_name` and a `license_link` (a URL, or a `LICENSE.md` written into the
  folder);
- `model-index` from the `results.json` of `ultrasam eval` ([`eval_results_from_eval_json`]);
- `pipeline_tag: mask-generation`, `library_name`, tags, and `widget` examples (ultrasound images written into the
  folder's `examples/`, [`write_widget_examples`]) with the checkpoint's mask-generation settings as the widget's
  inference parameters.

[`check_model_card`] lists what would fail the Hub's metadata rules; the writer refuses a card with any problem.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from huggingface_hub import EvalResult, ModelCard, ModelCardData
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id

from .repo_ids import DATASETS_REPO, HUB_NAMESPACE, MODEL_REPOS, PRESET_BASE_MODELS

DEFAULT_TAGS = ("ultrasam", "segment-anything", "medical-imaging", "ultrasound")
BASE_MODEL_RELATIONS = ("adapter", "merge", "quantized", "finetune")
LICENSE_FILE = "LICENSE.md"
EXAMPLES_DIR = "examples"
# Evaluation metrics of `ultrasam eval` that go into the model-index, with their display names.
EVAL_METRICS = {
    "dice": "Dice",
    "iou": "IoU",
    "nsd": "NSD",
    "hd95": "HD95",
    "noc85_iou": "NoC@85",
    "noc90_iou": "NoC@90",
}
PROMPT_TASKS = {
    "box": "Box-prompted segmentation",
    "point": "One-point-prompted segmentation",
    "clicks": "Interactive segmentation (corrective clicks)",
}
_LICENSE_ID = re.compile(r"^[a-z0-9][a-z0-9.+-]*$")
_URL = re.compile(r"^https?://\S+$")


# ------------------------------------------------------------------------------------------------- model-index


def eval_results_from_eval_json(
    results: str | Path | Mapping[str, Any],
    model_name: str,
    *,
    datasets_repo: str = DATASETS_REPO,
    dataset_names: Mapping[str, str] | None = None,
) -> list[EvalResult]:
    """The model-index entries of `model_name` in an `ultrasam eval` output (its `results.json`, path or loaded):
    one per dataset x prompt x metric, the mean over instances, the dataset named as `datasets_repo` with the slug as
    config and the evaluated split. `dataset_names` maps slugs to display names (default: the slug)."""
    if not isinstance(results, Mapping):
        results = json.loads(Path(results).read_text(encoding="utf-8"))
    if "summary" not in results:
        raise ValueError(f"not an `ultrasam eval` results.json: it has no 'summary' (its keys: {sorted(results)})")
    settings = results.get("settings") or {}
    split = settings.get("split") or "test"
    tolerance = settings.get("nsd_tolerance")
    units: dict[str, set] = {}
    for record in results.get("records") or ():
        if record.get("model") == model_name:
            units.setdefault(record["dataset"], set()).add(record.get("distance_unit", "px"))
    rows = [row for row in results["summary"] if row.get("model") == model_name]
    if not rows:
        models = sorted({str(row.get("model")) for row in results["summary"]})
        raise ValueError(f"model {model_name!r} has no results in this results.json (models there: {models})")
    entries = []
    for row in rows:
        dataset, prompt = row["dataset"], row["prompt"]
        for metric, label in EVAL_METRICS.items():
            stats = (row.get("metrics") or {}).get(metric)
            if stats is None or stats.get("mean") is None or stats["mean"] != stats["mean"]:  # absent or NaN
                continue
            suffix = ""
            if metric == "hd95":
                suffix = f", {'/'.join(sorted(units.get(dataset, {'px'})))}"
            elif metric == "nsd" and tolerance is not None:
                suffix = f", tolerance {tolerance:g}"
            entries.append(
                EvalResult(
                    task_type="mask-generation",
                    task_name=PROMPT_TASKS.get(prompt, f"{prompt} prompts"),
                    dataset_type=datasets_repo,
                    dataset_name=(dataset_names or {}).get(dataset, dataset),
                    dataset_config=dataset,
                    dataset_split=split,
                    metric_type=metric,
                    metric_value=round(float(stats["mean"]), 4),
                    metric_name=f"{label} ({prompt}{suffix})",
                )
            )
    return entries


# ------------------------------------------------------------------------------------------------------ widget


def write_widget_examples(folder: str | Path) -> list[tuple[str, str]]:
    """Write the widget's example images into `folder/examples/` (the two ultrasound DICOMs of pydicom-data that
    `ultrasam demo` uses, as PNGs); returns `(file name in the repo, title)` pairs, none when pydicom-data is absent."""
    from PIL import Image

    from ..inference.demo import DEMO_CASES
    from ..models.image_loading import load_frames

    try:
        from pydicom.data import get_testdata_file
    except ImportError:
        return []
    examples, seen = [], set()
    for case in DEMO_CASES:
        if case.dicom in seen:
            continue
        seen.add(case.dicom)
        path = get_testdata_file(case.dicom)
        if path is None:
            continue
        name = f"{EXAMPLES_DIR}/{Path(case.dicom).stem.lower()}.png"
        target = Path(folder) / name
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(load_frames(path)[0]).save(target)
        examples.append((name, f"{case.structure[:1].upper()}{case.structure[1:]}: {case.dicom} of pydicom-data"))
    return examples


def widget_entries(repo_id: str, examples: Sequence[tuple[str, str]]) -> list[dict]:
    """`widget:` entries for example files of repository `repo_id`."""
    return [
        {"src": f"https://huggingface.co/{repo_id}/resolve/main/{name}", "example_title": title}
        for name, title in examples
    ]


# -------------------------------------------------------------------------------------------------------- card


def _as_list(value) -> list:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def check_model_card(text: str, folder: str | Path | None = None) -> list[str]:
    """What in the card's metadata would fail the Hub's rules (an empty list when none): repository ids of
    `base_model` / `datasets`, the licence fields, `base_model_relation`, `pipeline_tag`, the widget and model-index.
    With `folder`, a `license_link` to a file must name a file in it."""
    try:
        card = ModelCard(text, ignore_metadata_errors=False)
    except (ValueError, yaml.YAMLError) as error:  # a broken header
        return [f"the metadata does not parse: {error}"]
    data = card.data.to_dict()
    problems = []
    for key in ("base_model", "datasets"):
        for value in _as_list(data.get(key)):
            try:
                validate_repo_id(str(value))
            except HFValidationError as error:
                problems.append(f"{key} {value!r} is not a Hub repository id: {error}")
    relation = data.get("base_model_relation")
    if relation is not None and relation not in BASE_MODEL_RELATIONS:
        problems.append(f"base_model_relation {relation!r} is not one of {BASE_MODEL_RELATIONS}")
    if relation is not None and not data.get("base_model"):
        problems.append("base_model_relation without base_model")
    license_id = data.get("license")
    if not license_id:
        problems.append("no license")
    elif not isinstance(license_id, str) or not _LICENSE_ID.match(license_id):
        problems.append(f"license {license_id!r} is not a Hub licence identifier (lower-case, e.g. apache-2.0)")
    elif license_id == "other":
        name, link = data.get("license_name"), data.get("license_link")
        if not name or not _LICENSE_ID.match(str(name)):
            problems.append(f"license: other needs a license_name identifier (lower-case, dashes), got {name!r}")
        if not link:
            problems.append("license: other needs a license_link (a URL or a file of the repository)")
        elif not _URL.match(str(link)) and folder is not None and not (Path(folder) / str(link)).is_file():
            problems.append(f"license_link {link!r} names no file of {folder}")
    if not data.get("pipeline_tag"):
        problems.append("no pipeline_tag")
    if not data.get("library_name"):
        problems.append("no library_name")
    for entry in _as_list(data.get("widget")):
        if not isinstance(entry, dict) or not _URL.match(str(entry.get("src", ""))):
            problems.append(f"widget entry {entry!r} has no src URL")
    if "model-index" in data and not card.data.eval_results:
        problems.append("model-index holds no result the Hub can read")
    return problems


def render_model_card(body: str, **metadata) -> str:
    """`README.md` text: `metadata` (ModelCardData fields; `eval_results` + `model_name` give the model-index) as
    YAML front matter, then `body`."""
    data = ModelCardData(**{key: value for key, value in metadata.items() if value not in (None, [], ())})
    return f"---\n{data.to_yaml()}\n---\n\n{body.strip()}\n"


def write_model_card(
    folder: str | Path,
    body: str,
    *,
    repo_id: str | None = None,
    base_model: str | Sequence[str] | None = None,
    base_model_relation: str | None = None,
    license: str = "apache-2.0",
    license_name: str | None = None,
    license_link: str | None = None,
    license_text: str | None = None,
    datasets: Iterable[str] = (),
    eval_results: Sequence[EvalResult] = (),
    model_name: str | None = None,
    library_name: str = "transformers",
    pipeline_tag: str = "mask-generation",
    tags: Iterable[str] = (),
    widget: bool = True,
    extra_metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Write `folder/README.md` (and `LICENSE.md` when `license_text` is given): Hub-valid metadata, then `body`.

    - `license="other"` needs `license_name` and either `license_link` (a URL or a file already in `folder`) or
      `license_text` (written to `LICENSE.md`, which the link then names).
    - `eval_results` (e.g. from [`eval_results_from_eval_json`]) become the model-index under `model_name` (default:
      the folder name).
    - With `widget` and a `repo_id`, the example images are written to `folder/examples/` and the widget points at
      them; the checkpoint's `config.json` `mask_generation` settings become the widget's inference parameters.

    Raises `ValueError` listing every problem [`check_model_card`] finds.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if license_text is not None:
        (folder / LICENSE_FILE).write_text(license_text.strip() + "\n", encoding="utf-8")
        license_link = license_link or LICENSE_FILE
    metadata: dict[str, Any] = {
        "library_name": library_name,
        "license": license,
        "license_name": license_name,
        "license_link": license_link,
        "pipeline_tag": pipeline_tag,
        "tags": list(dict.fromkeys([*DEFAULT_TAGS, *tags])),
        "base_model": base_model,
        "base_model_relation": base_model_relation,
        "datasets": list(dict.fromkeys(datasets)) or None,
    }
    if eval_results:
        metadata.update(eval_results=list(eval_results), model_name=model_name or folder.name)
    if widget and repo_id is not None:
        examples = write_widget_examples(folder)
        metadata["widget"] = widget_entries(repo_id, examples) or None
        settings = _mask_generation_settings(folder)
        if settings:
            metadata["inference"] = {"parameters": settings}
    metadata.update(extra_metadata or {})
    text = render_model_card(body, **metadata)
    problems = check_model_card(text, folder)
    if problems:
        raise ValueError(f"model card for {folder} fails the Hub's metadata rules: " + "; ".join(problems))
    path = folder / "README.md"
    path.write_text(text, encoding="utf-8")
    return path


def _mask_generation_settings(folder: Path) -> dict | None:
    config = folder / "config.json"
    if not config.is_file():
        return None
    return json.loads(config.read_text(encoding="utf-8")).get("mask_generation") or None


_CARD_FIELDS = ("base_model", "base_model_relation", "license", "license_name", "license_link", "library_name")


def hub_dataset_ids(names: Iterable[str], datasets_repo: str = DATASETS_REPO) -> list[str]:
    """Dataset names as Hub ids: a repository id stays, a bare slug (`bus-bra`) is a config of `datasets_repo`."""
    return list(dict.fromkeys(str(name) if "/" in str(name) else datasets_repo for name in names))


def card_fields_from_text(text: str, datasets_repo: str = DATASETS_REPO) -> tuple[dict, str]:
    """`(write_model_card keyword arguments, body)` of an existing card: its licence, base model, datasets (bare
    slugs become `datasets_repo`), extra tags and model-index; widget and inference parameters are written anew."""
    card = ModelCard(text, ignore_metadata_errors=True)
    data = card.data.to_dict()
    fields = {key: data[key] for key in _CARD_FIELDS if data.get(key) is not None}
    if data.get("datasets"):
        fields["datasets"] = hub_dataset_ids(_as_list(data["datasets"]), datasets_repo)
    tags = [tag for tag in _as_list(data.get("tags")) if tag not in DEFAULT_TAGS]
    if tags:
        fields["tags"] = tags
    if card.data.eval_results:
        fields.update(eval_results=card.data.eval_results, model_name=card.data.model_name)
    return fields, card.text


def hub_id_of(model: str | Path | None) -> str | None:
    """The Hub id of a model given as a Hub id, a folder or a shipped model's name: the id itself, the id the package
    publishes a shipped folder under (`repo_ids.MODEL_REPOS`), else `None` (a local folder with no known Hub
    repository)."""
    from ..inference.default_model import packaged_model_dir

    if model is None:
        return None
    path = Path(model)
    if not path.exists():  # a shipped model by its name (`--init ultrasam-nano-us`) is its folder
        path = packaged_model_dir(str(model)) or path
    if path.is_dir():
        packaged = packaged_model_dir(path.name)
        return MODEL_REPOS.get(path.name) if packaged is not None and path.resolve() == packaged.resolve() else None
    try:
        validate_repo_id(str(model))
    except HFValidationError:
        return None
    return str(model) if "/" in str(model) else None


def base_model_of(init: str | Path | None) -> str | None:
    """`base_model` of a model trained from `init`: its Hub id ([`hub_id_of`]), else the `base_model` its own card
    names (the lineage of a converted or shipped folder), else `None`."""
    exact = hub_id_of(init)
    if exact is not None or init is None or not (Path(init) / "README.md").is_file():
        return exact
    fields, _ = card_fields_from_text((Path(init) / "README.md").read_text(encoding="utf-8"))
    bases = [base for base in _as_list(fields.get("base_model")) if hub_id_of(base)]
    return bases[0] if bases else None


def default_repo_id(folder: str | Path) -> str:
    name = Path(folder).resolve().name
    return MODEL_REPOS.get(name, f"{HUB_NAMESPACE}/{name}")


def write_folder_card(
    folder: str | Path,
    card_text: str | None = None,
    *,
    repo_id: str | None = None,
    results: str | Path | Mapping[str, Any] | None = None,
    model_name: str | None = None,
    training_record: Mapping[str, Any] | None = None,
    **overrides,
) -> Path:
    """The card of a saved model folder (what `scripts/ship_checkpoint.py` and training output use): the metadata
    and body of `card_text` when given (a card with or without front matter), else a generated body
    (`card_texts.trained_model_body`); then filled in from the folder:

    - `base_model` (relation `finetune`) unless the card names one: the model the training started from
      (`training_record["init"]`, [`base_model_of`]), else the Hub lineage of the config's preset
      (`repo_ids.PRESET_BASE_MODELS`);
    - `datasets`: the training datasets as configs of `repo_ids.DATASETS_REPO` unless the card names them;
    - model-index: from `results` (an `ultrasam eval` results.json) for `model_name` (default: the folder name),
      replacing the card's.

    `training_record` is the training configuration (default: the folder's `training_config.json`). `overrides` are
    [`write_model_card`] arguments and win over everything else. Returns the card's path.
    """
    from .card_texts import trained_model_body

    folder = Path(folder)
    repo_id = repo_id or default_repo_id(folder)
    model_name = model_name or folder.resolve().name
    config_path, training_path = folder / "config.json", folder / "training_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8")) if config_path.is_file() else {}
    if training_record is not None:
        training = dict(training_record)
    else:
        training = json.loads(training_path.read_text(encoding="utf-8")) if training_path.is_file() else {}
    adapter_path = folder / "adapter_config.json"
    if card_text is not None:
        fields, body = card_fields_from_text(card_text)
    else:
        from ..models.configuration_ultrasam import UltraSamConfig

        model_config = UltraSamConfig.from_dict(config)
        data_path = folder / "training_data.json"  # written by the trainer: datasets and licences
        training_data = json.loads(data_path.read_text(encoding="utf-8")) if data_path.is_file() else None
        fields, body = (
            {},
            trained_model_body(model_name, repo_id, model_config, training, adapter_path.is_file(), training_data),
        )
    if adapter_path.is_file():
        # an adapter's base is the one its adapter_config.json names, once that is a Hub id
        base = hub_id_of(json.loads(adapter_path.read_text(encoding="utf-8")).get("base_model_name_or_path"))
        fields = {key: value for key, value in fields.items() if key not in ("base_model", "base_model_relation")}
        fields["library_name"] = "peft"
        if base is not None:
            fields.update(base_model=base, base_model_relation="adapter")
    elif "base_model" not in fields:
        base = base_model_of(training.get("init")) or PRESET_BASE_MODELS.get(config.get("preset"))
        if base is not None:
            fields.update(base_model=base, base_model_relation="finetune")
    if "datasets" not in fields and training.get("datasets"):
        slugs = training["datasets"]
        fields["datasets"] = hub_dataset_ids(slugs.split(",") if isinstance(slugs, str) else slugs)
    if results is not None:
        fields.update(eval_results=eval_results_from_eval_json(results, model_name), model_name=model_name)
    return write_model_card(folder, body, repo_id=repo_id, **{**fields, **overrides})


__all__ = [
    "BASE_MODEL_RELATIONS",
    "DEFAULT_TAGS",
    "EVAL_METRICS",
    "LICENSE_FILE",
    "base_model_of",
    "card_fields_from_text",
    "check_model_card",
    "default_repo_id",
    "eval_results_from_eval_json",
    "hub_dataset_ids",
    "hub_id_of",
    "render_model_card",
    "widget_entries",
    "write_folder_card",
    "write_model_card",
    "write_widget_examples",
]
