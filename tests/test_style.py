"""The code base stays lint-clean, formatted and strictly typed; running the checks here makes the
README's test command check them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT

TARGETS = [name for name in ("emulator", "tests", "bench") if (ROOT / name).is_dir()]


def tool(name: str) -> str:
    beside = Path(sys.executable).with_name(name)
    command = str(beside) if beside.exists() else shutil.which(name)
    assert command, f"{name} is part of the test extras: pip install -e '.[test]'"
    return command


@pytest.mark.parametrize(
    "check", [["check"], ["format", "--check"]], ids=["ruff check", "ruff format"]
)
def test_ruff_clean(check):
    result = subprocess.run(
        [tool("ruff"), *check, *TARGETS], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_on_the_package():
    result = subprocess.run(
        [tool("mypy"), "--strict", "emulator"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
