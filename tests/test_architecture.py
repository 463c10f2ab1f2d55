"""STYLE.md section 2 and 12, enforced with ast: import direction, banned calls, module size."""

import ast
import sys
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


# (which modules, what they may import besides the standard library)
RULES: list[tuple[str, tuple[str, ...]]] = [
    ("app.engine", ("app.engine", "pydantic", "yaml")),
    ("app.db", ("app.db", "sqlalchemy", "alembic", "app.settings")),
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


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_banned_calls(path: Path) -> None:
    tree = ast.parse(path.read_text())
    calls, source = _calls(tree), ast.unparse(tree)
    # Transactions end only in session_scope. The one other commit is the SQLite driver
    # connection's own, overridden in app/db/engine.py to hand the writer lock on.
    allowed = {APP / "db" / "session.py": None, APP / "db" / "engine.py": {"super().commit"}}
    if path not in allowed or allowed[path] is not None:
        commits = {c for c in calls if c.endswith(".commit")} - (allowed.get(path) or set())
        assert not commits, f"{path}: commit outside session.py"
    assert "update(AuditEvent)" not in source
    assert "delete(AuditEvent)" not in source
    if "engine" in path.relative_to(APP).parts:
        for banned in ("date.today", "datetime.now", "os.environ", "datetime.today"):
            assert banned not in source, f"{path}: {banned} in the pure core"


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_module_size_budget(path: Path) -> None:
    assert len(path.read_text().splitlines()) <= 500, f"{path} is over 500 lines: split it by noun"


def test_conftest_is_short() -> None:
    assert len((ROOT / "tests" / "conftest.py").read_text().splitlines()) <= 150
