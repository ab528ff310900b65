"""Record and replay across real processes, as a user runs them: emulator A stands in for
FullStory (one seed, a segments file of our own); the `fullstory-emulator record` command
records it twice, as served (`--no-scrub`) and scrubbed; A stops; emulator B, with another seed,
replays each folder (`--replay DIR`) and is checked through its HTTP API alone: the segments,
the recorded window byte for byte, the org's shape outside it, no personal value after
scrubbing, and the recorded timeline."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from fullstory_emulator.client.scrub import EMAIL
from fullstory_emulator.world import CUSTOM_VARS
from tests.helpers import emulator_command, start, stop

SEED_A, SEED_B = 11, 12  # B's own world is not A's: what B serves of A's came from the folder
NOW = "2026-03-01T12:00:00Z"  # both emulators' clocks start here
WINDOW = ("2026-02-28T12:00:00Z", NOW)  # recorded: `--window 1d --end NOW`
DAY_BEFORE = ("2026-02-27T12:00:00Z", "2026-02-28T12:00:00Z")  # outside it
WORLD = ["--start-time", NOW, "--population", "150"]
OWN_SEGMENT = {
    "id": "clickersAndCo",
    "name": "Clicked something & <more>",
    "creator": "dana.scully@acme-outfitters.example",
    "created": "2026-01-05T10:00:00Z",
    "events": [{"EventType": "click"}],
}  # clicks only: the org's rows carry no custom event, so no `evt_*` variable
KEYS = {"raw": "na1.rr-recorder-raw", "scrubbed": "na1.rr-recorder-scrubbed"}
CHECK_KEY = "na1.rr-checker"
PERSONAL = ("UserEmail", "UserDisplayName", "UserId", "UserAppKey", "PageIp", "PageLatLong")
SHOP_VARS = {name for names in CUSTOM_VARS.values() for name in names}
JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string"}


@dataclass
class Export:
    """One export run through the API: each poll's (state, pct), and the file, gunzipped."""

    polls: list[tuple[str, int]]
    data: bytes

    @property
    def rows(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.data.splitlines()]


def export(base: str, segment: str, window: tuple[str, str], pause: float = 0.0) -> Export:
    """Create an NDJSON event export of `segment` over `window`, poll it every `pause` seconds
    until it finishes, locate it and download it."""
    body = {
        "segmentId": segment,
        "type": "TYPE_EVENT",
        "format": "FORMAT_NDJSON",
        "timeRange": {"start": window[0], "end": window[1]},
    }
    auth = {"Authorization": f"Basic {CHECK_KEY}"}
    with httpx.Client(base_url=base, headers=auth, timeout=30) as api:
        created = api.post("/segments/v1/exports", json=body)
        assert created.status_code == 200, created.text
        operation_id = created.json()["operationId"]
        polls: list[tuple[str, int]] = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            answer = api.get(f"/operations/v1/{operation_id}")
            assert answer.status_code == 200, answer.text
            op = answer.json()
            polls.append((op["state"], op["estimatePctComplete"]))
            if op["state"] != "PENDING":
                break
            time.sleep(pause)
        assert op["state"] == "COMPLETED", op
        results = api.get(f"/search/v1/exports/{op['results']['searchExportId']}/results")
        download = httpx.get(results.json()["location"], timeout=30)
        assert download.status_code == 200, download.text
        return Export(polls, gzip.decompress(download.content))


def segments(base: str) -> list[dict[str, Any]]:
    auth = {"Authorization": f"Basic {CHECK_KEY}"}
    answer = httpx.get(f"{base}/segments/v1", params={"limit": 100}, headers=auth, timeout=10)
    assert answer.status_code == 200, answer.text
    assert "nextPaginationToken" not in answer.json()
    listed: list[dict[str, Any]] = answer.json()["segments"]
    return listed


@dataclass
class Org:
    """What A served, and the two folders recorded from it."""

    segments: list[dict[str, Any]]
    served: bytes  # A's file (gunzipped) for the recorded request
    folders: dict[str, Path]  # "raw", "scrubbed"
    stderr: str  # both recordings' progress


