"""Coverage: every route that touches PHI leaves exactly one complete audit event per request.

Except requests without a valid credential: they are counted, one ``auth.denials_counted``
event per minute (app/audit/denials.py), so the chain is no denial-of-service lever.

The walk runs against a committed database with the app's own engine (the production path:
a failed request's transaction really rolls back and its denial event commits on its own),
covering successes, denials (401, 403), other clinics' ids (404) and invalid requests (422).
Afterwards ``screening audit verify`` must still pass and no event may hold a canary.
"""

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from app.account import tokens as account_tokens
from app.apikey import service as apikey_service
from app.audit import denials
from app.audit import service as audit_service
from app.auditlog import service as auditlog_service
from app.cli import app as cli_app
from app.context import app_context
from app.db import migrate
from app.db.engine import make_engine, make_sessionmaker
from app.db.models import AuditEvent
from app.db.unit import session_scope
from app.engine import Ruleset
from app.main import create_app
from app.settings import get_settings
from tests.conftest import make_settings
from tests.factories import AUDIT_KEY, CANDIDATE_ANSWERS, DATA_KEY, NOW, FixedClock, auth, make_key
from tests.review.seed import make_user

CANARY_REF = "CANARY-REF-5b1f0e"
CANARY_VALUE = "CANARY-VALUE-93ac2d"
QUESTIONNAIRE = "ketamine-infusion-candidacy"
SUBMIT = {
    "questionnaire": QUESTIONNAIRE,
    "subject": {"reference": CANARY_REF},
    "answers": CANDIDATE_ANSWERS | {"systolic_bp": 150},
}
INVALID = SUBMIT | {"answers": CANDIDATE_ANSWERS | {"systolic_bp": CANARY_VALUE}}
SYSTEM = ("system", None, None)  # actor type, actor id, clinic: an unknown caller


@dataclass
class World:
    """The committed database, the app's client and the callers of two clinics."""

    url: str
    client: TestClient
    sessions: sessionmaker[Session]
    headers: dict[str, dict[str, str]] = field(default_factory=dict)
    callers: dict[str, tuple[str, str, uuid.UUID]] = field(default_factory=dict)

    def head(self) -> int:
        with self.sessions() as session:
            return session.scalar(select(func.max(AuditEvent.seq))) or 0

    def events_after(self, seq: int) -> list[AuditEvent]:
        with self.sessions() as session:
            query = select(AuditEvent).where(AuditEvent.seq > seq).order_by(AuditEvent.seq)
            return list(session.scalars(query))


def _seed(session: Session, world: World) -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    cli = audit_service.Actor.cli()
    keys = {
        "a": ("Clinic A", apikey_service.SCOPES),
        "a_read": ("Clinic A", (apikey_service.SCREENINGS_READ,)),
        "a_write": ("Clinic A", (apikey_service.SCREENINGS_WRITE,)),
        "b": ("Clinic B", apikey_service.SCOPES),
    }
    for name, (clinic, scopes) in keys.items():
        created = apikey_service.create(
            session, clinic_name=clinic, scopes=scopes, name=name, actor=cli, now=now
        )
        world.headers[name] = auth(created)
        world.callers[name] = ("api_key", str(created.api_key_id), created.clinic_id)
    for name, clinic in (("doctor_a", "Clinic A"), ("doctor_b", "Clinic B")):
        user = make_user(session, clinic=clinic, email=f"{name}@example.org")
        token = account_tokens.create_token(
            session, email=f"{name}@example.org", actor=cli, now=now
        )
        world.headers[name] = auth(token)
        world.callers[name] = ("user", str(user.user_id), user.clinic_id)


@pytest.fixture
def world(empty_database_url: str, ruleset: Ruleset) -> Iterator[World]:
    migrate.upgrade(migrate.make_config(database_url=empty_database_url))
    engine: Engine = make_engine(empty_database_url)
    app = create_app(make_settings(empty_database_url), clock=FixedClock(NOW), ruleset=ruleset)
    with TestClient(app) as client:
        world = World(empty_database_url, client, make_sessionmaker(engine))
        with session_scope(world.sessions) as session:
            _seed(session, world)
        yield world
    engine.dispose()


