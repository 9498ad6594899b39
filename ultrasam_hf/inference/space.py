"""`ultrasam app --write-space DIR`: the files of a Hugging Face Space (Gradio SDK) that runs `ultrasam app`.

The Space gets `app.py` (calls [`~ultrasam_hf.inference.app.launch`]), `requirements.txt` (this package's
dependencies with the `app`, `dicom`, `volumes` and `eval` extras, read from the installed package's metadata), a
`README.md` with the Space's front matter and a copy of the `ultrasam_hf` package itself (with its shipped default
model), so the Space needs nothing that is not on PyPI.
"""

import importlib.metadata
import re
import shutil
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]
DISTRIBUTION = "ultrasam-hf"
SPACE_EXTRAS = ("app", "dicom", "volumes", "eval")

APP_PY = '''"""UltraSam ultrasound segmentation, a Hugging Face Space. Written by `ultrasam app --write-space`."""

from ultrasam_hf.inference.app import launch

launch(model={model!r}, host="0.0.0.0", port=7860)
'''

README = """---
title: UltraSam ultrasound segmentation
emoji: 🩻
colorFrom: blue
colorTo: gray
sdk: gradio
sdk_version: {gradio_version}
app_file: app.py
pinned: false
license: apache-2.0
---

# UltraSam: promptable ultrasound segmentation

Upload an ultrasound image (PNG, JPG, TIF), a DICOM (cine loops too) or a NIfTI / NRRD / MHA volume; click the object
(positive), the background (negative) or two opposite corners of a box; step through the frames and propagate the
mask; export it as PNG, COCO-RLE JSON and NIfTI. Model: {model_name}.

**Research use only. Not a medical device; do not use for diagnosis.** Do not upload identifiable patient data to a
public Space: run `ultrasam app` locally instead (`pip install ultrasam-hf[app]`).
"""


def _requirements_from_setup_cfg(path: Path) -> list[str]:
    import configparser

    config = configparser.ConfigParser()
    config.read(path)
    lines = config.get("options", "install_requires", fallback="").splitlines()
    for extra in SPACE_EXTRAS:
        lines += config.get("options.extras_require", extra, fallback="").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def space_requirements() -> list[str]:
    """This package's requirements with the Space's extras: from `setup.cfg` in a source checkout, else from the
    installed package's metadata."""
    setup_cfg = PACKAGE.parent / "setup.cfg"
    if setup_cfg.is_file():
        return list(dict.fromkeys(_requirements_from_setup_cfg(setup_cfg)))
    try:
        requirements = importlib.metadata.requires(DISTRIBUTION) or []
    except importlib.metadata.PackageNotFoundError as error:
        raise FileNotFoundError(
            f"{DISTRIBUTION} is not installed (pip install -e .): its metadata lists the Space's requirements."
        ) from error
    wanted = []
    for requirement in requirements:
        name, _, marker = requirement.partition(";")
        extra = re.search(r"extra\s*==\s*['\"]([^'\"]+)['\"]", marker)
        if marker.strip() and (extra is None or extra.group(1) not in SPACE_EXTRAS):
            continue
        if name.strip() not in wanted:
            wanted.append(name.strip())
    return wanted


def write_space(folder, model=None) -> Path:
    """Write the Space into `folder` (created; an existing `ultrasam_hf/` copy in it is replaced)."""
    import gradio

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "app.py").write_text(APP_PY.format(model=model))
    (folder / "requirements.txt").write_text("\n".join(space_requirements()) + "\n")
    model_name = f"`{model}`" if model else "the package's default lite model (`ultrasam-lite-us`, CPU)"
    (folder / "README.md").write_text(README.format(gradio_version=gradio.__version__, model_name=model_name))
    target = folder / "ultrasam_hf"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(PACKAGE, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return folder


__all__ = ["space_requirements", "write_space"]