@dataclass
class Replay:
    """Emulator B replaying one folder, and what it served."""

    folder: Path
    segments: list[dict[str, Any]]
    inside: Export  # the recorded window
    outside: Export  # the day before it
    again: Export  # the recorded window once more
    fields: dict[str, Any]  # the folder's fields.json


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> Org:
    """A, recorded twice by the command (each run with a key of its own, from the
    environment), and A's own answer to the recorded request; A has stopped when it returns."""
    root = tmp_path_factory.mktemp("record-replay")
    segments_file = root / "segments.json"
    segments_file.write_text(json.dumps({"segments": [OWN_SEGMENT]}), encoding="utf-8")
    (root / "a").mkdir()
    process, base, _ = start(
        root / "a",
        "--seed", str(SEED_A), "--segments", str(segments_file), *WORLD,
        "--export-duration", "1", "--export-duration-per-million", "0",
    )  # fmt: skip
    try:
        folders, stderr = {}, ""
        for name, extra in (("raw", ["--no-scrub"]), ("scrubbed", [])):
            folders[name] = root / name
            env = {k: v for k, v in os.environ.items() if not k.startswith("FULLSTORY_")}
            env["FULLSTORY_API_KEY"] = KEYS[name]
            result = subprocess.run(
                [
                    *emulator_command(), "record", "--out", str(folders[name]),
                    "--api-url", base, "--segment", OWN_SEGMENT["id"],
                    "--window", "1d", "--end", NOW, "--poll-interval", "0.1", *extra,
                ],
                env=env, capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            assert result.returncode == 0, result.stderr
            stderr += result.stderr
        served = export(base, OWN_SEGMENT["id"], WINDOW, pause=0.1).data  # A's rate limit
        return Org(segments(base), served, folders, stderr)
    finally:
        stop(process)


@pytest.fixture(scope="module")
def replays(org: Org, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Replay]:
    """B replaying each folder, one after the other (A has stopped)."""
    found = {}
    for name, folder in org.folders.items():
        logs = tmp_path_factory.mktemp(f"b-{name}")
        args = ["--seed", str(SEED_B), "--replay", str(folder), "--rate-limit", "off", *WORLD]
        process, base, _ = start(logs, *args)
        try:
            found[name] = Replay(
                folder=folder,
                segments=segments(base),
                inside=export(base, OWN_SEGMENT["id"], WINDOW),
                outside=export(base, OWN_SEGMENT["id"], DAY_BEFORE),
                again=export(base, OWN_SEGMENT["id"], WINDOW),
                fields=json.loads((folder / "fields.json").read_text(encoding="utf-8")),
            )
        finally:
            stop(process)
    return found


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_bytes().splitlines()]


def recorded_rows(folder: Path) -> Path:
    (recorded,) = json.loads((folder / "recording.json").read_text())["exports"]
    return folder / "exports" / recorded["file"]


def test_the_replayed_segments_are_the_recorded_orgs(org, replays):
    ids = [s["id"] for s in org.segments]
    assert OWN_SEGMENT["id"] in ids and len(ids) > 1  # ours among the embedded ones
    own = org.segments[ids.index(OWN_SEGMENT["id"])]
    assert own["creator"] == OWN_SEGMENT["creator"] and own["name"] == OWN_SEGMENT["name"]
    assert replays["raw"].segments == org.segments

    scrubbed = replays["scrubbed"].segments
    assert [{**s, "creator": ""} for s in scrubbed] == [{**s, "creator": ""} for s in org.segments]
    fakes: dict[str, str] = {}
    for before, after in zip(org.segments, scrubbed, strict=True):
        if not before["creator"]:
            assert after["creator"] == ""
            continue
        assert EMAIL.fullmatch(after["creator"]) and after["creator"] != before["creator"]
        assert fakes.setdefault(before["creator"], after["creator"]) == after["creator"]
    assert len(set(fakes.values())) == len(fakes) >= 2  # one fake per creator, and only one


def test_the_recorded_window_is_served_byte_for_byte(org, replays):
    raw, scrubbed = replays["raw"], replays["scrubbed"]
    assert org.served.count(b"\n") > 20  # a window that holds data
    assert recorded_rows(raw.folder).read_bytes() == org.served
    assert raw.inside.data == org.served and raw.again.data == org.served
    assert scrubbed.inside.data == recorded_rows(scrubbed.folder).read_bytes()
    assert scrubbed.inside.data != org.served
    assert scrubbed.inside.data.count(b"\n") == org.served.count(b"\n")
    assert {r["EventType"] for r in raw.inside.rows} == {"click"}  # A applied our segment


def test_scrubbed_values_are_replaced_consistently(org, replays):
    before, after = Export([], org.served).rows, replays["scrubbed"].inside.rows
    replaced: dict[tuple[str, Any], Any] = {}
    emails: dict[int, set[Any]] = defaultdict(set)
    for old, new in zip(before, after, strict=True):
        assert list(old) == list(new) and old["IndvId"] == new["IndvId"]
        for key in PERSONAL:
            if old.get(key) in (None, ""):
                assert new.get(key) == old.get(key), key
                continue
            assert new[key] != old[key] and type(new[key]) is type(old[key]), key
            assert replaced.setdefault((key, old[key]), new[key]) == new[key], key
        emails[new["IndvId"]].add(new.get("UserEmail"))
    assert all(len(found) == 1 for found in emails.values())  # one email per individual
    assert any(len([r for r in after if r["IndvId"] == i]) > 1 for i in emails)
    for key in PERSONAL:
        originals = {old for (name, old) in replaced if name == key}
        fakes = {new for (name, _), new in replaced.items() if name == key}
        assert originals and len(fakes) == len(originals), key  # distinct stay distinct


