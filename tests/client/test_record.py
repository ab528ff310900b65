"""`fullstory-emulator record` against a real emulator standing in for production (uvicorn in a
thread, a running clock, the default rate limit, a seed and a segments file of our own): the
folder it writes, scrubbing, the rate limit, resuming, and bad input. Each test has its own API
key, so its rate-limit buckets, faults and journal are its own tenant's."""

from __future__ import annotations

import gzip
import itertools
import json
import os
import re
import signal
import subprocess
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from fullstory_emulator.client import record
from fullstory_emulator.client.scrub import EMAIL, Scrubber, field_kind
from fullstory_emulator.recording import MANIFEST, MAX_VALUES, STATE_DIR, Recording
from fullstory_emulator.server import ServerThread
from fullstory_emulator.settings import Settings
from fullstory_emulator.world.segments import SegmentCatalog
from tests.helpers import START, control, emulator_command, free_port, parse

SEED = 4242
OWN_SEGMENT = {
    "id": "clickers",
    "name": "Clicked something",
    "creator": "dana.scully@acme-outfitters.example",
    "created": "2026-01-05T10:00:00Z",
    "events": [{"EventType": "click"}],
}
WINDOW = ["--end", "2026-03-01T12:00:00Z", "--window", "1d"]
BUCKET_GLOB = "/fullstory-emulator-exports/*"
PERSONAL = ("UserEmail", "UserDisplayName", "UserId", "UserAppKey", "PageIp", "PageLatLong")
_keys = itertools.count(1)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    segments = tmp_path_factory.mktemp("segments") / "segments.json"
    segments.write_text(json.dumps({"segments": [OWN_SEGMENT]}), encoding="utf-8")
    settings = Settings(
        port=0,
        seed=SEED,
        segments=segments,
        export_duration=0.3,
        export_duration_per_million=0,
        start_time=START,
        population=150,
        signing_secret="record-test-secret",
    )  # the default rate limit: 2 per minute per endpoint after a burst of 50
    with ServerThread(settings) as running:
        yield running


