"""Automatic masks on real ultrasound, with the numbers: the protocol of `tests/hub/test_mask_generation_real.py`
(12 test images each of BUS-BRA, HC18 and USGRA; a hit: a generated mask with IoU >= 0.5 to a ground-truth structure)
printed per dataset instead of asserted.

    python scripts/mask_generation_check.py ultrasam_hf/assets/ultrasam-lite-us --shared-us ../shared/us
"""

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "hub"))

import test_mask_generation_real as protocol  # noqa: E402

from ultrasam_hf.models.pipeline_ultrasam import mask_generation_pipeline  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="model folder")
    parser.add_argument("--shared-us", default=str(REPO.parent / "shared" / "us"), help="the real-data folder")
    args = parser.parse_args(argv)
    generator = mask_generation_pipeline(args.model)
    for reader in (protocol.bus_bra, protocol.hc18, protocol.usgra):
        start = time.time()
        fraction, best = protocol.hit_fraction(generator, reader(Path(args.shared_us)))
        median = sorted(best)[len(best) // 2]
        print(
            f"{reader.__name__}: {fraction:.0%} of {len(best)} images with a mask IoU >= {protocol.MIN_IOU} to a "
            f"structure; median best IoU {median:.2f}; {time.time() - start:.0f} s",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
