"""`fullstory-export` as a real process against a server that is not there: it names the host
first (and says so when that is FullStory's production API), then each retry as it happens,
before the wait, so a user never sits through the backoff in silence."""

from __future__ import annotations

import os
import selectors
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import ROOT, refusing_url, stop


def export_command(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    script = Path(sys.executable).with_name("fullstory-export")
    command = (
        [str(script)]
        if script.exists()
        else [sys.executable, "-m", "fullstory_emulator.client.cli"]
    )
    return subprocess.Popen(
        [*command, *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def lines(process: subprocess.Popen[str], count: int) -> list[str]:
    """The first `count` lines of stderr, each as soon as it is written (the deadline only
    guards against a hang: no line is waited for longer than it takes to be written)."""
    assert process.stderr is not None
    got: list[str] = []
    with selectors.DefaultSelector() as selector:
        selector.register(process.stderr, selectors.EVENT_READ)
        deadline = time.monotonic() + 30
        while len(got) < count and time.monotonic() < deadline:
            if selector.select(timeout=deadline - time.monotonic()):
                line = process.stderr.readline()
                if not line:
                    break
                got.append(line.rstrip("\n"))
    return got


@pytest.fixture
def env() -> Iterator[dict[str, str]]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("FULLSTORY_") and k.lower() not in ("no_proxy", "all_proxy")
    }
    clean.update(FULLSTORY_API_KEY="na1.nobody-home", COLUMNS="200")
    yield clean


def test_each_retry_is_told_before_its_wait(env):
    with refusing_url() as url:
        env["FULLSTORY_API_URL"] = url
        # a minute's backoff: the retry line must come before it, while the process waits
        process = export_command("segments", "--backoff", "60", env=env)
        try:
            first, retry = lines(process, 2)
            assert process.poll() is None  # still waiting out the first backoff
        finally:
            stop(process)
    assert first == f"connecting to {url} (FULLSTORY_API_URL)"
    assert retry.startswith("connection failed on /segments/v1 (ConnectError: ")
    assert retry.endswith("; retrying in 60 s (attempt 1 of 6 failed)")


@pytest.mark.parametrize(
    ("key", "host"),
    [("na1.x", "https://api.fullstory.com"), ("eu1.x", "https://api.eu1.fullstory.com")],
)
def test_without_a_url_it_says_it_uses_production(env, key, host):
    with refusing_url() as proxy:  # production is never reached: its proxy refuses
        env.update(FULLSTORY_API_KEY=key, HTTPS_PROXY=proxy, https_proxy=proxy)
        process = export_command("segments", "--retries", "0", env=env)
        try:
            _, err = process.communicate(timeout=60)
        finally:
            stop(process)
    err_lines = err.splitlines()
    assert err_lines[0] == (
        f"no --api-url or FULLSTORY_API_URL: using FullStory's production API {host}"
    )
    assert process.returncode == 1 and "failed after 1 attempts" in err_lines[-1]
