"""The README and docs/ stand alone: no pointer to development-only files, links that resolve,
and docs/emulated-api.md covering every endpoint the emulator serves as FullStory."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from fullstory_emulator.contract import (
    EVENT_FIELDS,
    FAILURE_STATES,
    INDIVIDUAL_FIELDS,
    OPERATION_TYPES,
)
from fullstory_emulator.errors import GRPC_CODES
from fullstory_emulator.http.openapi import document
from fullstory_emulator.settings import Settings
from tests.helpers import ROOT

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
API = ROOT / "docs" / "emulated-api.md"


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_no_pointer_to_files_a_user_does_not_have(path):
    text = path.read_text()
    assert "../shared" not in text and "CONTRACT.md" not in text


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_relative_links_resolve(path):
    for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", path.read_text()):
        assert (path.parent / target).exists(), f"{path.name} links to missing {target}"


def test_the_readme_links_the_api_reference():
    assert "](docs/emulated-api.md)" in (ROOT / "README.md").read_text()


def test_the_readme_stays_short():
    """What it is, why, the two set-up commands, the quick start and links; the rest is docs/."""
    assert len((ROOT / "README.md").read_text().splitlines()) <= 250


def test_every_page_is_in_the_site_navigation():
    nav = (ROOT / "mkdocs.yml").read_text()
    for page in (ROOT / "docs").glob("*.md"):
        assert f" {page.name}\n" in nav, page.name


def test_the_docs_site_builds_strictly(tmp_path: Path):
    """`mkdocs build --strict`: a broken link, anchor or page fails the build."""
    mkdocs = Path(sys.executable).parent / "mkdocs"
    result = subprocess.run(
        [str(mkdocs), "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "site" / "index.html").exists()
    assert (tmp_path / "site" / "getting-started" / "index.html").exists()


def test_the_api_reference_covers_what_is_served():
    text = API.read_text()
    paths = document(Settings())["paths"]
    for path, item in paths.items():
        for method, operation in item.items():
            if "Emulator control" in operation["tags"]:
                continue
            shown = "/<bucket>/<object>" if path.endswith("/{object}") else path
            assert f"`{method.upper()} {shown}" in text, (method, path)
    for name in (*FAILURE_STATES, *OPERATION_TYPES, *EVENT_FIELDS, *INDIVIDUAL_FIELDS):
        assert f"`{name}`" in text, name
    for status in GRPC_CODES:
        if status not in (409, 504):  # statuses the emulator never answers by itself
            assert f"| {status} |" in text, status
    for header in ("X-Emulator-Fault", "X-Emulator-Now", "Retry-After", "Content-Disposition"):
        assert header in text