@dataclass
class Org:
    """One tenant of the emulator, and the record command aimed at it."""

    base_url: str
    key: str
    http: httpx.Client

    def control(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        return control(self.http, method, path, body)

    def journal(self) -> list[dict[str, Any]]:
        """Every API and storage request of this tenant, oldest first."""
        entries: list[dict[str, Any]] = []
        token = None
        while True:
            params = {"pageToken": token} if token else {}
            page = self.http.get("/__emulator/journal", params=params).json()
            entries += page["requests"]
            token = page.get("nextPageToken")
            if not token:
                return entries

    def operations(self) -> list[dict[str, Any]]:
        return self.control("GET", "/operations")["operations"]

    def argv(self, out: Path, *args: str) -> list[str]:
        command = ["--out", str(out), "--api-url", self.base_url, "--api-key", self.key]
        return [*command, "--poll-interval", "0.05", *args]

    def record(
        self, capsys: pytest.CaptureFixture[str], out: Path, *args: str, **kwargs: Any
    ) -> tuple[int, list[tuple[str, dict[str, Any]]], str]:
        """record.main() in-process: exit code, the events, and stderr."""
        events: list[tuple[str, dict[str, Any]]] = []
        listener = kwargs.pop("listener", None)

        def on_event(name: str, fields: dict[str, Any]) -> None:
            events.append((name, fields))
            if listener is not None:
                listener(name, fields)

        code = record.main(self.argv(out, *args), on_event=on_event, **kwargs)
        return code, events, capsys.readouterr().err


def new_org(server: ServerThread) -> Org:
    key = f"na1.record-test-{next(_keys)}"
    http = httpx.Client(
        base_url=server.base_url, headers={"Authorization": f"Basic {key}"}, timeout=10
    )
    return Org(server.base_url, key, http)


@pytest.fixture
def org(server: ServerThread) -> Iterator[Org]:
    org = new_org(server)
    yield org
    org.http.close()


@dataclass
class Recorded:
    org: Org
    raw: Path
    scrubbed: Path


@pytest.fixture(scope="module")
def recorded(server: ServerThread, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recorded]:
    """The same org recorded twice (as served, and scrubbed): everyone, our own segment, and
    the embedded segment whose export fails."""
    org = new_org(server)
    root = tmp_path_factory.mktemp("recorded")
    segments = ["--segment", "everyone", "--segment", "clickers", "--segment", "LegacyFunnel"]
    for out, extra in ((root / "raw", ["--no-scrub"]), (root / "scrubbed", [])):
        code = record.main(org.argv(out, *WINDOW, *segments, *extra))
        assert code == 0
    yield Recorded(org, root / "raw", root / "scrubbed")
    org.http.close()


def rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def state_of(folder: Path) -> dict[str, Any]:
    state: dict[str, Any] = json.loads((folder / STATE_DIR / "state.json").read_text())
    return state


def template(path: str) -> str:
    """The rate-limit bucket of a journalled path (ids stand for any id)."""
    path = re.sub(r"^/operations/v1/[^/]+", "/operations/v1/{id}", path)
    path = re.sub(r"^/search/v1/exports/[^/]+", "/search/v1/exports/{id}", path)
    return re.sub(r"^/segments/v1/(?!exports$)[^/]+$", "/segments/v1/{id}", path)


def assert_every_429_waited_out(journal: list[dict[str, Any]], retry_after: float) -> int:
    """No request came to an endpoint sooner than the Retry-After of its last 429 allowed;
    returns how many 429s there were."""
    by_endpoint: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for entry in journal:
        by_endpoint[entry["method"], template(entry["path"])].append(entry)
    refused = 0
    for (method, path), entries in by_endpoint.items():
        for before, after in itertools.pairwise(entries):
            if before["status"] == 429:
                refused += 1
                waited = (parse(after["at"]) - parse(before["at"])).total_seconds()
                assert waited >= retry_after, (method, path, before["at"], after["at"])
        assert entries[-1]["status"] != 429, f"{method} {path} ended refused"
    return refused


# -- the folder -------------------------------------------------------------------------------


def test_segments_json_is_the_orgs_segment_list_and_loads_as_a_segments_file(recorded):
    listed = recorded.org.http.get("/segments/v1", params={"limit": 100}).json()["segments"]
    assert OWN_SEGMENT["id"] in [s["id"] for s in listed]
    keys = ("id", "name", "creator", "created", "url")
    expected = [{k: s[k] for k in keys if k in s} for s in listed]
    raw = json.loads((recorded.raw / "segments.json").read_text())
    assert raw == {"replaceDefaults": True, "segments": expected}
    catalog = SegmentCatalog.load(recorded.raw / "segments.json")
    assert [s.id for s in catalog] == [s["id"] for s in listed]
    assert catalog.get("clickers").creator == OWN_SEGMENT["creator"]

    scrubbed = json.loads((recorded.scrubbed / "segments.json").read_text())["segments"]
    assert [{**s, "creator": ""} for s in scrubbed] == [{**s, "creator": ""} for s in expected]
    fakes: dict[str, str] = {}
    for before, after in zip(expected, scrubbed, strict=True):
        if not before["creator"]:
            assert after["creator"] == ""
            continue
        assert EMAIL.fullmatch(after["creator"]) and after["creator"] != before["creator"]
        assert fakes.setdefault(before["creator"], after["creator"]) == after["creator"]
    assert len(set(fakes.values())) == len(fakes) >= 3  # alice twice, bob twice, carol, dana
    assert [s.id for s in SegmentCatalog.load(recorded.scrubbed / "segments.json")] == [
        s["id"] for s in listed
    ]


def test_unscrubbed_rows_are_the_downloaded_lines_byte_for_byte(recorded):
    state = state_of(recorded.raw)
    for segment in ("everyone", "clickers"):
        export_id = state["exports"][segment]["searchExportId"]
        answer = recorded.org.http.get(f"/search/v1/exports/{export_id}/results").json()
        served = gzip.decompress(httpx.get(answer["location"]).content)
        kept = (recorded.raw / "exports" / f"{segment}.ndjson").read_bytes()
        assert kept == served and served.count(b"\n") > 100


def test_the_manifest_holds_each_exports_timeline_and_the_folder_loads(recorded):
    for folder in (recorded.raw, recorded.scrubbed):
        recording = Recording.load(folder)
        assert recording.scrubbed == (folder == recorded.scrubbed)
        assert recording.api_url == recorded.org.base_url
        assert [e.segment_id for e in recording.exports] == ["everyone", "clickers", "LegacyFunnel"]
        for export in recording.exports[:2]:
            assert (export.start, export.end) == ("2026-02-28T12:00:00Z", "2026-03-01T12:00:00Z")
            assert export.rows == len(rows(folder / "exports" / export.file)) > 0
            timeline = export.timeline
            assert timeline.final_state == "COMPLETED" and timeline.error_details == ""
            assert timeline.duration == pytest.approx(0.3, abs=0.05)
            pcts = [p.pct for p in timeline.polls]
            assert len(pcts) >= 2 and pcts == sorted(pcts) and pcts[-1] == 100
            ats = [p.at for p in timeline.polls]
            assert ats == sorted(ats) and ats[0] >= 0
            assert [p.state for p in timeline.polls][-1] == "COMPLETED"
            assert set(p.state for p in timeline.polls[:-1]) == {"PENDING"}
            assert timeline.lifecycle_rule(export.segment_id)["pctSequence"] == pcts[:-1]
        failed = recording.exports[2]
        assert failed.timeline.final_state == "ERROR" and failed.rows == 0
        assert "Legacy Checkout Step" in failed.timeline.error_details
        assert failed.timeline.lifecycle_rule("LegacyFunnel")["fail"].startswith("search failed")
        assert (folder / "exports" / failed.file).read_bytes() == b""
        assert (folder / ".gitignore").read_text().splitlines()[-1] == ".recording/"


def test_fields_json_is_the_catalogue_of_the_rows(recorded):
    everything = [*rows(recorded.raw / "exports/everyone.ndjson")]
    everything += rows(recorded.raw / "exports/clickers.ndjson")
    catalogue = Recording.load(recorded.raw).catalogue
    written = json.loads((recorded.raw / "fields.json").read_text())
    assert set(catalogue.fields) == {name for row in everything for name in row}
    suffix_types = {"str": "string", "int": "integer", "real": "number", "bool": "boolean"}
    custom = catalogue.custom_vars
    assert {n.split("_")[0] for n in custom} == {"user", "evt", "page"}
    for name, profile in custom.items():
        assert profile.type == suffix_types.get(name.rsplit("_", 1)[1], "string"), name
    for name, profile in catalogue.fields.items():
        values = [row[name] for row in everything if name in row]
        assert profile.count == len(values), name
        empty = sum(v is None or v == "" for v in values)
        assert profile.null_rate == pytest.approx(empty / len(values), abs=1e-4), name
        assert len(profile.values) <= MAX_VALUES
        assert set(profile.values) <= set(values), name
        if profile.type in ("integer", "number"):
            numbers = [v for v in values if isinstance(v, int | float)]
            exact = written["fields"][name]  # as written: integers whole, 64-bit ids too
            assert (exact["min"], exact["max"]) == (min(numbers), max(numbers)), name
            assert profile.minimum == float(min(numbers)), name
    assert catalogue.fields["EventType"].type == "string"
    assert "navigate" in catalogue.fields["EventType"].values
    assert catalogue.fields["user_newsletter_bool"].values in ((False, True), (True, False))
    assert 0 < catalogue.fields["UserEmail"].count < len(everything)  # anonymous users too
    assert catalogue.hosts[0] == "www.acme-outfitters.example"
    assert "/" in catalogue.paths and all(p.startswith("/") for p in catalogue.paths)
    scrubbed = Recording.load(recorded.scrubbed).catalogue
    assert {n: p.type for n, p in scrubbed.fields.items()} == {
        n: p.type for n, p in catalogue.fields.items()
    }
    assert scrubbed.hosts == catalogue.hosts and scrubbed.paths == catalogue.paths


# -- scrubbing --------------------------------------------------------------------------------


def personal_values(recorded: Recorded) -> set[str]:
    """What the unscrubbed recording holds that identifies people: the personal fields' values,
    emails anywhere, the URLs' query values and the segments' creators; less any text that
    also occurs where nothing is personal (a SKU in a query is a SKU in a custom variable too,
    a `sale` in a query may be a `/sale` in a path)."""
    everything = rows(recorded.raw / "exports/everyone.ndjson")
    everything += rows(recorded.raw / "exports/clickers.ndjson")
    found: set[str] = set()
    ordinary: list[str] = []
    for row in everything:
        for name, value in row.items():
            if name in PERSONAL and value not in (None, ""):
                found.add(str(value))
            elif isinstance(value, str):
                base, _, query = value.partition("?")
                if "://" in value and query:
                    found.update(p.partition("=")[2] for p in query.split("#")[0].split("&"))
                    value = base
                found.update(EMAIL.findall(value))
                ordinary.append(EMAIL.sub("", value))
    segments = json.loads((recorded.raw / "segments.json").read_text())["segments"]
    found.update(s["creator"] for s in segments if s["creator"])
    background = "\n".join(ordinary)
    return {v for v in found if len(v) >= 4 and v not in background}


def test_no_personal_value_survives_scrubbing(recorded):
    personal = personal_values(recorded)
    kinds = {"@": 0, ",": 0, ".": 0}
    for value in personal:
        for mark in kinds:
            kinds[mark] += mark in value
    assert len(personal) > 50 and all(kinds.values())  # emails, lat/longs, IPs among them
    blob = b"".join(p.read_bytes() for p in recorded.scrubbed.rglob("*") if p.is_file())
    survived = sorted(v for v in personal if v.encode() in blob)
    assert survived == []
    raw_blob = b"".join(p.read_bytes() for p in recorded.raw.rglob("*") if p.is_file())
    assert all(v.encode() in raw_blob for v in personal)  # the search itself can find them


def test_scrubbed_rows_keep_keys_types_and_everything_not_personal(recorded):
    for name in ("everyone.ndjson", "clickers.ndjson"):
        raw = rows(recorded.raw / "exports" / name)
        scrubbed = rows(recorded.scrubbed / "exports" / name)
        assert len(raw) == len(scrubbed)
        for before, after in zip(raw, scrubbed, strict=True):
            assert list(before) == list(after)
            assert [type(v) for v in before.values()] == [type(v) for v in after.values()]
            for key, value in before.items():
                if field_kind(key) is None and "@" not in str(value) and "://" not in str(value):
                    assert after[key] == value, key
            assert after["IndvId"] == before["IndvId"] and after["PageId"] == before["PageId"]
            if before.get("UserId") is not None:
                assert len(str(after["UserId"])) == len(str(before["UserId"]))
            lat_long = r"-?\d+\.\d{4},-?\d+\.\d{4}"
            if before.get("PageLatLong"):
                assert re.fullmatch(lat_long, after["PageLatLong"]), after["PageLatLong"]
            if before.get("PageUrl"):
                assert after["PageUrl"].split("?")[0] == before["PageUrl"].split("?")[0]


def replacements(raw: Path, scrubbed: Path, mapping: dict[tuple[str, Any], Any]) -> set[Any]:
    """Add each personal value's replacement to `mapping`, asserting it is always the same one;
    returns the values compared."""
    compared = set()
    for before, after in zip(rows(raw), rows(scrubbed), strict=True):
        for key in PERSONAL:
            if before.get(key) in (None, ""):
                continue
            kind = "email" if key == "UserEmail" else key
            assert mapping.setdefault((kind, before[key]), after[key]) == after[key], key
            assert after[key] != before[key]
            compared.add((kind, before[key]))
    return compared


def test_the_same_value_gets_the_same_replacement_across_exports_and_runs(
    recorded, org, capsys, tmp_path
):
    mapping: dict[tuple[str, Any], Any] = {}
    for name in ("everyone.ndjson", "clickers.ndjson"):
        assert replacements(
            recorded.raw / "exports" / name, recorded.scrubbed / "exports" / name, mapping
        )
    # the segments' creators are emails like any other
    raw_segments = json.loads((recorded.raw / "segments.json").read_text())["segments"]
    scrubbed_segments = json.loads((recorded.scrubbed / "segments.json").read_text())["segments"]
    for before, after in zip(raw_segments, scrubbed_segments, strict=True):
        if before["creator"]:
            assert (
                mapping.setdefault(("email", before["creator"]), after["creator"])
                == after["creator"]
            )
    # a second recording with the same salt, another window and segment: the same replacements
    again, again_raw = tmp_path / "again", tmp_path / "again-raw"
    (again / STATE_DIR).mkdir(parents=True)
    salt = recorded.scrubbed / STATE_DIR / "salt"
    (again / STATE_DIR / "salt").write_bytes(salt.read_bytes())
    # the day before the first recording's: returning users, and new ones
    window = ["--end", "2026-02-27T12:00:00Z", "--window", "1d"]
    for out, extra in ((again, []), (again_raw, ["--no-scrub"])):
        code, _, err = org.record(capsys, out, *window, *extra)
        assert code == 0, err
    known = set(mapping)
    seen = replacements(
        again_raw / "exports/everyone.ndjson", again / "exports/everyone.ndjson", mapping
    )
    assert seen & known and seen - known  # the known ones mapped as before, new ones too
    # a new salt maps them elsewhere
    other = tmp_path / "other-salt"
    code, _, err = org.record(capsys, other, *window)
    assert code == 0, err
    assert rows(other / "exports/everyone.ndjson") != rows(again / "exports/everyone.ndjson")


def test_scrubber_kinds_and_formats():
    scrub = Scrubber(b"k" * 32)
    assert scrub.line(b'{"a":1}') == b'{"a":1}'
    line = (
        b'{"UserEmail":"ann@corp.example","EventVarFields":"{\\"email_str\\":\\"ann@corp.example'
        b'\\",\\"n_int\\":5}","PageUrl":"https://shop.example/p/1?u=ann%40corp.example\\u0026'
        b'x=42#t=abc","ReqUrl":"https://bob:pw@api.example/v1?q=1","PageIp":"2001:db8::1",'
        b'"PageLatLong":"48.85, 2.35","UserId":9012,"UserAppKey":"usr-77ab","Big":1.50e+3,'
        b'"evt_ip_str":"10.1.2.3","EventTargetText":"Mail ann@corp.example now"}'
    )
    out = scrub.line(line)
    row = json.loads(out)
    fake = row["UserEmail"]
    assert EMAIL.fullmatch(fake) and fake != "ann@corp.example"
    assert json.loads(row["EventVarFields"]) == {"email_str": fake, "n_int": 5}
    assert row["EventTargetText"] == f"Mail {fake} now"
    assert re.fullmatch(
        r"https://shop\.example/p/1\?u=[a-z]{3}%40[a-z]{4}\.[a-z]{7}&x=\d\d#t=[a-z]{3}",
        row["PageUrl"],
    )
    assert b"\\u0026x=" in out  # escaped as the server escaped it
    assert re.fullmatch(r"https://[a-z]{3}:[a-z]{2}@api\.example/v1\?q=\d", row["ReqUrl"])
    assert ":" in row["PageIp"] and row["PageIp"] != "2001:db8::1"
    assert re.fullmatch(r"-?\d+\.\d\d, -?\d+\.\d\d", row["PageLatLong"])
    assert 1000 <= row["UserId"] <= 9999 and row["UserId"] != 9012
    assert re.fullmatch(r"[a-z]{3}-\d\d[a-z]{2}", row["UserAppKey"])
    assert row["evt_ip_str"].count(".") == 3 and row["evt_ip_str"] != "10.1.2.3"
    assert b'"Big":1.50e+3' in out  # untouched values keep their bytes
    assert scrub.line(line) == out and Scrubber(b"k" * 32).line(line) == out
    assert Scrubber(b"j" * 32).line(line) != out
    with pytest.raises(ValueError):
        scrub.line(b"not json")


# -- the rate limit ---------------------------------------------------------------------------


def test_within_the_default_rate_limit_nothing_is_refused(org, capsys, tmp_path):
    code, events, err = org.record(capsys, tmp_path / "rec", *WINDOW, "--segment", "clickers")
    assert code == 0, err
    journal = org.journal()
    assert journal and [e for e in journal if e["status"] == 429] == []
    assert not [name for name, _ in events if "rate_limited" in name]


def test_a_tighter_rate_limit_is_waited_out(org, capsys, tmp_path):
    # one request a second after a burst of two, where the recorder expects a burst of 50 (as
    # when another process spends the same key): polls every 0.05 s run into it at once
    org.control("POST", "/ratelimit", {"limit": "60/60,2"})
    segments = ["--segment", "everyone", "--segment", "clickers"]
    code, events, err = org.record(
        capsys, tmp_path / "rec", *WINDOW, *segments, "--rate-limit", "60/60,50"
    )
    assert code == 0, err
    limited = [fields for name, fields in events if name == "rate_limited"]
    assert limited and {f["retryAfter"] for f in limited} == {1}
    assert "429 rate limited on GET /operations/v1/" in err
    assert assert_every_429_waited_out(org.journal(), 1.0) == len(limited)
    assert len(Recording.load(tmp_path / "rec").exports) == 2


def test_a_429_that_outlasts_the_clients_retries_is_not_fatal(org, capsys, tmp_path):
    # three refusals in a row: more than the first request's retries; then one poll refused
    org.control("POST", "/ratelimit", {"denyNext": 3, "retryAfter": 1})
    org.control(
        "POST", "/faults", {"path": "/operations/v1/*", "status": 429, "retryAfter": 1, "times": 1}
    )
    code, events, err = org.record(capsys, tmp_path / "rec", *WINDOW, "--segment", "clickers")
    assert code == 0, err
    assert "still_rate_limited" in [name for name, _ in events]
    assert "still rate limited while listing the segments" in err
    # after a 429 the recorder waits its Retry-After, not a whole refill of the rate limit
    assert not [f for name, f in events if name == "pacing" and f["seconds"] > 1.5]
    journal = org.journal()
    assert assert_every_429_waited_out(journal, 1.0) == 4
    assert Recording.load(tmp_path / "rec").exports[0].rows > 0


# -- resuming ---------------------------------------------------------------------------------


def exports_per_segment(org: Org) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for operation in org.operations():
        counts[operation["segmentId"]] += 1
    return dict(counts)


def test_an_interrupted_recording_resumes_without_exporting_twice(org, capsys, tmp_path):
    out = tmp_path / "rec"
    segments = ["--segment", "everyone", "--segment", "clickers"]

    def interrupt(name: str, fields: dict[str, Any]) -> None:
        if name == "created" and fields["segment"] == "clickers":
            raise KeyboardInterrupt

    code, _, err = org.record(capsys, out, *WINDOW, *segments, listener=interrupt)
    assert code == 130
    assert err.strip().splitlines()[-1].endswith("interrupted; rerun the same command to resume")
    assert [e.segment_id for e in Recording.load(out).exports] == ["everyone"]  # valid meanwhile
    pinned = state_of(out)["exports"]["clickers"]["operationId"]

    code, events, err = org.record(capsys, out, *WINDOW, *segments)
    assert code == 0, err
    names = [name for name, _ in events]
    assert ("skipped", "everyone") in [(n, f.get("segment")) for n, f in events]
    assert ("resuming", pinned) in [(n, f.get("operationId")) for n, f in events]
    assert "created" not in names
    assert exports_per_segment(org) == {"everyone": 1, "clickers": 1}
    recording = Recording.load(out)
    assert [e.segment_id for e in recording.exports] == ["everyone", "clickers"]
    assert all(e.rows > 0 and e.timeline.final_state == "COMPLETED" for e in recording.exports)

    # done is done: a third run asks the API nothing
    before = len(org.journal())
    code, events, err = org.record(capsys, out, *WINDOW, *segments)
    assert code == 0 and len(org.journal()) == before
    assert [n for n, _ in events].count("skipped") == 2


def test_a_resumed_recording_reads_its_rows_bounded(org, capsys, tmp_path):
    """The recorder rereads the rows it recorded for the catalogue: one swapped for a link to
    /dev/zero is refused in one line (it was read whole into memory)."""
    out = tmp_path / "rec"
    segments = ["--segment", "everyone", "--segment", "clickers"]

    def interrupt(name: str, fields: dict[str, Any]) -> None:
        if name == "created" and fields["segment"] == "clickers":
            raise KeyboardInterrupt

    code, _, _ = org.record(capsys, out, *WINDOW, *segments, listener=interrupt)
    assert code == 130
    rows_file = out / "exports" / "everyone.ndjson"
    rows_file.unlink()
    rows_file.symlink_to("/dev/zero")
    code, _, err = org.record(capsys, out, *WINDOW, *segments)
    assert code == 1
    line = err.strip().splitlines()[-1]
    assert line.startswith(f"fullstory-emulator record: {rows_file}: leads to /dev/zero, outside")


def test_ctrl_c_of_the_command_then_rerun_resumes(org, tmp_path, capsys, monkeypatch):
    org.control("POST", "/config", {"exportDuration": 600})  # still PENDING when interrupted
    out = tmp_path / "rec"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FULLSTORY_")}
    env["FULLSTORY_API_KEY"] = org.key
    command = [*emulator_command(), "record", "--out", str(out), "--api-url", org.base_url]
    command += [*WINDOW, "--segment", "clickers", "--poll-interval", "0.2"]
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        seen = ""
        deadline = time.monotonic() + 30
        while "export created" not in seen and time.monotonic() < deadline:
            seen += process.stderr.readline()
        assert "export created" in seen, seen
        time.sleep(0.5)  # a poll or two
        process.send_signal(signal.SIGINT)
        rest = process.communicate(timeout=30)[1]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130
    assert rest.strip().splitlines()[-1] == (
        "fullstory-emulator record: interrupted; rerun the same command to resume"
    )
    assert "Traceback" not in seen + rest and org.key not in seen + rest
    (operation,) = org.operations()
    assert operation["state"] == "PENDING"
    org.control("POST", f"/operations/{operation['id']}/complete")

    monkeypatch.setenv("FULLSTORY_API_KEY", org.key)  # the same command, key and all
    argv = ["--out", str(out), "--api-url", org.base_url, *WINDOW, "--segment", "clickers"]
    code = record.main(argv)
    assert code == 0, capsys.readouterr().err
    assert exports_per_segment(org) == {"clickers": 1}
    (export,) = Recording.load(out).exports
    assert export.rows > 0 and export.timeline.polls[0].state == "PENDING"
    for path in out.rglob("*"):
        assert not path.is_file() or org.key.encode() not in path.read_bytes()


def test_an_expired_download_url_is_fetched_again(org, capsys, tmp_path):
    # a 2 s URL cannot outlast 2.1 s of storage latency; the fresh one lasts for its download
    org.control("POST", "/config", {"urlTtl": 2})
    org.control("POST", "/faults", {"path": BUCKET_GLOB, "latencyMs": 2100, "times": 1})
    code, events, err = org.record(capsys, tmp_path / "rec", *WINDOW, "--segment", "clickers")
    assert code == 0, err
    assert "url_expired" in [name for name, _ in events]
    assert "download URL expired; asking for a fresh one" in err
    journal = org.journal()
    assert [
        e["status"] for e in journal if e["path"].startswith("/fullstory-emulator-exports/")
    ] == [400, 200]
    assert len([e for e in journal if e["path"].startswith("/search/v1/exports/")]) == 2
    assert Recording.load(tmp_path / "rec").exports[0].rows > 0


def test_a_recording_stopped_mid_download_fetches_a_fresh_url_when_resumed(org, capsys, tmp_path):
    org.control("POST", "/config", {"urlTtl": 2})
    org.control("POST", "/faults", {"path": BUCKET_GLOB, "latencyMs": 2100, "times": 1})
    out = tmp_path / "rec"

    def interrupt(name: str, fields: dict[str, Any]) -> None:
        if name == "url_expired":  # the first download failed on an expired URL: stop there
            raise KeyboardInterrupt

    code, _, err = org.record(capsys, out, *WINDOW, "--segment", "clickers", listener=interrupt)
    assert code == 130, err
    assert state_of(out)["exports"]["clickers"]["searchExportId"]
    code, events, err = org.record(capsys, out, *WINDOW, "--segment", "clickers")
    assert code == 0, err
    assert "resuming" in [name for name, _ in events]
    journal = org.journal()
    assert len([e for e in journal if e["path"] == "/segments/v1/exports"]) == 1
    assert len([e for e in journal if e["path"].startswith("/search/v1/exports/")]) == 2
    storage = [e["status"] for e in journal if e["path"].startswith("/fullstory-emulator-")]
    assert storage == [400, 200]
    assert Recording.load(out).exports[0].rows > 0
    assert not (out / STATE_DIR / "downloads" / "clickers.ndjson.gz").exists()


def test_a_rerun_that_asks_for_something_else_is_refused_unless_restart(org, capsys, tmp_path):
    out = tmp_path / "rec"
    code, _, err = org.record(capsys, out, *WINDOW, "--segment", "clickers")
    assert code == 0, err
    code, _, err = org.record(capsys, out, "--end", "2026-03-01T12:00:00Z", "--window", "2h")
    assert code == 1
    (line,) = err.strip().splitlines()
    assert "holds a recording of segments clickers over 1d ending 2026-03-01T12:00:00Z" in line
    assert "segments everyone over 2h" in line and "--restart" in line
    assert exports_per_segment(org) == {"clickers": 1}

    code, _, err = org.record(
        capsys, out, "--end", "2026-03-01T12:00:00Z", "--window", "2h", "--restart"
    )
    assert code == 0, err
    recording = Recording.load(out)
    assert [(e.segment_id, e.start) for e in recording.exports] == [
        ("everyone", "2026-03-01T10:00:00Z")
    ]
    assert sorted(p.name for p in (out / "exports").iterdir()) == ["everyone.ndjson"]


# -- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--window", "an hour"], "--window 'an hour' is not a duration such as 30m, 1h or 2d"),
        (["--window", "0m"], "--window '0m' is not a duration"),
        (["--end", "yesterday"], "--end: 'yesterday' is not an RFC 3339 timestamp"),
        (["--end", "2026-02-30T00:00:00Z"], "--end: '2026-02-30T00:00:00Z' is not a valid date"),
        (["--rate-limit", "fast"], "--rate-limit: "),
        (["--poll-interval", "-1"], "--poll-interval cannot be negative"),
    ],
)
def test_bad_input_is_one_clear_line(org, capsys, tmp_path, args, message):
    code, _, err = org.record(capsys, tmp_path / "rec", *args)
    assert code == 1
    (line,) = err.strip().splitlines()
    assert line.startswith("fullstory-emulator record: ") and message in line, line
    assert org.key not in err


