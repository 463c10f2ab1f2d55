"""A webhook receiver on localhost that records what it gets and can be told to fail."""

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    """Every request (headers, body), in arrival order; ``status`` is what it answers."""

    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    status: int = 204
    delay: float = 0.0  # seconds each request takes (a slow receiver)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def bodies(self) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(body) for _, body in self.requests]

    def unique(self) -> dict[str, dict[str, Any]]:
        """Payloads by webhook-id, first arrival kept (how a receiver de-duplicates)."""
        found: dict[str, dict[str, Any]] = {}
        with self.lock:
            for headers, body in self.requests:
                found.setdefault(headers["webhook-id"], json.loads(body))
        return found


@contextmanager
def receiver(port: int = 0) -> Iterator[Received]:
    """Serve on 127.0.0.1; every POST is recorded and answered with ``received.status``."""
    received = Received()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            time.sleep(received.delay)
            with received.lock:
                status = received.status
                if 200 <= status < 300:
                    headers = {key.lower(): value for key, value in self.headers.items()}
                    received.requests.append((headers, body))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
            return

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    received.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield received
    finally:
        server.shutdown()
        server.server_close()
