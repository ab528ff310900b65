"""`fullstory-emulator health`, the Docker HEALTHCHECK: it finds the server from the same settings
(flags or FULLSTORY_EMULATOR_* variables) as the server, over HTTP or TLS, and says why it fails."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from emulator.cli import health, local_url, main, settings_from
from emulator.server import ServerThread
from emulator.settings import Settings
from emulator.tls import ensure_certificates
from tests.helpers import small_settings


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_local_url_is_where_the_server_listens_not_the_public_url():
    settings = Settings(host="0.0.0.0", port=9999, public_url="http://emulator.example:80")
    assert local_url(settings) == "http://127.0.0.1:9999"
    assert local_url(Settings(host="::", port=1, tls=True)) == "https://127.0.0.1:1"
    assert local_url(Settings(host="::1", port=2)) == "http://[::1]:2"
    assert local_url(Settings(host="10.1.2.3", port=3)) == "http://10.1.2.3:3"


def test_health_follows_the_port_from_the_environment(capsys):
    with ServerThread(small_settings(port=0)) as server:
        port = server.settings.port
        _, settings = settings_from(["health"], {"FULLSTORY_EMULATOR_PORT": str(port)})
        assert settings.port == port
        assert health(settings) == 0
    assert capsys.readouterr().out == f"http://127.0.0.1:{port}/__emulator/health: 200\n"


def test_health_flags_win_and_exit_status_is_the_answer(capsys):
    with ServerThread(small_settings(port=0)) as server:
        port = server.settings.port
        with pytest.raises(SystemExit) as ok:
            main(["health", "--port", str(port)])
        assert ok.value.code == 0
    down = closed_port()
    with pytest.raises(SystemExit) as failed:
        main(["health", "--port", str(down)])
    assert failed.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith(f"fullstory-emulator health: http://127.0.0.1:{down}/__emulator/health: ")
    assert "refused" in err


def test_health_over_tls_verifies_against_the_data_dirs_ca(tmp_path, capsys):
    settings = small_settings(port=0, tls=True, data_dir=tmp_path)
    with ServerThread(settings) as server:
        port = server.settings.port
        assert (tmp_path / "tls" / "ca.pem").exists()
        assert health(Settings(port=port, tls=True, data_dir=tmp_path)) == 0
        assert capsys.readouterr().out == f"https://127.0.0.1:{port}/__emulator/health: 200\n"
        # without the data dir it cannot verify, but still asks (the CA is not what is checked)
        assert health(Settings(port=port, tls=True)) == 0
        # plain HTTP to a TLS port fails, and says so
        assert health(Settings(port=port)) == 1
        assert f"http://127.0.0.1:{port}/__emulator/health" in capsys.readouterr().err
        # a CA that did not sign the server's certificate fails verification
        ensure_certificates(tmp_path / "other" / "tls", "127.0.0.1")
        assert health(Settings(port=port, tls=True, data_dir=tmp_path / "other")) == 1
        assert "CERTIFICATE_VERIFY_FAILED" in capsys.readouterr().err


def test_health_needs_no_control_token():
    with ServerThread(small_settings(port=0, control_token="secret")) as server:
        assert health(Settings(port=server.settings.port)) == 0


def test_health_fails_on_an_error_status(capsys):
    class Unavailable(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(503)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    with ThreadingHTTPServer(("127.0.0.1", 0), Unavailable) as httpd:
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        try:
            assert health(Settings(port=httpd.server_address[1])) == 1
        finally:
            httpd.shutdown()
    assert "HTTP Error 503" in capsys.readouterr().err
