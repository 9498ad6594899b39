"""The US-43d data engine: dataset cards -> readers -> verified Parquet shards -> `load_us43d`.

ultrasam data build bus-bra --raw /data/BUS-BRA --out us43d_build
ultrasam data build --all --raw-root /data --out us43d_build --num-workers 8

>>> from ultrasam_hf.data import load_us43d, decode_instance_mask
>>> train = load_us43d("us43d_build", datasets=["bus-bra"], split="train")
>>> mask = decode_instance_mask(train[0]["objects"][0])
"""

from .cards import load_anatomy_vocabulary, load_registry
from .hub import push_to_hub
from .instances import decode_instance_mask, instance_ids
from .loading import (
    decode_row,
    decoded_rows,
    interleave_by_dataset,
    load_rows,
    load_us43d,
    mixing_weights,
    shard_for_node,
)
from .manifest import licence_mix, training_licence_mix
from .schema import ANATOMY, ANATOMY_VOCABULARY, FEATURES, anatomy_name


def __getattr__(name):
    # The builder's readers need the data extras (OpenCV, h5py, pycocotools, SimpleITK): imported on first use, so
    # that reading shards and the cards works with the core install.
    if name in ("build_all", "build_dataset"):
        from . import builder

        return getattr(builder, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ANATOMY",
    "ANATOMY_VOCABULARY",
    "FEATURES",
    "anatomy_name",
    "build_all",
    "build_dataset",
    "decode_instance_mask",
    "decode_row",
    "decoded_rows",
    "instance_ids",
    "interleave_by_dataset",
    "licence_mix",
    "training_licence_mix",
    "load_anatomy_vocabulary",
    "load_registry",
    "load_rows",
    "load_us43d",
    "mixing_weights",
    "push_to_hub",
    "shard_for_node",
]
