"""Packaged fixtures (fullstory_emulator/resources.py): files a user names by a bare name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fullstory_emulator.resources import EXAMPLES, USER_FILE_LIMIT, fixture, user_file
from tests.helpers import ROOT


def test_bare_names_are_the_packaged_examples():
    keys = user_file("keys", Path("example"))
    assert json.loads(keys.read_text())["keys"][0]["key"] == "na1.emulator-demo-key"
    segments = json.loads(user_file("segments", Path("example")).read_text())
    assert {s["id"] for s in segments["segments"]} == {
        "bigSpenders",
        "newsletterReaders",
        "fewSearchResults",
    }
    for names in EXAMPLES.values():  # every packaged example is in the repository's fixtures
        for packaged in names.values():
            assert fixture(packaged).read_text() == (ROOT / "fixtures" / packaged).read_text()


def test_paths_stay_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "example").write_text("{}")  # a file of that name wins over the example
    assert user_file("keys", Path("example")) == Path("example")
    assert user_file("keys", Path("mine.json")) == Path("mine.json")  # missing: the reader says
    assert user_file("segments", Path("dir/example")) == Path("dir/example")


def test_an_unknown_bare_name_lists_the_examples(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError) as error:
        user_file("segments", Path("exmaple"))
    assert str(error.value) == (
        "--segments exmaple: no such file, and no packaged example of that name (packaged: example)"
    )
    with pytest.raises(ValueError, match=r"\(packaged: none\)"):
        user_file("scenarios", Path("mine"))


@pytest.mark.parametrize("kind", ["keys", "segments", "scenarios"])
def test_a_user_file_that_cannot_be_read_whole_is_refused_before_reading(kind, tmp_path):
    zero = tmp_path / "zero.json"
    zero.symlink_to("/dev/zero")
    with pytest.raises(ValueError, match=rf"--{kind} .*zero.json: not a regular file"):
        user_file(kind, zero)
    with pytest.raises(ValueError, match="not a regular file"):
        user_file(kind, tmp_path)
    huge = tmp_path / "huge.json"
    with huge.open("wb") as file:
        file.truncate(USER_FILE_LIMIT + 1)  # sparse: no disk used
    with pytest.raises(ValueError, match=r"16,777,217 bytes, over the limit of 16,777,216"):
        user_file(kind, huge)
