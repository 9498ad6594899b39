"""The US-43d data engine: dataset cards -> readers -> verified Parquet shards -> `load_us43d`.

    ultrasam data build bus-bra --raw /data/BUS-BRA --out us43d_build
    ultrasam data build --all --raw-root /data --out us43d_build --num-workers 8

    >>> from ultrasam_hf.data import load_us43d, decode_instance_mask
    >>> train = load_us43d("us43d_build", datasets=["bus-bra"], split="train")
    >>> mask = decode_instance_mask(train[0]["objects"][0])
"""

from .builder import build_all, build_dataset
from .cards import load_anatomy_vocabulary, load_registry
from .hub import push_to_hub
from .instances import decode_instance_mask
from .loading import interleave_by_dataset, load_us43d, mixing_weights, shard_for_node
from .manifest import licence_mix
from .schema import FEATURES


__all__ = [
    "FEATURES",
    "build_all",
    "build_dataset",
    "decode_instance_mask",
    "interleave_by_dataset",
    "licence_mix",
    "load_anatomy_vocabulary",
    "load_registry",
    "load_us43d",
    "mixing_weights",
    "push_to_hub",
    "shard_for_node",
]
