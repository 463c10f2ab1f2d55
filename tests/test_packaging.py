"""The Dockerfile, checked like a linter (no Docker engine in CI), and the shipped data files."""

import inspect
import json
import re
import tomllib
from pathlib import Path

from app.cli import serve

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = (ROOT / "Dockerfile").read_text()
INSTRUCTIONS = [line.strip() for line in re.sub(r"\\\n", " ", DOCKERFILE).splitlines()
                if line.strip() and not line.lstrip().startswith("#")]  # fmt: skip


def _args(keyword: str) -> list[str]:
    return [line.split(None, 1)[1] for line in INSTRUCTIONS if line.split()[0] == keyword]


def test_dockerfile_is_multi_stage_on_python_311_slim() -> None:
    stages = _args("FROM")
    assert len(stages) >= 2
    assert all(stage.startswith("python:3.11-slim") for stage in stages)
    assert any(arg.startswith("--from=build") for arg in _args("COPY"))


def test_dockerfile_copies_the_code_rules_and_migrations() -> None:
    copied = {arg.split()[0] for arg in _args("COPY")}
    assert {"app/", "rules/", "migrations/", "pyproject.toml"} <= copied


def test_dockerfile_runs_as_non_root_and_exposes_the_served_port() -> None:
    users = _args("USER")
    assert users
    assert users[-1] not in {"root", "0"}
    default_port = inspect.signature(serve.serve).parameters["port"].default
    assert _args("EXPOSE") == [str(default_port)]
    assert f"127.0.0.1:{default_port}/readyz" in _args("HEALTHCHECK")[0]


def test_dockerfile_entrypoint_is_the_cli() -> None:
    assert json.loads(_args("ENTRYPOINT")[0]) == ["screening"]
    assert json.loads(_args("CMD")[-1]) == ["serve", "--host", "0.0.0.0"]


def test_every_rule_and_migration_file_ships_in_the_wheel() -> None:
    data_files = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "data-files"
    ]
    shipped = {path for patterns in data_files.values() for pattern in patterns
               for path in ROOT.glob(pattern)}  # fmt: skip
    needed = list((ROOT / "rules").rglob("*.yaml")) + [
        p for p in (ROOT / "migrations").rglob("*") if p.suffix in {".py", ".mako"}
    ]
    assert [p.relative_to(ROOT) for p in needed if p not in shipped] == []


def test_license_is_an_spdx_expression_so_setuptools_does_not_warn() -> None:
    # setuptools >= 77 deprecates `license = {text = ...}` and License classifiers (it warned
    # on every install); an SPDX string is the supported form.
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["license"] == "Apache-2.0"
    assert not [c for c in project["project"].get("classifiers", []) if c.startswith("License")]
    requires = project["build-system"]["requires"]
    assert "setuptools>=77" in requires
