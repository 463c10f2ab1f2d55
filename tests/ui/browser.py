"""Browser-test plumbing: a real `screening serve` process, a host page server, Chromium, axe."""

import http.server
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from axe_playwright_python.sync_playwright import Axe

from tests.factories import AUDIT_KEY, DATA_KEY

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "form"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa"]
_AXE = Axe()


def free_port(host: str) -> int:
    """A TCP port that is free on ``host`` right now."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Server:
    """A running `screening serve` process and the file its output goes to."""

    origin: str
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        """Everything the process printed so far (stdout and stderr)."""
        return self.log.read_text(errors="replace")


@contextmanager
def serve(
    database_url: str, host: str, log: Path, *, rules_dir: Path | None = None
) -> Iterator[Server]:
    """Run `python -m app serve` on ``host`` against ``database_url`` until the block ends.

    ``rules_dir`` is the rule pack to serve (``SCREENING_RULES_DIR``); the default pack if None.
    """
    port = free_port(host)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "SCREENING_ENVIRONMENT": "test",
        "SCREENING_DATABASE_URL": database_url,
        "SCREENING_DATA_KEY": DATA_KEY,
        "SCREENING_AUDIT_KEY": AUDIT_KEY,
        "SCREENING_SECRETS_FILE": "/nonexistent/screening-secrets.env",
        "SCREENING_LOG_LEVEL": "DEBUG",
    }
    if rules_dir is not None:
        env["SCREENING_RULES_DIR"] = str(rules_dir)
    command = [sys.executable, "-m", "app", "serve", "--host", host, "--port", str(port)]
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT
        )
    server = Server(f"http://{host}:{port}", process, log)
    try:
        _wait_until_up(server)
        yield server
    finally:
        process.terminate()
        process.wait(timeout=10)


def _wait_until_up(server: Server) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"screening serve exited:\n{server.output()}")
        try:
            with urllib.request.urlopen(server.origin + "/healthz", timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"screening serve did not start:\n{server.output()}")


@contextmanager
def host_page(host: str, html: str) -> Iterator[str]:
    """Serve ``html`` at ``/`` of ``http://host:<port>`` (a clinic's web page); yield its origin."""
    body = html.encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            return

    httpd = http.server.ThreadingHTTPServer((host, 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def axe_violations(page: Any) -> list[str]:
    """WCAG 2.2 A/AA violations axe-core finds on the page (rule id and first target)."""
    results = _AXE.run(page, options={"runOnly": {"type": "tag", "values": WCAG_TAGS}})
    return [
        f"{v['id']}: {v['help']} at {v['nodes'][0]['target'] if v['nodes'] else '?'}"
        for v in results.response["violations"]
    ]


def screenshot(page: Any, name: str) -> None:
    """Save a full-page PNG under test-artifacts/form/ for a human to look at."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
