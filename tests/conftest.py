"""Shared fixtures: an emulator app on a frozen clock, reached through httpx (Starlette's
TestClient is an httpx.Client over the ASGI app)."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers import (
    FIGURES,
    PG_URL_ENV,
    Harness,
    PostgresServer,
    harness_factory,
    postgres_bin,
    with_schema,
)


def pytest_configure(config: pytest.Config) -> None:
    """Let the processes the tests start take Ctrl-C: a suite launched in the background (`&`,
    nohup) inherits SIGINT ignored, and so would every child, whose Ctrl-C tests then see no
    interrupt. A handler, unlike "ignored", is not inherited across exec."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


STORES = ("memory", "sqlite", "postgresql")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests marked `stores` run once per store backend."""
    if metafunc.definition.get_closest_marker("stores") and "store" in metafunc.fixturenames:
        metafunc.parametrize("store", STORES)


@pytest.fixture
def store() -> str:
    return "memory"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer | None]:
    """The session's PostgreSQL: $FULLSTORY_EMULATOR_TEST_POSTGRES (None here: a server this
    suite may not stop), or a throwaway cluster started from the installed binaries."""
    if os.environ.get(PG_URL_ENV):
        yield None
        return
    bindir = postgres_bin()
    if bindir is None:
        pytest.skip(
            "PostgreSQL is not installed (no initdb in /usr/lib/postgresql/*/bin or on PATH); "
            ".ci/run installs Debian's postgresql, or set " + PG_URL_ENV
        )
    server = PostgresServer(bindir)
    yield server
    server.close()


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer | None) -> str:
    """A URL of the session's PostgreSQL server; add a fresh schema with `with_schema`."""
    return postgres_server.url if postgres_server else os.environ[PG_URL_ENV]


@pytest.fixture
def make_harness(
    store: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[..., Harness]]:
    if store == "sqlite":
        yield from harness_factory(lambda n: {"data_dir": tmp_path / f"data{n}"})
    elif store == "postgresql":
        url: str = request.getfixturevalue("postgres_url")  # started only when needed
        yield from harness_factory(lambda n: {"store": with_schema(url)})
    else:
        yield from harness_factory()


@pytest.fixture
def harness(make_harness: Callable[..., Harness]) -> Harness:
    return make_harness()


def pytest_terminal_summary(terminalreporter, config) -> None:  # type: ignore[no-untyped-def]
    """Print the schemathesis figures (cases run, failures) at the end of the run."""
    figures = config.stash.get(FIGURES, None)
    if figures:
        terminalreporter.write_line(figures)
