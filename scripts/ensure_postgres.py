"""Make sure PostgreSQL answers on 127.0.0.1:5432 (start the local cluster if not); create DBs.

Usage: ``python scripts/ensure_postgres.py DBNAME [DBNAME ...]``. Each named database is
dropped and created empty. Exits non-zero with a clear message when PostgreSQL cannot be
reached or started: the PostgreSQL half of the test suite is never skipped silently.
"""

import glob
import shutil
import subprocess
import sys
import time

import psycopg
from psycopg import sql

ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=3"


def _answers() -> bool:
    try:
        with psycopg.connect(ADMIN):
            return True
    except psycopg.OperationalError:
        return False


def _start_cluster() -> None:
    versions = sorted(glob.glob("/etc/postgresql/*/main"))
    if not versions or shutil.which("pg_ctlcluster") is None:
        sys.exit(
            "error: PostgreSQL is not answering on 127.0.0.1:5432 and no local cluster was "
            "found to start (install or start PostgreSQL: user postgres, trust auth)"
        )
    version = versions[-1].split("/")[3]
    sys.stderr.write(f"PostgreSQL is not answering; starting cluster {version}/main\n")
    command = ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"]
    subprocess.run(command, check=False)


def main() -> None:
    """Ensure the server answers, then recreate each database named on the command line."""
    if not _answers():
        _start_cluster()
        deadline = time.monotonic() + 30
        while not _answers():
            if time.monotonic() > deadline:
                sys.exit("error: PostgreSQL did not answer on 127.0.0.1:5432 within 30 s")
            time.sleep(0.5)
    with psycopg.connect(ADMIN, autocommit=True) as connection:
        for name in sys.argv[1:]:
            database = sql.Identifier(name)
            connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(database))
            connection.execute(sql.SQL("CREATE DATABASE {}").format(database))
    sys.stderr.write(f"PostgreSQL answers on 127.0.0.1:5432; fresh: {' '.join(sys.argv[1:])}\n")


if __name__ == "__main__":
    main()
