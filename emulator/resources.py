"""Where the embedded fixtures live: packaged as `emulator.fixtures` when installed, or the
repository's top-level `fixtures/` when the package is imported from a source checkout."""

from __future__ import annotations

from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path


def fixture(name: str) -> Traversable:
    try:
        return resources.files("emulator.fixtures").joinpath(name)
    except ModuleNotFoundError:
        return Path(__file__).resolve().parent.parent / "fixtures" / name
