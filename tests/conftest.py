"""Shared fixtures: an emulator app on a frozen clock, reached through httpx (Starlette's
TestClient is an httpx.Client over the ASGI app)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers import FIGURES, Harness, harness_factory

STORES = ("memory", "sqlite")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests marked `stores` run once per store backend."""
    if metafunc.definition.get_closest_marker("stores") and "store" in metafunc.fixturenames:
        metafunc.parametrize("store", STORES)


@pytest.fixture
def store() -> str:
    return "memory"


@pytest.fixture
def make_harness(store: str, tmp_path: Path) -> Iterator[Callable[..., Harness]]:
    if store == "sqlite":
        yield from harness_factory(lambda n: {"data_dir": tmp_path / f"data{n}"})
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
