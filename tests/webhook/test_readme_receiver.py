"""The README's 10-line webhook receiver verifies what the worker sends, and only that."""

import re
import socket
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from app.webhook import worker

README = Path(__file__).resolve().parents[2] / "README.md"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def _snippet() -> str:
    text = README.read_text()
    pattern = r"<!-- receiver:start -->\n```python\n(.*?)```\n<!-- receiver:end -->"
    match = re.search(pattern, text, re.S)
    assert match is not None
    return match.group(1)


def test_readme_receiver_verifies_and_deduplicates(tmp_path: Path) -> None:
    code = _snippet()
    assert len([line for line in code.splitlines() if line.strip()]) <= 13
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    script = tmp_path / "receiver.py"
    script.write_text(code.replace("whsec_REPLACE_ME", SECRET).replace("9000", str(port)))
    out = tmp_path / "out.txt"
    with out.open("wb") as sink:
        process = subprocess.Popen([sys.executable, str(script)], stdout=sink, stderr=sink)
    try:
        url = f"http://127.0.0.1:{port}/hooks"
        body = '{"data":{"screening_id":"s-1"},"timestamp":"t","type":"screening.created"}'
        claimed = worker.Claimed(uuid.uuid4(), "msg_1", url, SECRET, body)
        sent = worker.Sent(None, None)
        for _ in range(50):
            sent = worker.send(claimed, datetime.now(UTC), 5)
            if sent.status is not None:
                break
            time.sleep(0.1)
        assert sent.status == 204
        assert worker.send(claimed, datetime.now(UTC), 5).status == 204  # a duplicate
        forged = worker.Claimed(claimed.delivery_id, "msg_2", url, "whsec_" + "B" * 32, body)
        assert worker.send(forged, datetime.now(UTC), 5).status is None  # rejected: no answer
    finally:
        process.terminate()
        process.wait(timeout=10)
    printed = out.read_text()
    assert printed.count("screening.created {'screening_id': 's-1'}") == 1
