"""Where the embedded fixtures live: packaged as `fullstory_emulator.fixtures` when installed, or
the repository's top-level `fixtures/` when the package is imported from a source checkout."""

from __future__ import annotations

from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path


def fixture(name: str) -> Traversable:
    try:
        return resources.files("fullstory_emulator.fixtures").joinpath(name)
    except ModuleNotFoundError:
        return Path(__file__).resolve().parent.parent / "fixtures" / name


# Packaged examples a user names instead of a path: `--keys example`, `--segments example`.
EXAMPLES = {
    "keys": {"example": "keys.json"},
    "segments": {"example": "segments-example.json"},
}


def user_file(kind: str, path: Path) -> Path | Traversable:
    """A `--keys`/`--segments`/`--scenarios` value: a file, or the bare name of a packaged
    example (a name with no directory and no suffix that is not a file here)."""
    if path.exists() or len(path.parts) != 1 or path.suffix:
        return path
    examples = EXAMPLES.get(kind, {})
    packaged = examples.get(path.name)
    if packaged is None:
        known = ", ".join(sorted(examples)) or "none"
        raise ValueError(
            f"--{kind} {path}: no such file, and no packaged example of that name "
            f"(packaged: {known})"
        )
    return fixture(packaged)
