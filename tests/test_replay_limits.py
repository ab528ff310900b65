"""A hostile `--replay` folder, with real files, symlinks and FIFOs: every file of a recording
is read bounded (its real path inside the folder, a regular file, a size limit, a nesting
limit), and each refusal is one line naming the file and the fix. The same folders through the
real command are in tests/e2e/test_replay.py."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fullstory_emulator.instance import Emulator
from fullstory_emulator.recording import (
    EXPORTS_DIR,
    FIELDS,
    LIMITS,
    MANIFEST,
    MAX_DEPTH,
    MAX_LINE_BYTES,
    ROWS,
    SEGMENTS,
    Catalogue,
    FieldProfile,
    Poll,
    RecordedExport,
    Recording,
    RecordingError,
    Timeline,
    deeper_than,
)
from fullstory_emulator.settings import redact_url
from tests.helpers import Harness, harness_factory, small_settings, write_recording

ROW = {"IndvId": 11, "EventStart": "2026-01-05T10:00:00.000Z", "EventType": "navigate"}
ROWS_FILE = "rows.ndjson"


def folder(root: Path, api_url: str = "https://api.fullstory.com") -> Path:
    recorded = RecordedExport(
        segment_id="everyone",
        type="TYPE_EVENT",
        start="2026-01-05T10:00:00Z",
        end="2026-01-05T11:00:00Z",
        file=ROWS_FILE,
        rows=1,
        timeline=Timeline((Poll(1.0, "PENDING", 50),), 2.0, "COMPLETED"),
    )
    return write_recording(
        root,
        segments=[{"id": "everyone", "name": "Everyone", "creator": "", "url": "u://x"}],
        catalogue=Catalogue({"IndvId": FieldProfile("integer", 1, 0.0, minimum=11, maximum=11)}),
        exports=[(recorded, json.dumps(ROW).encode() + b"\n")],
        api_url=api_url,
    )


def outside(tmp_path: Path, name: str, data: bytes) -> Path:
    """A file outside the recording folder (a valid one: only where it is makes it wrong)."""
    (tmp_path / "elsewhere").mkdir(exist_ok=True)
    path = tmp_path / "elsewhere" / name
    path.write_bytes(data)
    return path


def relink(path: Path, target: Path) -> None:
    path.unlink()
    path.symlink_to(target)


def sparse(path: Path, size: int) -> None:
    """`path` made `size` bytes long without writing them (a real file, all zeros)."""
    with path.open("r+b") as file:
        file.truncate(size)


def deep(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


Damage = Callable[[Path, Path], object]  # (the folder, tmp_path)

CASES: dict[str, tuple[str, Damage, str]] = {
    # name: (the file named, the damage, what the message says)
    "manifest-to-dev-zero": (
        MANIFEST,
        lambda root, tmp: relink(root / MANIFEST, Path("/dev/zero")),
        "outside the recording folder",
    ),
    "fields-to-dev-urandom": (
        FIELDS,
        lambda root, tmp: relink(root / FIELDS, Path("/dev/urandom")),
        "outside the recording folder",
    ),
    "rows-to-a-file-outside": (
        f"{EXPORTS_DIR}/{ROWS_FILE}",
        lambda root, tmp: relink(
            root / EXPORTS_DIR / ROWS_FILE,
            outside(tmp, "rows.ndjson", (root / EXPORTS_DIR / ROWS_FILE).read_bytes()),
        ),
        "outside the recording folder",
    ),
    "segments-to-a-file-outside": (
        SEGMENTS,
        lambda root, tmp: relink(
            root / SEGMENTS, outside(tmp, "segments.json", (root / SEGMENTS).read_bytes())
        ),
        "outside the recording folder",
    ),
    "exports-folder-outside": (
        f"{EXPORTS_DIR}/{ROWS_FILE}",
        lambda root, tmp: (
            (root / EXPORTS_DIR).rename(tmp / "moved"),
            (root / EXPORTS_DIR).symlink_to(tmp / "moved"),
        ),
        "outside the recording folder",
    ),
    "segments-a-fifo": (
        SEGMENTS,
        lambda root, tmp: ((root / SEGMENTS).unlink(), os.mkfifo(root / SEGMENTS)),
        "a FIFO",
    ),
    "rows-a-fifo": (
        f"{EXPORTS_DIR}/{ROWS_FILE}",
        lambda root, tmp: (
            (root / EXPORTS_DIR / ROWS_FILE).unlink(),
            os.mkfifo(root / EXPORTS_DIR / ROWS_FILE),
        ),
        "a FIFO",
    ),
    "fields-a-folder": (
        FIELDS,
        lambda root, tmp: ((root / FIELDS).unlink(), (root / FIELDS).mkdir()),
        "a folder",
    ),
    "manifest-too-large": (
        MANIFEST,
        lambda root, tmp: sparse(root / MANIFEST, LIMITS[MANIFEST] + 1),
        f"over the limit of {LIMITS[MANIFEST]:,} bytes",
    ),
    "rows-too-large": (
        f"{EXPORTS_DIR}/{ROWS_FILE}",
        lambda root, tmp: sparse(root / EXPORTS_DIR / ROWS_FILE, LIMITS[ROWS] + 1),
        f"over the limit of {LIMITS[ROWS]:,} bytes",
    ),
    "rows-line-too-long": (
        f"{EXPORTS_DIR}/{ROWS_FILE}",
        lambda root, tmp: (root / EXPORTS_DIR / ROWS_FILE).write_bytes(
            b'{"a":1}\n{"a":"' + b"x" * MAX_LINE_BYTES + b'"}\n'
        ),
        f"line 2 is longer than {MAX_LINE_BYTES:,} bytes",
    ),
    "manifest-100000-deep": (
        MANIFEST,
        lambda root, tmp: (root / MANIFEST).write_bytes(deep(100_000)),
        f"nested deeper than {MAX_DEPTH} levels",
    ),
    "fields-just-too-deep": (
        FIELDS,
        lambda root, tmp: (root / FIELDS).write_bytes(
            b'{"fields": {}, "x": ' + deep(MAX_DEPTH) + b"}"
        ),
        f"nested deeper than {MAX_DEPTH} levels",
    ),
    "rows-100000-deep": (
        f"{EXPORTS_DIR}/{ROWS_FILE}",
        lambda root, tmp: (root / EXPORTS_DIR / ROWS_FILE).write_bytes(
            b'{"a":1}\n{"a":' + deep(100_000) + b"}\n"
        ),
        f"line 2 is nested deeper than {MAX_DEPTH} levels",
    ),
    "manifest-not-json": (
        MANIFEST,
        lambda root, tmp: (root / MANIFEST).write_bytes(b"root:x:0:0::/root:/bin/sh\n"),
        "not JSON",
    ),
    "fields-not-utf8": (
        FIELDS,
        lambda root, tmp: (root / FIELDS).write_bytes(b'{"fields": {"\xff": 1}}'),
        "not JSON",
    ),
    "segments-missing": (
        SEGMENTS,
        lambda root, tmp: (root / SEGMENTS).unlink(),
        "missing",
    ),
    "rows-missing": (
        f"{EXPORTS_DIR}/{ROWS_FILE}",
        lambda root, tmp: (root / EXPORTS_DIR / ROWS_FILE).unlink(),
        "missing",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_hostile_folder_is_refused_in_one_line_naming_the_file(tmp_path, case):
    named, damage, says = CASES[case]
    root = folder(tmp_path / "org")
    damage(root, tmp_path)
    with pytest.raises(RecordingError) as caught:
        Emulator.build(small_settings(replay=root))
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{root / named}: "), message
    assert says in message, message
    assert "; " in message  # and then the fix


def test_a_folder_name_cannot_break_the_line_or_write_to_the_terminal(tmp_path):
    root = folder(tmp_path / "org\n\x1b[2Jnext")
    (root / FIELDS).unlink()
    with pytest.raises(RecordingError) as caught:
        Recording.load(root)
    message = str(caught.value)
    assert message.splitlines() == [message] and "\x1b" not in message
    assert "org\\n\\x1b[2Jnext/fields.json: missing" in message


def test_a_device_inside_the_folder_is_refused_before_it_is_opened(tmp_path):
    root = folder(tmp_path / "org")
    (root / FIELDS).unlink()
    try:
        os.mknod(root / FIELDS, 0o600 | 0o020000, os.makedev(1, 5))  # a character device: zero
    except (PermissionError, AttributeError):
        pytest.skip("cannot make a device node here")
    with pytest.raises(RecordingError) as caught:
        Recording.load(root)
    assert str(caught.value).startswith(f"{root / FIELDS}: is a character device, not a file")


def test_links_that_stay_inside_the_folder_load(tmp_path):
    """A symlinked folder, and a file linked to another inside it, are fine: only the real path
    leaving the folder is refused."""
    real = folder(tmp_path / "org")
    (real / "fields-v2.json").write_bytes((real / FIELDS).read_bytes())
    relink(real / FIELDS, Path("fields-v2.json"))
    (tmp_path / "link").symlink_to(real)
    recording = Recording.load(tmp_path / "link")
    assert list(recording.catalogue.fields) == ["IndvId"]
    Emulator.build(small_settings(replay=tmp_path / "link"))


def test_just_under_the_limits_loads(tmp_path):
    root = folder(tmp_path / "org")
    fields = json.loads((root / FIELDS).read_bytes())
    nested: object = []
    for _ in range(MAX_DEPTH - 5):  # in the catalogue, "fields", "IndvId", "values" and [...]
        nested = [nested]
    fields["fields"]["IndvId"]["values"] = [nested]
    assert deeper_than(fields, MAX_DEPTH - 1) and not deeper_than(fields, MAX_DEPTH)
    (root / FIELDS).write_text(json.dumps(fields))
    line = json.dumps({**ROW, "long": "x" * (MAX_LINE_BYTES - 200)})
    (root / EXPORTS_DIR / ROWS_FILE).write_text(line + "\n")
    Emulator.build(small_settings(replay=root))


@pytest.fixture
def make_harness() -> Iterator[Callable[..., Harness]]:
    yield from harness_factory()


def test_a_rows_file_swapped_after_the_start_is_not_read_by_a_download(
    make_harness, tmp_path, caplog
):
    """A download opens the rows file as the start did: a link out of the folder put there
    since is refused (a storage 500 that shows no local path, one line in the log)."""
    root = folder(tmp_path / "org")
    h = make_harness(replay=root)
    rows = root / EXPORTS_DIR / ROWS_FILE
    secret = outside(tmp_path, "secret.ndjson", b'{"secret": "s3cret"}\n')
    relink(rows, secret)
    op = h.finish(
        h.create(timeRange={"start": "2026-01-05T10:00:00Z", "end": "2026-01-05T11:00:00Z"})
    )
    assert op["state"] == "COMPLETED", op
    response = h.client.get(h.location(op["results"]["searchExportId"]))
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("application/xml")
    assert "<Code>InternalError</Code>" in response.text
    assert "s3cret" not in response.text and str(tmp_path) not in response.text
    logged = [
        r.getMessage() for r in caplog.records if "outside the recording folder" in r.getMessage()
    ]
    assert logged and logged[0].startswith(f"{rows}: leads to {secret}")


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:s3cret@api.example.com/x", "https://***@api.example.com/x"),
        ("https://na1.s3cret@api.example.com", "https://***@api.example.com"),
        ("https://na1.s3cret:@api.example.com", "https://***@api.example.com"),
        ("http://api.example.com:8080/a@b", "http://api.example.com:8080/a@b"),
        ("https://api.example.com/?token=s3cret&a=1", "https://api.example.com/?token=***&a=1"),
        ("postgresql://emu:s3cret@db/x", "postgresql://emu:***@db/x"),
    ],
)
def test_credentials_in_a_url_are_never_shown(url, shown):
    assert redact_url(url) == shown


def test_the_banner_hides_the_credentials_of_the_recorded_api_url(tmp_path, capsys):
    from fullstory_emulator import cli

    root = folder(tmp_path / "org", api_url="https://user:s3cret@api.example.com")
    settings = small_settings(replay=root, public_url="https://admin:pw2@emulator.example.com")
    cli._banner(settings, None, Recording.load(root))
    out = capsys.readouterr().out
    assert "recorded from https://***@api.example.com at" in out
    assert "https://***@emulator.example.com" in out
    assert "s3cret" not in out and "user:" not in out and "pw2" not in out and "admin" not in out
