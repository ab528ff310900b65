"""The code base stays `ruff` clean; running it here makes the README's test command check it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.helpers import ROOT


def test_ruff_clean():
    ruff = Path(sys.executable).with_name("ruff")
    command = str(ruff) if ruff.exists() else shutil.which("ruff")
    assert command, "ruff is part of the test extras: pip install -e '.[test]'"
    targets = [name for name in ("emulator", "tests", "bench") if (ROOT / name).is_dir()]
    result = subprocess.run([command, "check", *targets], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
