"""The code base stays lint-clean, formatted and strictly typed; running the checks here makes the
README's test command check them."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.helpers import ROOT

TARGETS = [name for name in ("fullstory_emulator", "tests", "bench") if (ROOT / name).is_dir()]


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
    """From pyproject's [tool.mypy] alone, as an editor runs it: strict, on the package."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["mypy"]
    assert config["strict"] is True and config["packages"] == ["fullstory_emulator"]
    result = subprocess.run([tool("mypy")], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success: no issues found in" in result.stdout
