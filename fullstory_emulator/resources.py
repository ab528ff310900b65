"""Where the embedded fixtures live: packaged as `fullstory_emulator.fixtures` when installed, or
the repository's top-level `fixtures/` when the package is imported from a source checkout."""

from __future__ import annotations

import stat
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

# A --keys/--segments/--scenarios file is read whole at start: a size no real one nears (the
# packaged examples are a few KB), so a mistyped /dev/zero or a log file stops at once.
USER_FILE_LIMIT = 16 * 1024 * 1024


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
    if path.exists():
        _check_readable(kind, path)
        return path
    if len(path.parts) != 1 or path.suffix:
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


def _check_readable(kind: str, path: Path) -> None:
    """Refuse what reading whole would hang on or fill memory with: a device, a FIFO, a folder
    or a file over USER_FILE_LIMIT (a symlink is judged by what it points to)."""
    info = path.stat()
    if not stat.S_ISREG(info.st_mode):
        raise ValueError(f"--{kind} {path}: not a regular file (a JSON file is expected)")
    if info.st_size > USER_FILE_LIMIT:
        raise ValueError(
            f"--{kind} {path}: {info.st_size:,} bytes, over the limit of {USER_FILE_LIMIT:,} "
            "bytes for this file"
        )
