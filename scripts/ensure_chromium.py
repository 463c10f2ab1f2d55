"""Make sure Debian's Chromium is installed for the browser tests (install it when root).

Usage: ``python scripts/ensure_chromium.py``. The browser tests drive /usr/bin/chromium with
Playwright; they never download a browser. When it is missing and we are root with apt-get
(as in CI), install the ``chromium`` package; otherwise exit non-zero with what to do.
"""

import os
import shutil
import subprocess
import sys

CHROMIUM = "/usr/bin/chromium"


def main() -> int:
    """Install Chromium if needed; return the process exit code."""
    if os.path.exists(CHROMIUM):
        return 0
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        print(
            f"{CHROMIUM} is missing: the browser tests need Debian's chromium package "
            "(sudo apt-get install chromium)",
            file=sys.stderr,
        )
        return 1
    print("installing chromium for the browser tests (apt-get)...", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True, env=env)
    return 0 if os.path.exists(CHROMIUM) else 1


if __name__ == "__main__":
    sys.exit(main())
