"""The README's first run, tried as printed on a fresh copy of the project (issue 17).

`make run` on a copy of the tracked files (its own .venv, database and secrets), then every
line of the README's first-run block, then the curl and the form link that `make run`
printed. The only change to what is printed is the port: 8000 may be taken on a shared
machine, so the test serves on a free one and rewrites ``127.0.0.1:8000`` to it.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"<!-- first-run:begin.*?-->\s*```sh\n(.*?)```\s*<!-- first-run:end -->", re.S)

pytestmark = pytest.mark.skipif(
    shutil.which("make") is None or shutil.which("curl") is None,
    reason="needs make and curl (the README's own tools)",
)


def first_run_lines() -> list[str]:
    """The commands of the README's first-run block, one per line."""
    found = BLOCK.search((ROOT / "README.md").read_text())
    assert found is not None, "README.md has no first-run block"
    return [line for line in found.group(1).splitlines() if line.strip()]


def _copy_tracked(target: Path) -> None:
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True
    ).stdout.split(b"\0")
    for name in filter(None, (f.decode() for f in files)):
        if (ROOT / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, target / name)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _environment() -> dict[str, str]:
    keep = {"PATH", "HOME", "LANG", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS"}
    env = {k: v for k, v in os.environ.items() if k in keep or k.startswith("PIP_")}
    return env | {"PATH": "/usr/local/bin:/usr/bin:/bin"}


def _wait_for(url: str, process: subprocess.Popen[bytes], log: Path, seconds: int = 600) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"make run exited:\n{log.read_text(errors='replace')}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"make run did not serve {url}:\n{log.read_text(errors='replace')}")


def _make_run(checkout: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as sink:
        return subprocess.Popen(
            ["make", "run", f"PORT={port}"],
            cwd=checkout,
            env=_environment(),
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("fresh-copy")
    _copy_tracked(target)
    return target


def _bash(command: str, checkout: Path, port: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", command.replace("127.0.0.1:8000", f"127.0.0.1:{port}")],
        cwd=checkout,
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_readme_first_run_works_as_printed(checkout: Path) -> None:
    port, log = _free_port(), checkout / "make-run.log"
    process = _make_run(checkout, port, log)
    try:
        _wait_for(f"http://127.0.0.1:{port}/healthz", process, log)
        printed = log.read_text()
        script = "\n".join(first_run_lines())
        ran = _bash(script, checkout, port)
        assert ran.returncode == 0, f"{ran.stdout}\n{ran.stderr}"
        curl = printed[printed.index("curl -s") : printed.index("Review flagged")].strip()
        answered = _bash(curl, checkout, port)
        assert '"decision"' in answered.stdout, answered.stderr
        link = re.search(r"Try the patient form: (\S+)", printed)
        assert link is not None, printed
        with urllib.request.urlopen(link.group(1), timeout=10) as page:
            assert page.status == 200
            assert "+1 555 0100" in page.read().decode()  # the demo clinic's phone
    finally:
        _stop(process)
    again = _make_run(checkout, port, log := checkout / "make-run-2.log")
    try:
        _wait_for(f"http://127.0.0.1:{port}/healthz", again, log)
        second = log.read_text()
        assert "pip install" not in second  # nothing changed in pyproject.toml
        assert f"are in {checkout / 'screening-first-run.txt'}" in second
        assert "sk_" not in second
    finally:
        _stop(again)