def test_every_phi_route_audits_each_request_exactly_once(world: World) -> None:
    """One step per request: (caller, method, path, body, status, expected event)."""
    call = _Caller(world)
    created = call("a", "POST", "/v1/screenings", SUBMIT, 201, "screening.created", "success")
    sid = created.json()["id"]
    call.expect_target(sid, digest=True)
    idem = world.headers["a"] | {"Idempotency-Key": "coverage-1"}
    first = call("a", "POST", "/v1/screenings", SUBMIT, 201, "screening.created", "success", idem)
    call.expect_target(first.json()["id"], digest=True)
    call("a", "POST", "/v1/screenings", SUBMIT, 201, "screening.read", "success", idem)
    call.expect_target(first.json()["id"], digest=True, detail={"via": "idempotent_replay"})
    call("a", "POST", "/v1/screenings", INVALID, 422, "screening.created", "invalid")
    call.expect_target(None, detail={"status": 422, "problem": "validation-failed",
                                     "codes": ["wrong_type"]})  # fmt: skip
    call(None, "POST", "/v1/screenings", SUBMIT, 401, "screening.created", "denied")
    call("bad", "POST", "/v1/screenings", SUBMIT, 401, "screening.created", "denied")
    call("a_read", "POST", "/v1/screenings", SUBMIT, 403, "screening.created", "denied")

    one = f"/v1/screenings/{sid}"
    call("a", "GET", one, None, 200, "screening.read", "success")
    call.expect_target(sid, digest=True)
    call("b", "GET", one, None, 404, "screening.read", "not_found")
    call.expect_target(sid)
    call(None, "GET", one, None, 401, "screening.read", "denied")
    call.expect_target(sid)
    call("a_write", "GET", one, None, 403, "screening.read", "denied")
    call("a", "GET", "/v1/screenings/not-a-uuid", None, 422, "screening.read", "invalid")
    call.expect_target(None)

    listed = call("a", "GET", "/v1/screenings", None, 200, "screening.listed", "success")
    ids = [item["id"] for item in listed.json()["items"]]
    assert call.last.detail == {"count": 2, "screening_ids": ids}
    call("a", "GET", "/v1/screenings?limit=0", None, 422, "screening.listed", "invalid")
    call(None, "GET", "/v1/screenings", None, 401, "screening.listed", "denied")
    call("a_write", "GET", "/v1/screenings", None, 403, "screening.listed", "denied")

    explain = f"{one}/explain"
    call("a", "GET", explain, None, 200, "screening.explained", "success")
    call.expect_target(sid, digest=True, detail={"matches_stored": True})
    call("b", "GET", explain, None, 404, "screening.explained", "not_found")
    call.expect_target(sid)
    call(None, "GET", explain, None, 401, "screening.explained", "denied")
    call("a_write", "GET", explain, None, 403, "screening.explained", "denied")

    reviews = f"{one}/reviews"
    call("doctor_a", "GET", reviews, None, 200, "review.listed", "success")
    call.expect_target(sid, digest=True, detail={"count": 0})
    etag = world.client.get(one, headers=world.headers["a"]).headers["etag"]
    call.skip_events(1)  # that GET: one screening.read, checked above
    sign = {"disposition": "cleared", "note": "ok"}
    signer = world.headers["doctor_a"] | {"If-Match": etag}
    call("doctor_a", "POST", reviews, sign, 201, "review.recorded", "success", signer)
    call.expect_target(sid, digest=True)
    call("doctor_b", "GET", reviews, None, 404, "review.listed", "not_found")
    call.expect_target(sid)
    call(None, "GET", reviews, None, 401, "review.listed", "denied")
    call("doctor_a", "POST", reviews, sign, 428, "review.recorded", "invalid")

    trail = f"/v1/audit/events?target=screening:{sid}"
    page = call("a", "GET", trail, None, 200, "audit.listed", "success")
    assert [item["action"] for item in page.json()["items"]][:2] == [
        "screening.created",
        "screening.read",
    ]
    call.expect_target(sid)
    call("b", "GET", trail, None, 404, "audit.listed", "not_found")
    call.expect_target(sid, target_type="screening")
    call("a_read", "GET", trail, None, 403, "audit.listed", "denied")
    call(None, "GET", trail, None, 401, "audit.listed", "denied")
    call("a", "GET", "/v1/audit/events?cursor=x", None, 422, "audit.listed", "invalid")

    call.expect_counted()
    _assert_no_canary(world)
    _assert_verify_passes(world)


