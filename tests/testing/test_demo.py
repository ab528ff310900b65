"""`fullstory-emulator demo` runs the whole workflow against an in-process emulator, absorbs the
staged 429, renews the expired URL, and says so."""

from __future__ import annotations

import gzip
import json

from emulator.testing import demo


def test_demo_runs_to_completion_and_tells_the_story(tmp_path, capsys):
    assert demo.main(["--out", str(tmp_path), "--population", "120"]) == 0
    captured = capsys.readouterr()
    story = " ".join(captured.out.split())  # undo the console's line wrapping
    assert "429 Too Many Requests" in story and "Retry-After 1 s" in story
    assert "400 ExpiredToken" in story and "renewed URL" in story
    assert "downloads answered 400 then 200" in story
    assert "COMPLETED 100%" in story and "a sample row:" in story
    files = list(tmp_path.iterdir())
    assert len(files) == 1 and files[0].name.endswith(".ndjson.gz")
    rows = gzip.decompress(files[0].read_bytes()).decode().splitlines()
    assert rows and json.loads(rows[0])["EventType"]
    assert f"{len(rows):,} rows" in story
    assert "100%" in captured.err  # the CLI's progress bar
