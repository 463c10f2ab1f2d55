"""Issue 15, faults: the backup and restore drill of the README's production notes.

Screenings are written through a live server; a signed checkpoint of the chain is taken;
`pg_dump` (custom format) copies the live database while a client keeps writing; `pg_restore` loads
it into a new database, where `screening audit verify --checkpoint` passes: the restored
chain still contains the checkpointed head, and every screening in it decrypts to its digest.
"""

import asyncio
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import make_url

from tests.faults.support import ServerProcess, audit_verify, body_for, stored, submit_all
from tests.server import migrated_with_key, scratch_postgres, server_env


@pytest.fixture
def database_url() -> Iterator[str]:
    with scratch_postgres("backup") as url:
        yield url


def _libpq(url: str) -> str:
    """The URL as pg_dump and pg_restore take it (no SQLAlchemy driver name)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _run(*command: str, env: dict[str, str] | None = None) -> bytes:
    result = subprocess.run(command, env=env, capture_output=True, check=False, timeout=300)
    assert result.returncode == 0, (result.stdout + result.stderr).decode()[-3000:]
    return result.stdout


def test_pg_dump_of_a_live_database_restores_and_verifies(
    database_url: str, tmp_path: Path
) -> None:
    started = time.monotonic()
    api_key = migrated_with_key(database_url)
    server = ServerProcess(database_url, tmp_path)
    checkpoint, dump = tmp_path / "checkpoint.json", tmp_path / "screening.dump"
    during: list[str] = []  # ids acknowledged while the dump runs, in order
    is_dumping = threading.Event()
    try:
        server.start()
        before = asyncio.run(submit_all(server.url, api_key, [f"backup-{i}" for i in range(40)]))
        assert {o.status for o in before} == {201}
        env = server_env(database_url, tmp_path)
        checkpoint.write_bytes(_run(sys.executable, "-m", "app", "audit", "checkpoint", env=env))
        writer = threading.Thread(
            target=_keep_writing, args=(server.url, api_key, during, is_dumping)
        )
        writer.start()
        while len(during) < 5 and writer.is_alive():
            time.sleep(0.05)
        acknowledged_before_dump = list(during)
        _run("pg_dump", "--format=custom", f"--file={dump}", _libpq(database_url))
        is_dumping.set()
        writer.join(timeout=120)
    finally:
        is_dumping.set()
        server.stop()

    with scratch_postgres("restored") as restored_url:
        _run(
            "pg_restore",
            "--no-owner",
            "--exit-on-error",
            f"--dbname={_libpq(restored_url)}",
            str(dump),
        )
        report = audit_verify(restored_url, tmp_path, "--checkpoint", str(checkpoint))
        restored = stored(restored_url)
    # Everything acknowledged before the dump began is in the restore, and decrypts.
    expected = {o.screening_id() for o in before} | set(acknowledged_before_dump)
    assert expected <= set(restored.screening_ids)
    assert report["screenings_checked"] == len(restored.screening_ids)
    assert report["checkpoint_seq"] is not None
    print(
        f"restored {len(restored.screening_ids)} screenings ({len(during)} written during the "
        f"dump run), {report['count']} events, dump {dump.stat().st_size:,} bytes, "
        f"{time.monotonic() - started:.1f} s"
    )


def _keep_writing(url: str, api_key: str, ids: list[str], stop: threading.Event) -> None:
    """Write screenings one after another until ``stop``; record each acknowledged id."""
    headers = {"Authorization": f"Bearer {api_key}"}
    with httpx.Client(base_url=url, timeout=60) as http:
        for i in range(1_000):
            if stop.is_set():
                return
            key = f"during-{i}"
            response = http.post(
                "/v1/screenings", json=body_for(key), headers=headers | {"Idempotency-Key": key}
            )
            assert response.status_code == 201, response.text
            ids.append(str(response.json()["id"]))
