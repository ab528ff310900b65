"""Packaging (pyproject.toml, MANIFEST.in): the licence, type information and fixtures travel
with the wheel, and the sdist holds the tests and fixtures that run against it."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.helpers import ROOT


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sdist and wheel, built from the checkout with the test extra's setuptools (offline)."""
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--sdist", "--wheel", "--no-isolation", "--outdir", out],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=300,
    )
    return out


def _tracked(*folders: str) -> set[str]:
    """Files of the checkout under `folders`, as they should appear in the sdist."""
    found = set()
    for folder in folders:
        for path in (ROOT / folder).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                found.add(path.relative_to(ROOT).as_posix())
    return found


def test_sdist_holds_the_tests_and_fixtures(dist, tmp_path):
    (sdist,) = dist.glob("*.tar.gz")
    with tarfile.open(sdist) as archive:
        archive.extractall(tmp_path, filter="data")
    (root,) = tmp_path.iterdir()
    inside = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    assert _tracked("tests", "fixtures", "docs") <= inside
    assert {"LICENSE", "README.md", "mkdocs.yml", "pyproject.toml", "emulator/py.typed"} <= inside
    metadata = (root / "PKG-INFO").read_text()
    assert "License-Expression: MIT" in metadata and "License-File: LICENSE" in metadata


def test_wheel_carries_licence_types_and_fixtures(dist):
    (wheel,) = dist.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "emulator/py.typed" in names
    packaged = {f"emulator/fixtures/{p.name}" for p in (ROOT / "fixtures").glob("*.json")}
    assert packaged <= names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert not any(n.startswith("tests/") for n in names)  # tests ship in the sdist only
