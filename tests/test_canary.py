"""Canary sweep: PHI sent everywhere is found nowhere at rest or in the logs (issue 4).

A real server commits to its own database. Unique canary strings go into the subject
reference, the Idempotency-Key, a review note, an invitation subject, invalid answer values,
query strings, path parameters, bearer tokens, cookies, sign-in emails and an oversized body;
every documented route and every error path is called, then the CLI commands run. None of
the canaries may appear in the database file (SQLite, with its WAL) or a `pg_dump`, in the
server's standard output and error, the CLI's output, or the test process's log records.
"""

import base64
import json
import logging
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import make_url

from app.account import service as account_service
from app.account import tokens as account_tokens
from app.apikey import service as apikey_service
from app.audit import service as audit_service
from app.db.engine import make_engine, make_sessionmaker
from app.db.models import Role
from app.db.unit import session_scope
from tests.factories import CANDIDATE_ANSWERS, DATA_KEY, NEEDS_REVIEW_ANSWERS
from tests.form.support import MALE_PAGES
from tests.server import Server, migrated_with_key, running_server, server_env

TAG = uuid.uuid4().hex[:10]
CANARIES = {
    name: f"CNRY{name.upper()}{TAG}"
    for name in ("subject", "idem", "note", "invite", "value", "query", "path", "token",
                 "cookie", "email", "body", "form")
}  # fmt: skip
CLINIC = f"Canary clinic {TAG}"
NEW_KEY = "k2:" + base64.b64encode(bytes(range(100, 132))).decode()


def found_in(data: bytes) -> list[str]:
    """The canaries present in ``data`` (UTF-8 and UTF-16, as SQLite may store text)."""
    return [
        name
        for name, canary in CANARIES.items()
        if canary.encode() in data or canary.encode("utf-16-le") in data
    ]


@pytest.fixture
def credentials(empty_database_url: str) -> tuple[str, str, str]:
    """A migrated database with an intake key, an audit key and a physician's token."""
    key = migrated_with_key(empty_database_url, clinic_name=CLINIC)
    engine = make_engine(empty_database_url)
    with session_scope(make_sessionmaker(engine)) as session:
        auditor = apikey_service.create(
            session,
            clinic_name=CLINIC,
            scopes=(apikey_service.AUDIT_READ,),
            name="auditor",
            actor=audit_service.Actor.cli(),
            now=datetime.now(UTC),
        ).key
        account_service.create_user(
            session,
            clinic_name=CLINIC,
            email=f"dr-{TAG}@example.org",
            role=Role.physician,
            display_name="Dr Canary",
            password="correct horse battery staple",
            actor=audit_service.Actor.cli(),
            now=datetime.now(UTC),
        )
        token = account_tokens.create_token(
            session,
            email=f"dr-{TAG}@example.org",
            actor=audit_service.Actor.cli(),
            now=datetime.now(UTC),
        )
    engine.dispose()
    return key, auditor, token


