"""The import direction of docs/architecture.md, enforced over every module (single files too):
each part of the package imports only the parts below it, the domain knows nothing of HTTP, no
module imports itself in a circle, and the document's table is the package and these rules."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import ROOT

PACKAGE = ROOT / "fullstory_emulator"
DOC = ROOT / "docs" / "architecture.md"
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
BASE_ALLOWED = BASE | {"__init__"}  # `from fullstory_emulator import __version__`
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


def modules(package: Path = PACKAGE) -> Iterator[tuple[str, Path]]:
    """Every module of the package: packages' modules and single-file ones alike."""
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package.parent).with_suffix("")
        name = ".".join(relative.parts)
        yield name.removesuffix(".__init__"), path


def imports(
    name: str, path: Path, *, top_level_only: bool, package: Path = PACKAGE
) -> Iterator[str]:
    """Absolute names of the modules `path` imports (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    parent = name if path.name == "__init__.py" else name.rpartition(".")[0]
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    for node in nodes:
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = parent.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            for alias in node.names:  # `from . import x` may name a submodule, or not
                submodule = f"{target}.{alias.name}"
                where = package.parent / submodule.replace(".", "/")
                yield submodule if where.with_suffix(".py").exists() or where.is_dir() else target


def wrong_imports(package: Path = PACKAGE) -> list[str]:
    """Each import of one part of the package by a part its row does not name, and each
    module of a part the table does not place."""
    wrong = []
    for name, path in modules(package):
        mine = part(name)
        if mine not in ALLOWED:
            wrong.append(f"{name} belongs to {mine!r}, which docs/architecture.md does not place")
            continue
        allowed = ALLOWED[mine] | {mine, "base"}
        for target in imports(name, path, top_level_only=False, package=package):
            if (target == "fullstory_emulator" or target.startswith("fullstory_emulator.")) and (
                theirs := part(target)
            ) not in allowed:
                wrong.append(f"{name} imports {target} ({mine} -> {theirs})")
    return wrong


def test_each_part_imports_only_what_lies_below_it():
    assert not (wrong := wrong_imports()), "\n".join(wrong)


def test_every_module_is_checked_single_files_included():
    names = {name for name, _ in modules()}
    single = {"instance", "server", "serving", "cli", "recording", "settings", "contract"}
    assert {f"fullstory_emulator.{module}" for module in single} <= names
    assert {"fullstory_emulator.store.sql", "fullstory_emulator.http.api.common"} <= names


FORMS = {
    "absolute": "import fullstory_emulator.serving\n",
    "from the package": "from fullstory_emulator import serving\n",
    "a name from it": "from fullstory_emulator.serving import Server\n",
    "relative": "from .. import serving\n",
    "a name, relative": "from ..serving import Server\n",
    "inside a function": "def late():\n    from ..serving import Server\n",
}


def tree(root: Path, vocab: str) -> Path:
    """A package laid out like emulator's, whose world/vocab.py is `vocab`."""
    package = root / "fullstory_emulator"
    for module in ("__init__", "serving", "settings", "instance", "world/__init__", "world/vocab"):
        path = package / f"{module}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(vocab if module == "world/vocab" else "", encoding="utf-8")
    return package


@pytest.mark.parametrize("form", sorted(FORMS))
def test_a_forbidden_import_of_a_single_file_module_is_caught(tmp_path, form):
    """world/ may import only the base: importing serving.py (a single-file module, which the
    checker once took for an attribute) is caught, whichever way it is written."""
    wrong = wrong_imports(tree(tmp_path, FORMS[form]))
    assert wrong == [
        "fullstory_emulator.world.vocab imports fullstory_emulator.serving (world -> serving)"
    ]


def test_what_a_part_may_import_passes(tmp_path):
    assert wrong_imports(tree(tmp_path, "from ..settings import Settings\n")) == []
    package = tree(tmp_path, "")
    (package / "extra.py").write_text("", encoding="utf-8")
    assert wrong_imports(package) == [
        "fullstory_emulator.extra belongs to 'extra', which docs/architecture.md does not place"
    ]


def table() -> tuple[set[str], dict[str, set[str]]]:
    """docs/architecture.md's table: the modules its base rows name, and each other part its
    rows name (`x.py`, `x/`) with the parts its "imports" cell allows."""
    base: set[str] = set()
    parts: dict[str, set[str]] = {"base": set()}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith(("`", "*base*")):
            continue
        named = re.findall(r"`(\w+)(?:\.py|/)`", cells[0])
        if cells[0].startswith("*base*"):
            base.update(named)
            continue
        allowed = set(re.findall(r"`(\w+)`", cells[2]))
        parts.update(
            dict.fromkeys(named, allowed | (DOMAIN if "the domain" in cells[2] else set()))
        )
    return base, parts


def test_the_architecture_table_is_the_package_and_its_rules():
    base, parts = table()
    assert base == BASE, "the base modules"
    top = {path.stem for path in PACKAGE.glob("*.py") if path.stem != "__init__"}
    top |= {path.name for path in PACKAGE.iterdir() if (path / "__init__.py").exists()}
    assert (set(parts) - {"base"}) | base == top, "a row for every module and package"
    assert parts == ALLOWED, "what each part may import"


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