def test_an_unknown_segment_is_named_before_anything_is_exported(org, capsys, tmp_path):
    code, _, err = org.record(
        capsys, tmp_path / "rec", "--segment", "clickers", "--segment", "nope"
    )
    assert code == 1
    assert err.strip().splitlines()[-1] == (
        "fullstory-emulator record: segment nope is not among the org's 8 segments "
        f"(see {tmp_path / 'rec' / 'segments.json'})"
    )
    assert org.operations() == []
    # nothing was recorded: the corrected command is not told to --restart
    code, _, err = org.record(capsys, tmp_path / "rec", "--segment", "clickers", *WINDOW)
    assert code == 0, err
    assert exports_per_segment(org) == {"clickers": 1}


def test_an_unreachable_api_url_fails_fast(capsys, tmp_path):
    key = "na1.secret-key-of-mine"
    url = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    code = record.main(["--out", str(tmp_path / "rec"), "--api-url", url, "--api-key", key])
    err = capsys.readouterr().err
    assert code == 1 and time.monotonic() - started < 10
    (line,) = [line for line in err.strip().splitlines() if "record:" in line]
    assert f"listing the segments of {url} failed" in line and "ConnectError" in line
    assert "Traceback" not in err and key not in err


def test_a_refused_key_is_named_and_never_shown(server, capsys, tmp_path):
    key = "not a key at all"
    out = tmp_path / "rec"
    code = record.main(["--out", str(out), "--api-url", server.base_url, "--api-key", key])
    err = capsys.readouterr().err
    assert code == 1
    (line,) = [line for line in err.strip().splitlines() if "record:" in line]
    assert "the API key was refused" in line and "HTTP 401" in line
    assert key not in err and "Traceback" not in err
    for path in out.rglob("*"):
        assert not path.is_file() or key.encode() not in path.read_bytes()


