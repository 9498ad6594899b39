"""Publishing built datasets to the Hub, one folder per dataset, only where the licence allows redistribution; the
root dataset card that makes a build folder (or the Hub repository) load with `load_dataset(path)` (every dataset)
and `load_dataset(path, "<slug>")` (one dataset)."""

from pathlib import Path

import yaml

from .cards import load_registry
from .loading import built_datasets
from .schema import ANATOMY_VOCABULARY, SPLITS

ROOT_CARD = "README.md"
LICENCES_FILE = "LICENSE.md"
ALL_CONFIG = "all"


def root_card(
    build_dir, datasets=None, registry=None, pretty_name: str = "US-43d (ultrasam-hf build)"
) -> tuple[str, str]:
    """`(README.md, LICENSE.md)` texts of a build folder's root: a `configs` entry per dataset slug (its splits'
    shards, `<slug>/<split>/*.parquet`, so the `.parquet.json` sidecars and `manifest.json` are never read as data),
    plus a default `all` config of every listed dataset; the licence of each dataset in `LICENSE.md`."""
    build_dir = Path(build_dir)
    registry = registry if registry is not None else load_registry(strict=False)
    slugs = sorted(datasets or built_datasets(build_dir))
    missing = [slug for slug in slugs if not any((build_dir / slug).glob("*/*.parquet"))]
    if missing or not slugs:
        raise ValueError(f"dataset(s) {missing or slugs} have no shards in {build_dir}")
    splits = {slug: [name for name in SPLITS if any((build_dir / slug / name).glob("*.parquet"))] for slug in slugs}
    configs = [
        {
            "config_name": ALL_CONFIG,
            "default": True,
            "data_files": [
                {"split": name, "path": [f"{slug}/{name}/*.parquet" for slug in slugs if name in splits[slug]]}
                for name in SPLITS
                if any(name in splits[slug] for slug in slugs)
            ],
        }
    ] + [
        {
            "config_name": slug,
            "data_files": [{"split": name, "path": f"{slug}/{name}/*.parquet"} for name in splits[slug]],
        }
        for slug in slugs
    ]
    metadata = {
        "pretty_name": pretty_name,
        "license": "other",
        "license_name": "per-dataset",
        "license_link": LICENCES_FILE,
        "task_categories": ["image-segmentation"],
        "tags": ["ultrasound", "medical-imaging", "segmentation", "ultrasam"],
        "configs": configs,
    }
    rows = []
    for slug in slugs:
        spec = registry.get(slug)
        licence = spec.license if spec else "unknown (no dataset card)"
        source = spec.source if spec else ""
        rows.append(f"| `{slug}` | {spec.pretty_name if spec else slug} | `{licence}` | {source} |")
    table = "\n".join(rows)
    readme = f"""---
{yaml.safe_dump(metadata, sort_keys=False).strip()}
---

# {pretty_name}

Public ultrasound segmentation datasets converted by `ultrasam-hf` (`ultrasam data build`) into one schema: one row
per image, its instance masks as COCO RLE with category, anatomy and box. Each dataset is a config; `{ALL_CONFIG}`
(the default) holds them all. `<slug>/manifest.json` records how each was built, `<slug>/README.md` is its card.

- `image`: the ultrasound image; `instance_map`: the instances as a palette PNG (pixel value k = the k-th object,
  0 = background, a later object on top where two overlap; the RLE masks are the reference), coloured in the viewer.
- `objects`: per instance `mask` (COCO RLE), `bbox` (`[x_min, y_min, x_max, y_max]`), `area`, `category` (the
  dataset's own name), `anatomy` (a `ClassLabel` of the {len(ANATOMY_VOCABULARY)}-term anatomy vocabulary shared by every
  config), `class_label` (e.g. benign / malignant, or null).
- `dataset`, `image_id`, `group_id` (patient or scan: splits never share one), `frame_index`, `split`, `height`,
  `width`, `pixel_spacing_mm`, `license`, `source_files`.

```python
from datasets import load_dataset

everything = load_dataset("<this repository or build folder>")
one = load_dataset("<this repository or build folder>", "{slugs[0]}", split="train")
```

| config | dataset | licence | source |
|---|---|---|---|
{table}

Each dataset keeps its own licence ({LICENCES_FILE}); cite the datasets you use.
"""
    licences = f"""# Licences

Every dataset of this repository keeps the licence its authors gave it:

| config | dataset | licence | source |
|---|---|---|---|
{table}
"""
    return readme, licences


def write_root_card(build_dir, datasets=None, registry=None) -> Path:
    """Write [`root_card`]'s `README.md` and `LICENSE.md` into `build_dir`; returns the card's path."""
    readme, licences = root_card(build_dir, datasets, registry)
    (Path(build_dir) / LICENCES_FILE).write_text(licences, encoding="utf-8")
    path = Path(build_dir) / ROOT_CARD
    path.write_text(readme, encoding="utf-8")
    return path


def push_to_hub(
    build_dir,
    repo_id: str,
    datasets=None,
    *,
    private: bool = False,
    token=None,
    registry=None,
    api=None,
    dry_run: bool = False,
) -> dict:
    """Upload `build_dir/<slug>/` (shards + manifest + dataset card) to `repo_id` for each allowed dataset, and the
    root card ([`root_card`]) of the pushed datasets.

    Datasets whose card says `redistribution` is not "allowed" (forbidden or unknown) are not uploaded: they are
    returned under "skipped" with the reason, so users rebuild them locally from their own download.

    Returns: {"pushed": [slugs], "skipped": {slug: reason}}.
    """
    build_dir = Path(build_dir)
    registry = registry or load_registry(strict=False)
    built = sorted(p.name for p in build_dir.iterdir() if (p / "manifest.json").is_file())
    slugs = sorted(datasets or built)
    pushed, skipped = [], {}
    for slug in slugs:
        if slug not in built:
            skipped[slug] = f"not built in {build_dir}"
        elif slug not in registry:
            skipped[slug] = "no valid dataset card"
        elif registry[slug].redistribution != "allowed":
            skipped[slug] = (
                f"redistribution {registry[slug].redistribution!r} ({registry[slug].license}): {registry[slug].licence_note}".strip(
                    ": "
                )
            )
        else:
            pushed.append(slug)
    if dry_run or not pushed:
        return {"pushed": pushed, "skipped": skipped}
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi(token=token)
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    for slug in pushed:
        api.upload_folder(
            repo_id=repo_id,
            repo_type="dataset",
            folder_path=str(build_dir / slug),
            path_in_repo=slug,
            allow_patterns=["*.parquet", "manifest.json"],
            commit_message=f"Add {slug} ({registry[slug].license})",
        )
        api.upload_file(
            repo_id=repo_id,
            repo_type="dataset",
            path_or_fileobj=registry[slug].card_path,
            path_in_repo=f"{slug}/README.md",
            commit_message=f"Card of {slug}",
        )
    readme, licences = root_card(build_dir, pushed, registry)
    for name, text in ((LICENCES_FILE, licences), (ROOT_CARD, readme)):
        api.upload_file(
            repo_id=repo_id,
            repo_type="dataset",
            path_or_fileobj=text.encode(),
            path_in_repo=name,
            commit_message=f"Root {name}",
        )
    return {"pushed": pushed, "skipped": skipped}
