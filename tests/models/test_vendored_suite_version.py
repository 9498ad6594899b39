"""`make install` pins the versions of `.ci/constraints.txt`; the vendored transformers suite only runs under the
transformers version it was copied from. A `make lock` that moves transformers without re-vendoring would turn the
common tests into one skipped module: this fails instead."""

import configparser
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from transformers_testing import VENDORED_FROM

REPO = Path(__file__).resolve().parents[2]


def pinned_versions() -> dict[str, str]:
    pins = {}
    for line in (REPO / ".ci" / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version.strip()
    return pins


def test_constraints_pin_the_vendored_transformers():
    assert pinned_versions()["transformers"] == VENDORED_FROM, (
        "re-vendor tests/models/transformers_testing/ from the pinned transformers' source distribution"
    )


def test_constraints_satisfy_the_package_ranges():
    setup = configparser.ConfigParser()
    setup.read(REPO / "setup.cfg")
    requirements = [
        Requirement(line)
        for section in (setup["options"]["install_requires"], setup["options.extras_require"]["dev"])
        for line in section.splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    pins = pinned_versions()
    for requirement in requirements:
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} is not pinned in .ci/constraints.txt (run `make lock`)"
        assert requirement.specifier.contains(pins[name], prereleases=True), (requirement, pins[name])