class _Caller:
    """Makes one request and checks that it added exactly one complete event."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.seq = world.head()
        self.last: AuditEvent
        self.counted: list[tuple[str, int]] = []

    def __call__(
        self,
        who: str | None,
        method: str,
        path: str,
        body: Any,
        status: int,
        action: str,
        outcome: str,
        headers: dict[str, str] | None = None,
    ) -> Any:
        if headers is None:
            bad = {"Authorization": "Bearer sk_unknown"}
            headers = {} if who is None else bad if who == "bad" else self.world.headers[who]
        response = self.world.client.request(method, path, json=body, headers=headers)
        assert response.status_code == status, response.text
        new = self.world.events_after(self.seq)
        if who in (None, "bad") and status == 401:  # counted, not an event of its own
            assert new == [], f"{method} {path}: {[(e.action, e.outcome) for e in new]}"
            self.counted.append((self._route(method, path), status))
            return response
        assert len(new) == 1, f"{method} {path}: {[(e.action, e.outcome) for e in new]}"
        event = self.last = new[0]
        self.seq = event.seq
        actor_type, actor_id, clinic = self.world.callers.get(who or "", SYSTEM)
        assert (event.action, event.outcome) == (action, outcome)
        assert (event.actor_type, event.actor_id, event.clinic_id) == (actor_type, actor_id, clinic)
        assert event.request_id == response.headers["x-request-id"]
        assert event.occurred_at is not None
        assert len(event.hash) == 64
        if outcome != "success":
            assert event.target_sha256 is None
            assert event.detail is not None
            assert event.detail["status"] == status
        return response

    def expect_target(
        self,
        target_id: str | None,
        *,
        digest: bool = False,
        detail: dict[str, Any] | None = None,
        target_type: str = "screening",
    ) -> None:
        event = self.last
        assert event.target_id == target_id
        if target_id is not None:
            assert event.target_type == target_type
        assert (event.target_sha256 is not None) == digest
        if detail is not None:
            assert event.detail == detail

    @staticmethod
    def _route(method: str, path: str) -> str:
        """The route template of the walk's paths (their only id is a screening's)."""
        return re.sub(r"[0-9a-f-]{36}", "{screening_id}", path.split("?")[0])

    def expect_counted(self) -> None:
        """The counted denials become one event when their window is written."""
        denials.flush(app_context(self.world.client.app))  # type: ignore[arg-type]
        (event,) = self.world.events_after(self.seq)
        self.seq = event.seq
        assert (event.action, event.outcome, event.actor_type) == (
            denials.COUNTED_ACTION,
            "denied",
            "system",
        )
        assert event.detail is not None
        assert event.detail["total"] == len(self.counted) == 7
        counts = {(c["route"], c["status"]): c["count"] for c in event.detail["counts"]}
        expected: dict[tuple[str, int], int] = {}
        for key in self.counted:
            expected[key] = expected.get(key, 0) + 1
        assert counts == expected

    def skip_events(self, count: int) -> None:
        new = self.world.events_after(self.seq)
        assert len(new) == count
        self.seq = new[-1].seq


def _assert_no_canary(world: World) -> None:
    for event in world.events_after(0):
        text = json.dumps(auditlog_service.event_dict(event))
        assert CANARY_REF not in text, event.seq
        assert CANARY_VALUE not in text, event.seq


def _assert_verify_passes(world: World) -> None:
    get_settings.cache_clear()
    env = {
        "SCREENING_DATABASE_URL": world.url,
        "SCREENING_DATA_KEY": DATA_KEY,
        "SCREENING_AUDIT_KEY": AUDIT_KEY,
        "SCREENING_ENVIRONMENT": "test",
    }
    result = CliRunner().invoke(cli_app, ["audit", "verify"], env=env)
    get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "OK:" in result.stdout


@pytest.mark.parametrize(
    ("status", "outcome"),
    [(401, "denied"), (403, "denied"), (404, "not_found"), (422, "invalid"), (400, "invalid"),
     (428, "invalid"), (412, "failed"), (409, "failed"), (503, "failed")],
)  # fmt: skip
def test_outcome_of_a_status(status: int, outcome: str) -> None:
    assert denials.outcome_of(status) == outcome


def test_a_denial_that_cannot_be_audited_still_answers_the_client(
    client: TestClient, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("database down")

    monkeypatch.setattr(audit_service, "append_separately", broken)
    key = make_key(session)
    response = client.get(f"/v1/screenings/{uuid.uuid4()}", headers=auth(key))
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def test_routes_without_phi_are_not_marked(client: TestClient, session: Session) -> None:
    key = make_key(session)
    before = session.scalar(select(func.count()).select_from(AuditEvent))
    for path in ("/v1/questionnaires/nope", f"/v1/rulesets/{'0' * 64}"):
        assert client.get(path, headers=auth(key)).status_code == 404
    assert session.scalar(select(func.count()).select_from(AuditEvent)) == before
