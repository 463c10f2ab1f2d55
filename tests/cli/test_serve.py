"""`screening serve`: refuses outdated databases and bad config; dev first-run bootstrap."""

import getpass
import re
import stat
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.db.engine import make_engine
from app.db.models import AuditEvent
from tests.cli.conftest import Invoke
from tests.factories import AUDIT_KEY, DATA_KEY


def test_serve_refuses_a_database_behind_head(invoke: Invoke) -> None:
    result = invoke("serve")
    assert result.exit_code == 1
    assert "run `screening db upgrade`" in result.stderr


def test_production_refuses_to_start_without_keys(invoke: Invoke) -> None:
    invoke("db", "upgrade")
    result = invoke("serve", env={"SCREENING_ENVIRONMENT": "prod"})
    assert result.exit_code == 1
    assert "SCREENING_DATA_KEY" in result.stderr
    assert not Path("secrets.env").exists()


def test_production_serve_refuses_to_start_without_public_base_url(invoke: Invoke) -> None:
    keys = {"SCREENING_DATA_KEY": DATA_KEY, "SCREENING_AUDIT_KEY": AUDIT_KEY}
    invoke("db", "upgrade")
    result = invoke("serve", env={"SCREENING_ENVIRONMENT": "prod"} | keys)
    assert result.exit_code == 1
    assert "SCREENING_PUBLIC_BASE_URL" in result.stderr
    insecure = keys | {"SCREENING_PUBLIC_BASE_URL": "http://screening.clinic.example"}
    result = invoke("serve", env={"SCREENING_ENVIRONMENT": "prod"} | insecure)
    assert result.exit_code == 1
    assert "https://" in result.stderr


def test_invalid_rule_pack_refuses_to_start(invoke: Invoke, tmp_path: Path) -> None:
    invoke("db", "upgrade")
    (tmp_path / "pack").mkdir()
    result = invoke(
        "serve", env={"SCREENING_RULES_DIR": str(tmp_path / "pack"), "SCREENING_DATA_KEY": DATA_KEY}
    )
    assert result.exit_code == 1
    assert "rule pack" in result.stderr


def test_first_dev_run_generates_keys_and_a_working_demo_key(
    invoke: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: dict[str, Any] = {}

    def fake_run(app: FastAPI, **options: Any) -> None:
        started.update(options, app=app)

    monkeypatch.setattr(uvicorn, "run", fake_run)
    monkeypatch.setattr(getpass, "getuser", lambda: "ops-first")
    invoke("db", "upgrade")
    result = invoke("serve", "--port", "8123")
    assert result.exit_code == 0, result.output
    secrets = tmp_path / "secrets.env"
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
    assert str(secrets) in result.stderr
    assert (started["host"], started["port"]) == ("127.0.0.1", 8123)
    curl = result.stdout[result.stdout.index("curl") :]
    assert "http://127.0.0.1:8123/v1/evaluate" in curl
    key = re.search(r"Bearer (sk_[\w-]+)", curl)
    body = re.search(r"-d '(.+)'", curl)
    assert key is not None
    assert body is not None
    with TestClient(started["app"]) as client:
        response = client.post(
            "/v1/evaluate",
            content=body.group(1),
            headers={"Authorization": f"Bearer {key.group(1)}", "Content-Type": "application/json"},
        )
        assert response.status_code == 200
        assert response.json()["decision"] == "needs_review"
        link = re.search(
            r"Try the patient form: http://127\.0\.0\.1:8123(/form/\S+)", result.stdout
        )
        assert link is not None, result.stdout
        form = client.get(link.group(1))
        assert form.status_code == 200
        assert "+1 555 0100" in form.text
    written = tmp_path / "screening-first-run.txt"
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    assert written.read_text().strip() in result.stdout
    assert "password:" in written.read_text()
    engine = make_engine(f"sqlite:///{tmp_path / 'cli.db'}")
    with engine.connect() as connection:
        operators = connection.execute(
            select(AuditEvent.actor_id).where(AuditEvent.actor_type == "cli")
        ).scalars()
        assert set(operators) == {"ops-first"}  # who ran it, not just "the CLI"
    engine.dispose()
    second = invoke("serve")
    assert second.exit_code == 0
    assert "sk_" not in second.stdout
    assert f"are in {written}" in second.stderr