def test_no_key_and_a_folder_that_is_not_a_recording(org, capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("FULLSTORY_API_KEY", raising=False)
    code = record.main(["--out", str(tmp_path / "rec"), "--api-url", org.base_url])
    assert code == 1
    assert "no API key: pass --api-key or set FULLSTORY_API_KEY" in capsys.readouterr().err
    (tmp_path / "notes.txt").write_text("mine")
    code, _, err = org.record(capsys, tmp_path)
    assert code == 1 and "is not empty (notes.txt) and holds no recording" in err
    assert (tmp_path / "notes.txt").read_text() == "mine" and not (tmp_path / MANIFEST).exists()


def test_segment_ids_become_safe_distinct_file_names():
    assert record.safe_name("everyone") == "everyone.ndjson"
    names = {record.safe_name(s) for s in ("a/b", "a_b", "a:b", "../x", ".hidden")}
    assert len(names) == 5 and "a_b.ndjson" in names
    assert all(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*\.ndjson", n) for n in names), names
    assert record.safe_name("-rf").startswith("rf-")  # never read as a flag


def test_a_key_whose_bucket_another_process_spent_is_waited_out(org, capsys, tmp_path):
    # the shared demo key after the quick start ran again and again: GET /segments/v1 spent
    for _ in range(60):
        if org.http.get("/segments/v1").status_code == 429:
            break
    else:
        pytest.fail("the default rate limit never refused")
    waits: list[float] = []

    def sleep(seconds: float) -> None:  # the wait moves the tenant's clock, which refills
        waits.append(seconds)
        org.control("POST", "/clock", {"advance": seconds})

    code, events, err = org.record(
        capsys, tmp_path / "rec", *WINDOW, "--segment", "clickers", sleep=sleep
    )
    assert code == 0, err
    limited = [fields for name, fields in events if name == "rate_limited"]
    assert limited[0]["path"] == "/segments/v1" and limited[0]["retryAfter"] >= 1
    assert limited[0]["retryAfter"] in waits  # waited what the server said, not a guess
    wait = limited[0]["retryAfter"]
    said = f"429 rate limited on GET /segments/v1; Retry-After {wait:g} s; waiting {wait:g} s and"
    assert f"{said} retrying" in err
    assert Recording.load(tmp_path / "rec").exports[0].rows > 0
