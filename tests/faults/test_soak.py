"""Issue 15, faults: the 60-second soak (`bench/soak.py`) on each database.

The bench itself starts a production-configured server process and sends the mixed traffic
(writes, reads, lists, form pages, review pages); this test runs it as an operator would,
for 60 s at a modest fixed rate, with thresholds meant for a short run on a loaded 2-core
machine: RSS growth under 25 % after a 15 s warm-up, no descriptor or connection leak
between the first and last 20 s (a slack of 5 connections: the pool grows lazily), a last
p99 within 3x the first (or under 2 s), and no 5xx or transport error; `screening audit
verify` passes at the end. The 20-minute soak with the issue's own thresholds is
`python bench/soak.py` (bench/README.md).
"""

import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CI_RUN = [
    "--duration", "60", "--warmup", "15", "--window", "20", "--rate", "10",
    "--sample-every", "2", "--max-rss-growth", "0.25", "--max-p99-ratio", "3",
    "--p99-floor-ms", "2000", "--connection-slack", "5",
]  # fmt: skip
# The server's pool opens connections lazily, up to 20 on PostgreSQL: on a loaded machine a
# slow minute opens a few more, which is not a leak; a leak of one per request (600 requests
# here) is far beyond a slack of 5.


def test_sixty_second_soak_leaks_nothing(empty_database_url: str, tmp_path: Path) -> None:
    started = time.monotonic()
    report_file = tmp_path / "soak.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "soak.py"), "--database-url", empty_database_url,
         *CI_RUN, "--json", str(report_file)],
        capture_output=True,
        timeout=600,
        check=False,
    )  # fmt: skip
    output = (done.stdout + done.stderr).decode()[-4000:]
    assert report_file.exists(), output
    report = json.loads(report_file.read_text())
    assert report["checks"] == {
        "rss_growth": True,
        "no_fd_leak": True,
        "no_connection_leak": True,
        "p99_stable": True,
        "no_errors": True,
    }, output
    assert report["audit_verify_ok"] is True
    assert done.returncode == 0, output
    # The mix reached every kind of request.
    kinds = {name.split()[0] for name in report["requests"]}
    assert kinds == {"write", "read", "list", "form", "review"}
    print(
        f"soak: {sum(report['requests'].values())} requests, "
        f"RSS growth {report['rss_growth']:.1%}, "
        f"fds {report['fds_first_last']}, connections {report['connections_first_last']}, "
        f"p99 ms {report['p99_ms_first_last']}, {time.monotonic() - started:.1f} s"
    )