def personal_values(org: Org) -> set[str]:
    """The unscrubbed recording's personal values: the personal fields', emails anywhere, and
    the segments' creators."""
    found = {s["creator"] for s in org.segments if s["creator"]}
    for row in lines(recorded_rows(org.folders["raw"])):
        found.update(str(row[key]) for key in PERSONAL if row.get(key) not in (None, ""))
        for value in row.values():
            if isinstance(value, str):
                found.update(EMAIL.findall(value))
    return found


def test_no_personal_value_survives_scrubbing(org, replays):
    personal = personal_values(org)
    assert OWN_SEGMENT["creator"] in personal
    kinds = {key: {str(r.get(key)) for r in lines(recorded_rows(org.folders["raw"]))} & personal
             for key in PERSONAL}  # fmt: skip
    assert all(kinds.values()), kinds  # every kind of personal value was there to find
    raw_blob = b"".join(p.read_bytes() for p in org.folders["raw"].rglob("*") if p.is_file())
    assert all(value.encode() in raw_blob for value in personal)  # the search can find them

    folder = org.folders["scrubbed"]
    blob = b"".join(p.read_bytes() for p in folder.rglob("*") if p.is_file())
    assert sorted(v for v in personal if v.encode() in blob) == []
    replay = replays["scrubbed"]
    assert sorted(v for v in personal if v.encode() in replay.inside.data) == []
    # Outside the window B's own world (seed 12) makes the people; the shop puts visitors at
    # city centres, so a location there is any world's, not the recording's.
    locations = {str(r.get("PageLatLong")) for r in lines(recorded_rows(org.folders["raw"]))}
    assert sorted(v for v in personal - locations if v.encode() in replay.outside.data) == []
    assert all(key.encode() not in blob + raw_blob for key in KEYS.values())
    assert all(key not in org.stderr for key in KEYS.values())


@pytest.mark.parametrize("name", ["raw", "scrubbed"])
def test_outside_the_window_the_world_takes_the_orgs_shape(replays, name):
    replay = replays[name]
    catalogue = replay.fields["fields"]
    rows = replay.outside.rows
    assert len(rows) > 20
    assert all(DAY_BEFORE[0] <= row["EventStart"] < DAY_BEFORE[1] for row in rows)
    assert {row["IndvId"] for row in rows}.isdisjoint(r["IndvId"] for r in replay.inside.rows)
    # only the fields the org's rows had: no `evt_*` variable, no field A never sent
    assert {key for row in rows for key in row} <= set(catalogue)
    recorded_vars = {n for n in catalogue if n.startswith(("user_", "evt_", "page_"))}
    assert recorded_vars and not any(n.startswith("evt_") for n in recorded_vars)
    assert SHOP_VARS - recorded_vars  # B's shop would have had others
    seen_vars: set[str] = set()
    for row in rows:
        for key, value in row.items():
            if not key.startswith(("user_", "evt_", "page_")):
                continue
            seen_vars.add(key)
            profile = catalogue[key]
            kind = JSON_TYPES[type(value)]
            assert kind == profile["type"] or (kind, profile["type"]) == ("integer", "number")
            sampled = [v for v in profile.get("values", []) if type(v) is type(value)]
            if sampled:
                assert value in sampled, (key, value)
            elif "min" in profile:
                assert profile["min"] <= value <= profile["max"], (key, value)
    assert seen_vars & {n for n in recorded_vars if n.startswith("user_")}
    assert seen_vars & {n for n in recorded_vars if n.startswith("page_")}
    # page URLs on the recorded hosts and paths
    hosts, paths = replay.fields["pageUrls"]["hosts"], replay.fields["pageUrls"]["paths"]
    urls = {row["PageUrl"] for row in rows if "PageUrl" in row}  # not a mobile app's views
    assert urls and all(urlsplit(url).netloc in hosts for url in urls), urls
    assert all(urlsplit(url).path in paths for url in urls), urls
    # and the org's page names
    names = {row["PageName"] for row in rows if "PageName" in row}
    assert names and names <= set(catalogue["PageName"]["values"]), names


@pytest.mark.parametrize("name", ["raw", "scrubbed"])
def test_the_recorded_timeline_drives_the_replayed_exports(replays, name):
    replay = replays[name]
    (recorded,) = json.loads((replay.folder / "recording.json").read_text())["exports"]
    polls = recorded["timeline"]["polls"]
    pending = [("PENDING", p["pct"]) for p in polls if p["state"] == "PENDING"]
    assert len(pending) >= 3 and polls[-1]["state"] == "COMPLETED"
    expected = [*pending, ("COMPLETED", 100)]
    assert replay.inside.polls == expected
    assert replay.outside.polls == expected and replay.again.polls == expected
