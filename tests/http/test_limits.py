"""Resource bounds: the journal and in-memory operations stay within their byte bounds under a
flood, the journal answers in pages, and no request blocks the event loop for long."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time

import httpx
import pytest

from fullstory_emulator.server import ServerThread
from tests.helpers import AUTH, small_settings

BIG = {"User-Agent": "u" * 15_000, "X-Padding": "p" * 15_000, "X-Api-Key": "k" * 15_000}


def journal_bytes(h) -> int:
    if h.em.settings.store:  # PostgreSQL
        h.em.store.flush_journal()
        rows = h.em.store._rows("SELECT SUM(octet_length(entry)) FROM journal")
        return int(rows[0][0] or 0)
    if h.em.settings.data_dir is None:
        return int(h.em.store.journal_bytes)
    h.em.store.flush_journal()
    with sqlite3.connect(h.em.settings.data_dir / "emulator.sqlite3") as db:
        return int(db.execute("SELECT SUM(length(entry)) FROM journal").fetchone()[0] or 0)


@pytest.mark.stores
def test_journal_stays_within_its_byte_bound_under_a_flood(make_harness):
    bound = 64 << 10
    h = make_harness(journal_max_bytes=bound)
    for _ in range(400):
        assert h.client.get("/segments/v1?limit=1", headers={**AUTH, **BIG}).status_code == 200
    # SQLite and PostgreSQL bound it every eighth of the bound written: over by that at most.
    assert 0 < journal_bytes(h) <= bound * 9 // 8
    pages, token = [], None
    while True:
        answer = h.client.get(
            "/__emulator/journal", params={"pageToken": token} if token else {}, headers=AUTH
        )
        assert answer.status_code == 200 and len(answer.content) <= bound * 2
        pages.append(answer.json()["requests"])
        token = answer.json().get("nextPageToken")
        if not token:
            break
    kept = [e for page in pages for e in page]
    assert 30 < len(kept) < 400  # the oldest went first; the newest are all there
    assert kept[-1]["path"] == "/segments/v1"


@pytest.mark.stores
def test_journal_pages_follow_each_other_without_gaps(harness):
    for n in range(25):
        harness.client.get(f"/segments/v1?limit={n + 1}", headers=AUTH)
    seen, token = [], None
    while True:
        params = {"limit": 10, "path": "/segments/*", **({"pageToken": token} if token else {})}
        answer = harness.client.get("/__emulator/journal", params=params, headers=AUTH).json()
        assert len(answer["requests"]) <= 10
        seen += [e["query"] for e in answer["requests"]]
        token = answer.get("nextPageToken")
        if not token:
            break
    assert seen == [f"limit={n + 1}" for n in range(25)]
    bad = harness.client.get("/__emulator/journal?pageToken=nonsense", headers=AUTH)
    assert bad.status_code == 400 and "pageToken" in bad.json()["message"]


def test_operations_in_memory_stay_within_their_byte_bound(make_harness):
    bound = 1 << 20
    h = make_harness(operations_max_bytes=bound)
    fields = [f"user_field{n:04d}_{'x' * 200}_str" for n in range(1000)]  # ~250 KB a record
    first = h.create(fields=fields)
    for _ in range(20):
        h.create(fields=fields)
    assert h.em.store.operations_bytes <= bound
    gone = h.client.get(f"/operations/v1/{first}", headers=AUTH)
    assert gone.status_code == 404  # the oldest went first
    listed = h.client.get("/operations/v1", headers=AUTH).json()["operations"]
    assert 1 <= len(listed) < 21


def base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, d = divmod(n, 36)
        out = digits[d] + out
        if not n:
            return out


LOAD = """
import json, time, httpx
flood, body = json.load(open({bodies!r}))
headers = {{"Authorization": {key!r}}}
deadline = time.monotonic() + 20
with httpx.Client(base_url={base!r}, timeout=30) as client:
    while time.monotonic() < deadline:
        client.post("/segments/v1/exports", content=flood, headers=headers)
        client.post("/segments/v1/exports", content=body, headers=headers)
        client.get("/operations/v1?limit=100", headers=headers)
        client.get("/__emulator/journal", headers=headers)
        print("sent", flush=True)  # one round answered: the load is on
"""


def test_health_answers_within_100_ms_while_worst_case_requests_run(tmp_path):
    """The event loop is never blocked for long: a health check answers quickly while the
    largest `fields` list and the largest pages are being answered."""
    settings = small_settings(port=0, rate_limit=None)

    def export(fields: list[str]) -> str:
        body = {"segmentId": "everyone", "type": "TYPE_EVENT", "format": "FORMAT_CSV"}
        return json.dumps({**body, "fields": fields}, separators=(",", ":"))

    body = export([f"user_f{n:04d}_{'y' * 230}_str" for n in range(1000)])  # the largest allowed
    flood = export([f"evt_{base36(n)}_str" for n in range(68_530)])  # the reported 43 s body
    assert len(body) < 1 << 20 and len(flood) < 1 << 20
    with ServerThread(settings) as server, httpx.Client(base_url=server.base_url) as api:
        for _ in range(30):
            api.post("/segments/v1/exports", content=body, headers=AUTH)
        # How long the worst request takes on this machine, unloaded: a loop blocked by one
        # would hold a health check about that long, however slow the machine is today.
        began = time.perf_counter()
        api.post("/segments/v1/exports", content=flood, headers=AUTH)
        flood_took = time.perf_counter() - began
        # The load comes from other processes, so that it competes with the server for the
        # machine, not for this process's interpreter lock (which the measuring client needs).
        bodies = tmp_path / "bodies.json"
        bodies.write_text(json.dumps([flood, body]))
        script = LOAD.format(base=server.base_url, key=AUTH["Authorization"], bodies=str(bodies))
        workers = [
            subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
            for _ in range(2)
        ]
        try:
            for worker in workers:  # each has had a round answered: the load is on
                assert worker.stdout is not None and worker.stdout.readline() == "sent\n"
            took = []
            for _ in range(20):
                began = time.perf_counter()
                assert api.get("/__emulator/health").status_code == 200
                took.append(time.perf_counter() - began)
        finally:
            for worker in workers:
                worker.kill()
                worker.wait()
    # Typically within 100 ms, and none blocked for long (the loop once stalled for 43 s). A
    # shared machine slows the worst request as much as a health check: the bounds grow with
    # it, so they flag a blocked loop, not a busy machine.
    took.sort()
    shown = f"health checks took {[round(t * 1000) for t in took]} ms; a flood {flood_took:.2f} s"
    assert took[10] < max(0.1, flood_took / 2), shown
    assert took[-1] < max(1.0, flood_took * 2), shown
