"""Packaging (pyproject.toml, MANIFEST.in): the licence, type information and fixtures travel
with the wheel, and the sdist holds the tests and fixtures that run against it."""

from __future__ import annotations

import re
import shutil
import site
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import httpx
import pytest

from fullstory_emulator import __version__
from tests.helpers import ROOT, start, stop


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sdist and wheel, built with the test extra's setuptools (offline) from a copy of the
    checkout's files that git would commit: the checkout's own build/ and *.egg-info (an
    editable install's SOURCES.txt) would slip in files pyproject.toml no longer declares."""
    out = tmp_path_factory.mktemp("dist")
    source = tmp_path_factory.mktemp("source")
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=False,
    )
    if listed.returncode == 0:
        for name in filter(None, listed.stdout.decode().split("\0")):
            if (ROOT / name).is_file():  # not a file deleted but not yet committed
                (source / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / name, source / name)
    else:  # an unpacked sdist, not a git checkout
        junk = shutil.ignore_patterns(
            ".git", ".venv", ".*_cache", "build", "dist", "*.egg-info", "__pycache__"
        )
        shutil.copytree(ROOT, source, ignore=junk, dirs_exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "build", "--sdist", "--wheel", "--no-isolation", "--outdir", out],
        cwd=source,
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
    assert {
        "LICENSE",
        "README.md",
        "CHANGELOG.md",
        "mkdocs.yml",
        "pyproject.toml",
        "fullstory_emulator/py.typed",
    } <= inside
    metadata = (root / "PKG-INFO").read_text()
    assert "License-Expression: MIT" in metadata and "License-File: LICENSE" in metadata


def test_wheel_carries_licence_types_and_fixtures(dist):
    (wheel,) = dist.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "fullstory_emulator/py.typed" in names
    packaged = {f"fullstory_emulator/fixtures/{p.name}" for p in (ROOT / "fixtures").glob("*.json")}
    assert packaged <= names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert not any(n.startswith("tests/") for n in names)  # tests ship in the sdist only
    # One import name, the distribution's: a top-level `emulator` (another PyPI project's name)
    # would overwrite, or be overwritten by, that project installed alongside.
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == {"fullstory_emulator"}


@pytest.fixture(scope="module")
def installed(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding the wheel alone (--no-deps, --no-index: offline); its dependencies
    come from this venv's site-packages through a .pth line, which adds the folder but runs
    none of its own .pth files, so this checkout's editable install stays out of it."""
    (wheel,) = dist.glob("*.whl")
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True, timeout=60)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    ours = {sysconfig.get_paths()["purelib"], *site.getsitepackages()}
    (Path(purelib) / "test-dependencies.pth").write_text("\n".join(sorted(ours)) + "\n")
    pip = [sys.executable, "-m", "pip", "--python", str(python), "--disable-pip-version-check"]
    subprocess.run(
        [*pip, "install", "-q", "--no-deps", "--no-index", wheel],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return venv


def test_the_wheel_alone_in_a_fresh_venv_serves_the_api_and_the_console(installed, tmp_path):
    bin_ = installed / "bin"
    where = subprocess.run(
        [bin_ / "python", "-c", "import fullstory_emulator; print(fullstory_emulator.__file__)"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert where.startswith(str(installed))  # the wheel's files, not this checkout's
    for command in ("fullstory-emulator", "fullstory-export"):
        shown = subprocess.run(
            [bin_ / command, "--version"], capture_output=True, text=True, timeout=60
        )
        assert (shown.returncode, shown.stdout) == (0, f"{command} {__version__}\n")
    process, url, _ = start(tmp_path, command=[str(bin_ / "fullstory-emulator")])
    try:
        auth = {"Authorization": "Basic na1.emulator-demo-key"}
        segments = httpx.get(f"{url}/segments/v1", headers=auth, timeout=30)
        assert segments.status_code == 200 and segments.json()["segments"]
        page = httpx.get(f"{url}/__emulator/ui", timeout=30, follow_redirects=True)
        assert page.status_code == 200 and "/__emulator/ui/console.js" in page.text
        for asset, kind in (("console.js", "javascript"), ("console.css", "text/css")):
            served = httpx.get(f"{url}/__emulator/ui/{asset}", timeout=30)
            assert served.status_code == 200 and kind in served.headers["content-type"]
            packaged = ROOT / "fullstory_emulator" / "http" / "console" / "static" / asset
            assert served.content == packaged.read_bytes()
    finally:
        stop(process)


def test_pip_check_finds_every_dependency_of_the_installed_wheel(installed):
    """What `pip install` would have fetched is there: the wheel's metadata and the venv agree."""
    checked = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(installed / "bin" / "python"), "check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_changelog_has_an_unreleased_section_and_the_current_version():
    """Keep a Changelog's shape: the next release's notes first, then the version the code has."""
    headings = re.findall(r"^## \[([^\]]+)\]", (ROOT / "CHANGELOG.md").read_text(), re.M)
    assert headings[:2] == ["Unreleased", __version__]
