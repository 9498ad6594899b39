"""Markdown bodies of the model cards the package writes (metadata: `model_card.py`)."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from typing import Any


def usage_section(repo_id: str, multimask_output: bool = True, adapter: bool = False) -> str:
    """`## Use`: with ultrasam-hf, and with transformers alone (the repository's own code, `trust_remote_code`)."""
    if adapter:
        return f"""## Use

A PEFT adapter: its base model is `base_model` above. With `peft` and `transformers` (no `ultrasam-hf` needed):

```python
from peft import AutoPeftModel

model = AutoPeftModel.from_pretrained("{repo_id}", trust_remote_code=True)
```
"""
    multimask = "" if multimask_output else ", multimask_output=False"
    return f"""## Use

With `ultrasam-hf` (`pip install ultrasam-hf`):

```python
from ultrasam_hf import UltraSamPredictor

predictor = UltraSamPredictor.from_pretrained("{repo_id}")
predictor.set_image("scan.png")  # PNG/JPEG, 16-bit, DICOM (with pydicom), cine: one image per frame
masks, scores, _ = predictor.predict(boxes=[x0, y0, x1, y1])  # or points=[[x, y]]
```

With `transformers` alone, running this repository's own code:

```python
from transformers import AutoModel, AutoProcessor, pipeline

model = AutoModel.from_pretrained("{repo_id}", trust_remote_code=True)
processor = AutoProcessor.from_pretrained("{repo_id}", trust_remote_code=True)
inputs = processor(images="scan.png", input_boxes=[[[x0, y0, x1, y1]]], return_tensors="pt")
outputs = model(**inputs{multimask})
masks = processor.post_process_masks(outputs.pred_masks, inputs["original_sizes"], inputs["reshaped_input_sizes"])

# automatic masks with this checkpoint's settings (`mask_generation` in config.json)
generator = pipeline("mask-generation", model="{repo_id}", trust_remote_code=True)
result = generator("scan.png")
```
"""


def training_data_section(mix: Mapping[str, Any]) -> str:
    """`## Training data`: images per dataset with its licence, and the total per licence (`training_data.json`,
    `ultrasam_hf.data.manifest.training_licence_mix`)."""
    rows = [
        f"| {slug} | {entry['rows']:,} | `{entry['license']}` | {entry['redistribution']} |"
        for slug, entry in mix["datasets"].items()
    ]
    totals = "; ".join(
        f"`{licence}` {entry['rows']:,} images ({', '.join(entry['datasets'])})"
        for licence, entry in mix["licences"].items()
    )
    table = "\n".join(rows)
    return f"""## Training data

| dataset | training images | licence | redistribution |
|---|---|---|---|
{table}

Licence mix: {totals}. Each dataset's licence binds its users; cite the datasets (their cards in `dataset_cards/`).
"""


def trained_model_body(
    name: str,
    repo_id: str,
    config,
    training_config: Mapping[str, Any] | None = None,
    adapter: bool = False,
    training_data: Mapping[str, Any] | None = None,
) -> str:
    """Card body of a training output (`ultrasam_hf.training.variants.export_model`); `training_data` (the folder's
    `training_data.json`) adds the per-dataset licence table."""
    record = dict(training_config or {})
    facts = [f"- Architecture: UltraSam `{config.preset or 'custom'}` preset, preprocessing `{config.preprocessing}`"]
    for key, label in (
        ("variant", "Fine-tuning variant"),
        ("init", "Initial weights"),
        ("datasets", "Training datasets (slugs of the US-43d build)"),
        ("max_steps", "Steps"),
        ("learning_rate", "Learning rate"),
    ):
        if record.get(key) not in (None, ""):
            facts.append(f"- {label}: `{record[key]}`")
    facts = "\n".join(facts)
    kind = "PEFT adapter of an UltraSam model" if adapter else "UltraSam model"
    return f"""# {name}

{kind} trained with `ultrasam-hf` (UltraSam: Meyer et al., IJCARS 2026, a SAM-style ultrasound foundation model).
`training_config.json` holds every training setting.

{facts}

**Research use only. Not a medical device; do not use for diagnosis.**

{usage_section(repo_id, bool(config.multimask_output_default), adapter)}
{training_data_section(training_data) if training_data else ""}"""


def licence_terms(model_name: str, base_weights: str, base_licence: str, dataset_slugs) -> str:
    """`LICENSE.md` of a model fine-tuned from `base_weights` (under `base_licence`) on the datasets `dataset_slugs`:
    the weights' licence, and the training datasets' licences (from their cards) with their attribution duty."""
    from ..data.cards import load_registry

    registry = load_registry(strict=False)
    rows = []
    for slug in dataset_slugs:
        spec = registry.get(slug)
        if spec is None:
            raise ValueError(f"no dataset card for {slug!r}: its licence cannot be stated")
        rows.append(f"| {spec.pretty_name} | `{spec.license}` | {spec.source} |")
    table = "\n".join(rows)
    weights = textwrap.fill(
        f"The weights of this repository were fine-tuned from {base_weights}, released under the {base_licence}; "
        "the same licence applies to these weights.",
        width=116,
        break_long_words=False,
        break_on_hyphens=False,
    )
    return f"""# {model_name}: terms of use

{weights}

They were trained on the following public ultrasound datasets. Their licences require attribution: cite them (see
the model card) when you use or redistribute the model.

| dataset | licence | source |
|---|---|---|
{table}

Research use only: the model is not a medical device and must not be used for diagnosis.
"""


__all__ = ["licence_terms", "trained_model_body", "training_data_section", "usage_section"]