def exercise_api(http: httpx.Client, key: str, auditor: str, token: str) -> None:
    """Every documented screening route, with canaries, on success and error paths."""
    bearer = {"Authorization": f"Bearer {key}", "Cookie": f"session={CANARIES['cookie']}"}
    audit = {"Authorization": f"Bearer {auditor}"}
    body = {
        "questionnaire": "ketamine-infusion-candidacy",
        "subject": {"reference": f"MRN-{CANARIES['subject']}"},
        "answers": NEEDS_REVIEW_ANSWERS,
    }
    idem = {"Idempotency-Key": f"retry-{CANARIES['idem']}"}
    created = http.post("/v1/screenings", json=body, headers=bearer | idem)
    assert created.status_code == 201, created.text
    replay = http.post("/v1/screenings", json=body, headers=bearer | idem)
    assert replay.json()["id"] == created.json()["id"]
    reused = http.post("/v1/screenings", json=body | {"answers": CANDIDATE_ANSWERS},
                       headers=bearer | idem)  # fmt: skip
    assert reused.status_code == 422
    screening_id = created.json()["id"]
    physician = {"Authorization": f"Bearer {token}"}
    etag = http.get(f"/v1/screenings/{screening_id}", headers=physician).headers["etag"]
    review = http.post(
        f"/v1/screenings/{screening_id}/reviews",
        json={"disposition": "cleared", "note": f"Rechecked BP. {CANARIES['note']}"},
        headers=physician | {"If-Match": etag},
    )
    assert review.status_code == 201, review.text
    reads = [
        (f"/v1/screenings/{screening_id}", bearer),
        (f"/v1/screenings/{screening_id}/reviews", physician),
        (f"/v1/screenings/{screening_id}/explain", bearer),
        ("/v1/screenings", bearer),
        (f"/v1/audit/events?target=screening:{screening_id}", audit),
        ("/v1/questionnaires/ketamine-infusion-candidacy", bearer),
        (f"/v1/rulesets/{created.json()['ruleset']['sha256']}", bearer),
    ]
    for path, headers in reads:
        assert http.get(path, headers=headers).status_code == 200, path
    invitation = http.post(
        "/v1/invitations",
        json={"subject": {"reference": f"INV-{CANARIES['invite']}"}},
        headers=bearer,
    )
    assert invitation.status_code == 201, invitation.text
    fill_form(http, invitation.json()["url"])
    evaluate_body = {key: body[key] for key in ("questionnaire", "answers")}
    assert http.post("/v1/evaluate", json=evaluate_body, headers=bearer).status_code == 200
    exercise_errors(http, bearer, body)


def exercise_errors(http: httpx.Client, bearer: dict[str, str], body: dict[str, Any]) -> None:
    """401, 403, 404, 413 and 422 paths, each carrying a canary where a client could put one."""
    bad_answers = CANDIDATE_ANSWERS | {"sex_at_birth": CANARIES["value"], "systolic_bp": 9999}
    raw = bearer | {"Content-Type": "application/json"}
    stranger = {"Authorization": f"Bearer sk_{CANARIES['token']}"}
    query = f"cursor={CANARIES['query']}"
    cases: list[tuple[str, str, dict[str, Any], int]] = [
        ("POST", "/v1/screenings", {"json": body}, 401),
        ("GET", f"/v1/screenings?{query}", {"headers": stranger}, 401),
        ("GET", f"/v1/screenings/{uuid.uuid4()}?{query}", {"headers": bearer}, 404),
        ("GET", f"/v1/screenings/{CANARIES['path']}", {"headers": bearer}, 422),
        ("GET", f"/v1/screenings?{query}", {"headers": bearer}, 422),
        (
            "POST",
            "/v1/screenings",
            {"json": body | {"answers": bad_answers}, "headers": bearer},
            422,
        ),
        ("POST", "/v1/screenings", {"json": body | {CANARIES["value"]: 1}, "headers": bearer}, 422),
        (
            "POST",
            "/v1/screenings",
            {"content": f'{{"x": "{CANARIES["body"]}"', "headers": raw},
            422,
        ),
        ("POST", "/v1/screenings", {"content": CANARIES["body"] * 10_000, "headers": raw}, 413),
        ("GET", f"/v1/rulesets/{CANARIES['path']}", {"headers": bearer}, 422),
        ("GET", f"/v1/questionnaires/{CANARIES['path']}", {"headers": bearer}, 404),
    ]
    statuses = [
        http.request(method, url, **options).status_code for method, url, options, _ in cases
    ]
    assert statuses == [expected for *_, expected in cases]
    origin = {"Origin": str(http.base_url).rstrip("/")}
    attempt = {"email": f"{CANARIES['email']}@example.org", "password": "x" * 12}
    assert http.post("/sign-in", headers=origin, data=attempt).status_code == 400


