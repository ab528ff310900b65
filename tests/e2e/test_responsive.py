"""Nothing on the event loop waits: while an API request waits for SQLite's write lock (held by
another process, as a second emulator or a `sqlite3` shell would), the health check answers."""

from __future__ import annotations

import select
import socket
import sqlite3
import time
from pathlib import Path

import httpx

from tests.helpers import start, stop

KEY = "na1.responsive-key"
BODY = b'{"segmentId": "everyone", "type": "TYPE_EVENT", "format": "FORMAT_CSV"}'


def test_health_answers_while_an_api_request_waits_for_the_write_lock(tmp_path: Path):
    data = tmp_path / "data"
    process, base, _ = start(tmp_path, "--data-dir", str(data), "--rate-limit", "off")
    try:
        host, port = base.removeprefix("http://").split(":")
        health = httpx.Client(base_url=base, timeout=10)
        assert health.get("/__emulator/health").status_code == 200
        holder = sqlite3.connect(data / "emulator.sqlite3", isolation_level=None, timeout=5)
        holder.execute("BEGIN IMMEDIATE")  # the write lock, from another process's view
        api = socket.create_connection((host, int(port)))
        try:
            api.sendall(
                f"POST /segments/v1/exports HTTP/1.1\r\nHost: {host}:{port}\r\n"
                f"Authorization: Basic {KEY}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(BODY)}\r\n\r\n".encode()
                + BODY
            )
            for _ in range(10):  # the API request's transaction is waiting meanwhile
                began = time.perf_counter()
                answer = health.get("/__emulator/health")
                took = time.perf_counter() - began
                assert answer.status_code == 200
                assert took < 0.2, f"health took {took:.3f} s behind a waiting API request"
            waiting, _, _ = select.select([api], [], [], 0)
            assert not waiting, api.recv(4096)
            holder.execute("ROLLBACK")
            api.settimeout(10)
            assert api.recv(64).startswith(b"HTTP/1.1 200 ")
        finally:
            api.close()
            holder.close()
    finally:
        stop(process)
