"""STYLE.md section 2 and 12, enforced with ast: import direction, banned calls, sizes.

The layers, lowest first (issue 14): the pure core and base modules; storage (``app.db``,
whose unit of work alone begins and commits transactions); the shared HTTP helpers (errors,
responses, pages, JSON bodies, the app context); then the domains in the order
``audit < apikey, datakey < account, rulepack < screening < review < invitation < form``;
then the interoperability interfaces of issue 16 (``fhir, webhook < cds``; the webhook
outbox rows are written by ``app.audit.outbox``, below them); and the edges on top (the
audit-trail API, health, the middleware, ``create_app``, the CLI). A module imports only
from lower layers or its own package, so packages cannot import in a cycle; every module of
``app`` must be placed in a layer.
"""

import ast
import graphlib
import sys
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "app"
MODULES = sorted(APP.rglob("*.py"))
STDLIB = set(sys.stdlib_module_names)


def _name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def _imports(tree: ast.AST) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def _allowed(module: str, prefixes: tuple[str, ...]) -> bool:
    top = module.split(".")[0]
    return top in STDLIB or any(module == p or module.startswith(p + ".") for p in prefixes)


LAYERS: list[tuple[str, ...]] = [
    ("app", "app.settings", "app.logs", "app.crypto", "app.metrics", "app.engine", "app.text"),
    ("app.db",),
    ("app.errors",),
    ("app.responses", "app.html", "app.jsonbody", "app.context"),
    ("app.audit",),
    ("app.apikey", "app.datakey"),
    ("app.account", "app.rulepack"),
    ("app.screening",),
    ("app.review",),
    ("app.invitation",),
    ("app.form",),
    ("app.fhir", "app.webhook"),
    ("app.cds",),
    ("app.auditlog", "app.health", "app.observability", "app.home"),
    ("app.main",),
    ("app.cli",),
    ("app.__main__",),
]
RANK = {unit: rank for rank, units in enumerate(LAYERS) for unit in units}


def _unit(module: str) -> str:
    """The layered unit of an ``app`` module: its package, or the top-level module itself."""
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else module


def _app_imports(path: Path) -> set[str]:
    return {m for m in _imports(ast.parse(path.read_text())) if _unit(m) in RANK or m == "app"}


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_imports_follow_the_layers(path: Path) -> None:
    name = _name(path)
    unit = _unit(name)
    assert unit in RANK, f"{name}: place {unit} in a layer of tests/test_architecture.py"
    wrong = {
        m for m in _app_imports(path) if _unit(m) != unit and RANK.get(_unit(m), -1) >= RANK[unit]
    }
    assert wrong == set(), f"{name} imports from its own layer or above"


def test_packages_import_in_no_cycle() -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    for path in MODULES:
        unit = _unit(_name(path))
        graph[unit] |= {_unit(m) for m in _app_imports(path)} - {unit}
    graphlib.TopologicalSorter(graph).prepare()  # raises CycleError naming the cycle


# (which modules, what they may import besides the standard library)
RULES: list[tuple[str, tuple[str, ...]]] = [
    ("app.engine", ("app.engine", "pydantic", "yaml")),
    # anyio: the unit of work's writer limit on PostgreSQL (a worker-thread capacity limiter).
    ("app.db", ("app.db", "sqlalchemy", "alembic", "app.settings", "anyio")),
]
FORBIDDEN: list[tuple[str, tuple[str, ...]]] = [
    (".service", ("fastapi", "starlette", "typer", "uvicorn")),
    (".router", ("sqlalchemy", "app.db")),
    ("app.cli", ("app.screening.router", "app.health.router", "fastapi")),
]


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_imports_point_the_right_way(path: Path) -> None:
    name, imports = _name(path), _imports(ast.parse(path.read_text()))
    for package, allowed in RULES:
        if name == package or name.startswith(package + "."):
            assert {m for m in imports if not _allowed(m, allowed)} == set(), name
    for marker, banned in FORBIDDEN:
        if marker in name:
            assert {
                m for m in imports if _allowed(m, banned) and m.split(".")[0] not in STDLIB
            } == set()


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_no_relative_or_function_level_imports(path: Path) -> None:
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}:{node.lineno}: relative import"
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            nested = [n for n in ast.walk(node) if isinstance(n, ast.Import | ast.ImportFrom)]
            assert nested == [], f"{path}:{node.lineno}: import inside a function"


def _calls(tree: ast.AST) -> list[str]:
    return [ast.unparse(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)]


_TRANSACTION_CALLS = (".begin", ".begin_nested", ".commit", ".rollback")


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_banned_calls(path: Path) -> None:
    tree = ast.parse(path.read_text())
    calls, source = _calls(tree), ast.unparse(tree)
    # Only the unit of work (app/db) begins, commits or rolls back a transaction; services
    # and edges go through it (UnitOfWork, session_scope, savepoint). The one other commit is
    # the SQLite driver connection's own, overridden in app/db/engine.py to hand the writer
    # lock on.
    if "db" not in path.relative_to(APP).parts[:1]:
        found = {c for c in calls if c.endswith(_TRANSACTION_CALLS)}
        assert not found, f"{path}: {found}: transactions are the unit of work's (app/db/unit.py)"
    assert "update(AuditEvent)" not in source
    assert "delete(AuditEvent)" not in source
    if "engine" in path.relative_to(APP).parts:
        for banned in ("date.today", "datetime.now", "os.environ", "datetime.today"):
            assert banned not in source, f"{path}: {banned} in the pure core"


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_module_size_budget(path: Path) -> None:
    assert len(path.read_text().splitlines()) <= 400, f"{path} is over 400 lines: split it by noun"


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_function_size_budget(path: Path) -> None:
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > 60
    ]
    assert long == [], f"{path}: over 60 lines: {long}"


def test_conftest_is_short() -> None:
    assert len((ROOT / "tests" / "conftest.py").read_text().splitlines()) <= 150
