"""`fullstory-emulator demo` runs the whole workflow against an in-process emulator, absorbs the
staged 429, renews the expired URL, and says so."""

from __future__ import annotations

import gzip
import json
import socket

from fullstory_emulator.testing import demo
from tests.helpers import free_port


def test_demo_runs_to_completion_and_tells_the_story(tmp_path, capsys):
    port = free_port()  # --port: the demo's emulator where the user wants it
    assert demo.main(["--out", str(tmp_path), "--population", "120", "--port", str(port)]) == 0
    captured = capsys.readouterr()
    story = " ".join(captured.out.split())  # undo the console's line wrapping
    assert f"running in-process at http://127.0.0.1:{port}" in story
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


def test_the_demo_does_not_wait_out_fullstorys_refill_and_says_why(tmp_path, capsys):
    """The staged 429 empties the client's estimate of the poll bucket: at FullStory's 2 per
    minute the next poll waited 30 s ("pacing: waiting 30 s"). The demo's emulator refills 2 a
    second and the client is told so."""
    assert demo.main(["--out", str(tmp_path), "--population", "120"]) == 0
    captured = capsys.readouterr()
    story = " ".join(captured.out.split())
    assert "Its rate limit is 2 requests per 1 s per endpoint (FullStory's: 2 per 60 s)" in story
    assert "--rate-limit 2/1,50" in story
    assert "pacing: waiting" not in captured.err  # no wait of a second or more


def test_demo_on_a_port_in_use_says_so(tmp_path, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert demo.main(["--out", str(tmp_path), "--port", str(port)]) == 2
    out = " ".join(capsys.readouterr().out.split())
    assert f"cannot listen on port {port}" in out and "in use" in out
    assert list(tmp_path.iterdir()) == []
