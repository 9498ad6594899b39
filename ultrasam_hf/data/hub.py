"""Publishing built datasets to the Hub, one folder per dataset, only where the licence allows redistribution."""

from pathlib import Path

from .cards import load_registry


def push_to_hub(build_dir, repo_id: str, datasets=None, *, private: bool = False, token=None, registry=None, api=None, dry_run: bool = False) -> dict:
    """Upload `build_dir/<slug>/` (shards + manifest + dataset card) to `repo_id` for each allowed dataset.

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
            skipped[slug] = f"redistribution {registry[slug].redistribution!r} ({registry[slug].license}): {registry[slug].licence_note}".strip(": ")
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
        api.upload_file(repo_id=repo_id, repo_type="dataset", path_or_fileobj=registry[slug].card_path, path_in_repo=f"{slug}/README.md", commit_message=f"Card of {slug}")
    return {"pushed": pushed, "skipped": skipped}
