"""The emulator under uvicorn (fullstory_emulator/server.py, fullstory_emulator/serving.py): slow
or vanishing clients are timed out or recorded, never left open indefinitely or counted as
crashes."""

from __future__ import annotations

import gc
import socket
import time

import httpx

from fullstory_emulator.server import ServerThread
from tests.helpers import KEY, small_settings


def connect(server: ServerThread) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.settings.port), timeout=5)
    return sock


def closed_within(sock: socket.socket, seconds: float) -> tuple[bool, bytes]:
    """Whether the server closed the connection within `seconds`, and what it sent."""
    sock.settimeout(seconds)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except TimeoutError:
        return False, data
    except ConnectionResetError:
        pass
    return True, data


def answer(sock: socket.socket) -> bytes:
    """One whole answer (head and Content-Length body, which may come in separate reads)."""
    data = b""
    while b"\r\n\r\n" not in data and (chunk := sock.recv(65536)):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0]) if head else 0
    while len(body) < length and (chunk := sock.recv(65536)):
        body += chunk
    return data and head + b"\r\n\r\n" + body  # b"": the server closed the connection


def test_headers_trickled_slowly_are_cut_off():
    with ServerThread(small_settings(port=0, read_timeout=0.5)) as server:
        sock = connect(server)
        sock.sendall(b"GET /segments/v1 HTTP/1.1\r\nHost: localhost\r\n")
        began = time.monotonic()
        for _ in range(10):  # one header byte every 0.2 s: "slow loris"
            try:
                sock.sendall(b"X")
            except OSError:
                break
            time.sleep(0.2)
        closed, _ = closed_within(sock, 1.0)
        assert closed and time.monotonic() - began < 2.5
        sock.close()
        # an idle keep-alive connection after an answer is also bounded
        assert httpx.get(f"{server.base_url}/__emulator/health").status_code == 200


def test_each_answer_gives_the_next_request_on_the_connection_the_whole_timeout():
    """The header deadline moves with each answer (serving._HeaderDeadline keeps one timer per
    connection): a timer set for an earlier deadline must not cut a connection armed since."""
    request = b"GET /__emulator/health HTTP/1.1\r\nHost: localhost\r\n\r\n"
    with ServerThread(small_settings(port=0, read_timeout=0.6)) as server:
        sock = connect(server)
        sock.settimeout(5)
        for _ in range(3):  # 0.4 s apart: past the first deadline, within each one's own
            time.sleep(0.4)
            sock.sendall(request)
            assert answer(sock).startswith(b"HTTP/1.1 200 ")
        sock.sendall(b"GET /__emulator/health HTTP/1.1\r\n")  # then headers that never end
        began = time.monotonic()
        closed, _ = closed_within(sock, 3.0)
        assert closed and 0.3 < time.monotonic() - began < 2.0
        sock.close()


def test_a_body_that_never_arrives_is_a_408():
    with ServerThread(small_settings(port=0, read_timeout=0.5)) as server:
        sock = connect(server)
        sock.sendall(
            b"POST /segments/v1/exports HTTP/1.1\r\nHost: localhost\r\nAuthorization: Basic "
            + KEY.encode()
            + b'\r\nContent-Length: 100\r\n\r\n{"segm'
        )
        _, data = closed_within(sock, 3.0)
        sock.close()
    head = data.split(b"\r\n\r\n", 1)
    assert data.startswith(b"HTTP/1.1 408 "), data[:200]
    assert b'"code":4' in head[1] and b"did not arrive within 0.5 s" in head[1]


def test_a_client_leaving_mid_body_is_no_crash(caplog):
    with ServerThread(small_settings(port=0)) as server:
        sock = connect(server)
        sock.sendall(
            b"POST /__emulator/faults HTTP/1.1\r\nHost: localhost\r\n"
            b'Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"st'
        )
        time.sleep(0.2)
        sock.close()
        time.sleep(0.3)
        metrics = httpx.get(f"{server.base_url}/metrics").text
    assert 'status="500"' not in metrics
    assert 'route="/__emulator/faults",status="499"} 1.0' in metrics
    assert "unhandled error" not in caplog.text and "Exception in ASGI" not in caplog.text


def test_answered_requests_leave_no_scope_for_the_garbage_collector():
    """A request's scope (and all it holds: caller, control view, the server's request cycle)
    is freed when the request is answered, not left in a reference cycle for the garbage
    collector: its collections were the pauses behind the p99 under load (the server's own
    `send`, kept in the scope for the fault rules, made one cycle per request). The client's
    own cycles (httpx keeps some) are not the server's: only ASGI scopes are counted."""
    requests = 200
    with (
        ServerThread(small_settings(port=0)) as server,
        httpx.Client(base_url=server.base_url, headers={"Authorization": f"Basic {KEY}"}) as http,
    ):
        for path in ("/segments/v1/everyone", "/segments/v1/everyone/"):  # and a trailing /
            assert http.get(path).status_code == 200
        gc.collect()
        gc.set_debug(gc.DEBUG_SAVEALL)  # what a collection finds is kept in gc.garbage
        try:
            for n in range(requests):
                path = "/segments/v1/everyone" if n % 2 else "/segments/v1/everyone/"
                assert http.get(path).status_code == 200
            gc.collect()
            scopes = sum(
                1
                for thing in gc.garbage
                if isinstance(thing, dict) and thing.get("type") == "http" and "asgi" in thing
            )
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
    assert scopes == 0, f"{scopes} request scopes in reference cycles after {requests} requests"