def fill_form(http: httpx.Client, url: str) -> None:
    """The patient form through an invitation link, with one invalid (canary) entry first."""
    link = "/" + url.split("://", 1)[-1].split("/", 1)[1]
    assert http.get(link).status_code == 200
    page, data = MALE_PAGES[1]
    invalid = http.post(
        f"{link}/q/{page}", data=data | {"symptom_duration_months": CANARIES["form"]}
    )
    # The page comes back with the error summary (GOV.UK pages keep status 200).
    assert invalid.status_code == 200
    assert "<title>Error:" in invalid.text
    for page, data in MALE_PAGES:
        response = http.post(f"{link}/q/{page}", data=data, follow_redirects=False)
        assert response.status_code == 303, page
    assert http.post(f"{link}/submit", follow_redirects=False).status_code == 303


def run_cli(database_url: str, workdir: Path, *args: str, **env: str) -> bytes:
    done = subprocess.run(
        [sys.executable, "-m", "app", *args],
        env=server_env(database_url, workdir, **env),
        cwd=workdir,
        capture_output=True,
        check=False,
    )
    assert done.returncode == 0, (args, done.stderr.decode()[-2000:])
    return done.stdout + done.stderr


def exercise_cli(database_url: str, workdir: Path) -> bytes:
    answers = workdir / "answers.json"
    answers.write_text(json.dumps(CANDIDATE_ANSWERS | {"systolic_bp": 120}))
    outputs = [
        run_cli(database_url, workdir, "audit", "verify"),
        run_cli(database_url, workdir, "audit", "checkpoint"),
        run_cli(
            database_url, workdir, "keys", "rotate", SCREENING_DATA_KEY=f"{DATA_KEY},{NEW_KEY}"
        ),
        run_cli(
            database_url,
            workdir,
            "audit",
            "verify",
            "--json",
            SCREENING_DATA_KEY=f"{DATA_KEY},{NEW_KEY}",
        ),
        run_cli(database_url, workdir, "rules", "check"),
        run_cli(database_url, workdir, "evaluate", "--as-of", "2026-06-15", str(answers)),
    ]
    invalid = workdir / "invalid.json"
    invalid.write_text(json.dumps(CANDIDATE_ANSWERS | {"sex_at_birth": CANARIES["value"]}))
    rejected = subprocess.run(
        [sys.executable, "-m", "app", "evaluate", "--as-of", "2026-06-15", str(invalid)],
        env=server_env(database_url, workdir),
        capture_output=True,
        check=False,
    )
    assert rejected.returncode != 0
    return b"".join(outputs) + rejected.stdout + rejected.stderr


def database_bytes(database_url: str, workdir: Path) -> bytes:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        path = Path(str(url.database))
        files = [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]
        return b"".join(file.read_bytes() for file in files if file.exists())
    libpq = url.set(drivername="postgresql").render_as_string(hide_password=False)
    dump = subprocess.run(["pg_dump", "--dbname", libpq], capture_output=True, check=True)
    return dump.stdout


def test_canaries_never_reach_the_database_dump_or_the_logs(
    empty_database_url: str,
    credentials: tuple[str, str, str],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    server: Server
    with (
        running_server(empty_database_url, tmp_path, SCREENING_LOG_LEVEL="DEBUG") as server,
        httpx.Client(base_url=server.url, timeout=30) as http,
    ):
        exercise_api(http, *credentials)
    server_logs = server.logs()
    cli_output = exercise_cli(empty_database_url, tmp_path)
    stored = database_bytes(empty_database_url, tmp_path)

    access = [json.loads(line) for line in server_logs.splitlines() if b'"app.access"' in line]
    assert len(access) > 20  # the server did log, as JSON, one line per request
    assert {line["status"] for line in access} >= {201, 200, 401, 404, 413, 422}
    assert CLINIC.encode() in stored  # the search sees plaintext where there is some
    assert found_in(stored) == []
    assert found_in(server_logs) == []
    assert found_in(cli_output) == []
    test_logs = "\n".join(str(vars(r)) for r in caplog.records if not r.name.startswith("httpx"))
    assert found_in(test_logs.encode()) == []
