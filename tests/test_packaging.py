"""The Dockerfile, checked like a linter (no Docker engine in CI), and the shipped data files."""

import inspect
import json
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from app.cli import serve
from app.home import docs

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


def _pins(lock: str) -> dict[str, str]:
    """The locked version of each package, checking that every entry carries hashes."""
    entries: list[list[str]] = []
    for line in (ROOT / lock).read_text().splitlines():
        if line and not line[0].isspace() and not line.startswith("#"):
            entries.append([line])
        elif entries:
            entries[-1].append(line)
    pins: dict[str, str] = {}
    for entry in entries:
        found = re.match(r"([A-Za-z0-9._-]+)==([^\s;\\]+)", entry[0])
        assert found is not None, entry[0]
        assert any("--hash=sha256:" in line for line in entry), found.group(1)
        pins[canonicalize_name(found.group(1))] = found.group(2)
    return pins


def test_locks_cover_pyproject_and_pin_every_package_with_hashes() -> None:
    # A dependency added to pyproject.toml without `make lock` would be missing at install
    # (the package itself is installed with --no-deps).
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = project["dependencies"]
    for lock, needed in (
        ("requirements.lock", runtime),
        ("requirements-dev.lock", runtime + project["optional-dependencies"]["dev"]),
    ):
        pins = _pins(lock)
        unmet = [
            text
            for text in needed
            if (pin := pins.get(canonicalize_name(Requirement(text).name))) is None
            or not Requirement(text).specifier.contains(pin, prereleases=True)
        ]
        assert unmet == [], f"{lock} is stale: run `make lock`"
    runtime_pins, dev_pins = _pins("requirements.lock"), _pins("requirements-dev.lock")
    assert {name: v for name, v in runtime_pins.items() if dev_pins.get(name) != v} == {}
    assert Version(dev_pins["setuptools"]) < Version("81")  # textstat 0.7.3 needs pkg_resources


def test_every_install_goes_through_the_hash_checked_lock() -> None:
    runs = " ".join(_args("RUN"))
    assert "pip install --require-hashes -r requirements.lock" in runs
    assert "pip install --no-deps ." in runs
    makefile = (ROOT / "Makefile").read_text()
    assert "pip install -q --require-hashes -r requirements.lock" in makefile
    assert "pip install -q --require-hashes -r requirements-dev.lock" in makefile
    assert re.findall(r"pip install -q (?:-e|\.)", makefile) == []  # nothing resolved unlocked


def test_the_wheel_ships_the_vendored_docs_assets(tmp_path: Path) -> None:
    # The docs pages load these files from the installed package (Dockerfile: `pip install .`);
    # built from a copy of the tracked files, so nothing untracked or stale can hide a gap.
    source, out = tmp_path / "source", tmp_path / "dist"
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True)
    for name in filter(None, tracked.stdout.decode().split("\0")):
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, source / name)
    pip = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(source)]
    subprocess.run(pip, check=True, capture_output=True)
    (wheel,) = out.glob("candidacy_screening-*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    needed = {f"app/home/static/docs/{name}" for name in docs.ASSETS}
    assert needed - shipped == set()
