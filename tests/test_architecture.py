"""The import direction of docs/architecture.md, enforced: each part of the package imports only
the parts below it, the domain knows nothing of HTTP, and no module imports itself in a circle."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import ROOT

PACKAGE = ROOT / "emulator"
BASE = {
    "contract",
    "settings",
    "clock",
    "ids",
    "timestamps",
    "durations",
    "netloc",
    "logs",
    "errors",
    "resources",
    "auth",
    "tls",
    "recording",
    "hosts",
}
BASE_ALLOWED = BASE | {"__init__"}  # `from emulator import __version__`
DOMAIN = {"world", "store", "files", "control", "exports"}
# What each part may import besides itself (and, for every part, the base modules).
ALLOWED: dict[str, set[str]] = {
    "base": set(),
    "world": set(),
    "store": set(),
    "files": {"world", "store"},
    "control": {"store"},
    "exports": {"world", "store", "files", "control"},
    "instance": DOMAIN,
    "http": DOMAIN | {"instance"},
    "serving": set(),
    "server": {"http", "serving", "instance"},
    "client": {"serving"},
    "testing": {"client", "server", "http", "instance", "serving"} | DOMAIN,
    "cli": {"client", "testing", "server", "serving", "instance"},
}
WEB = ("starlette", "uvicorn", "httpx", "mcp")


def part(module: str) -> str:
    """The part of the package that `emulator.a.b` belongs to."""
    first = module.split(".")[1] if "." in module else "__init__"
    return "base" if first in BASE_ALLOWED else first


def modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(ROOT).with_suffix("")
        name = ".".join(relative.parts)
        yield name.removesuffix(".__init__"), path


def imports(name: str, path: Path, *, top_level_only: bool) -> Iterator[str]:
    """Absolute names of the modules `path` imports (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    for node in nodes:
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            for alias in node.names:  # `from . import x` may name a submodule, or not
                submodule = f"{target}.{alias.name}"
                yield (
                    submodule
                    if (PACKAGE.parent / submodule.replace(".", "/")).with_suffix(".py").exists()
                    or (PACKAGE.parent / submodule.replace(".", "/")).is_dir()
                    else target
                )


def test_each_part_imports_only_what_lies_below_it():
    wrong = []
    for name, path in modules():
        mine = part(name)
        allowed = ALLOWED[mine] | {mine, "base"}
        for target in imports(name, path, top_level_only=False):
            if target.startswith("emulator.") or target == "emulator":
                theirs = part(target)
                if theirs not in allowed and (PACKAGE / target.split(".")[1]).exists():
                    wrong.append(f"{name} imports {target} ({mine} -> {theirs})")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("layer", sorted(DOMAIN | {"base"}))
def test_the_domain_knows_nothing_of_http(layer):
    wrong = [
        f"{name} imports {target}"
        for name, path in modules()
        if part(name) == layer
        for target in imports(name, path, top_level_only=False)
        if target.split(".")[0] in WEB
    ]
    assert not wrong, "\n".join(wrong)


def test_no_import_circles():
    known = {name for name, _ in modules()}
    graph = {
        name: {t for t in imports(name, path, top_level_only=True) if t in known and t != name}
        for name, path in modules()
    }
    done: set[str] = set()

    def visit(node: str, trail: list[str]) -> None:
        if node in trail:
            cycle = [*trail[trail.index(node) :], node]
            raise AssertionError("import circle: " + " -> ".join(cycle))
        if node in done:
            return
        for target in sorted(graph[node]):
            visit(target, [*trail, node])
        done.add(node)

    for name in sorted(graph):
        visit(name, [])
