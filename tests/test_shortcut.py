"""The hot routes' shortcuts (app/shortcut.py): what they admit, and that they answer as FastAPI.

Every request below is sent to two apps on the same database: one with the shortcuts, one
without. Status, headers, body (ids and times masked) and the rows each request added must be
the same, for requests the shortcuts take and for those they pass on.
"""

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session, sessionmaker

from app.apikey import service as apikey_service
from app.db.models import AuditEvent, AuditOutcome, IdempotencyKey, Screening
from app.engine import Ruleset
from app.main import create_app
from app.screening import router as screening_router
from app.shortcut import Shortcuts
from tests.conftest import make_settings
from tests.factories import CANDIDATE_ANSWERS, NOT_CANDIDATE_ANSWERS, FixedClock, count, make_key

QUESTIONNAIRE = "ketamine-infusion-candidacy"
EVALUATE = {"questionnaire": QUESTIONNAIRE, "answers": CANDIDATE_ANSWERS}
SCREENING = EVALUATE | {"subject": {"reference": "MRN-7"}}
JSON = {"Content-Type": "application/json"}
_MASKED = {"id", "created_at", "request_id", "instance"}


@pytest.fixture
def keys(session: Session) -> dict[str, apikey_service.CreatedKey]:
    clinic = f"Clinic {uuid.uuid4().hex[:8]}"
    return {
        "write": make_key(session, clinic_name=clinic),
        "read": make_key(session, clinic_name=clinic, scopes=(apikey_service.SCREENINGS_READ,)),
    }


@pytest.fixture
def clients(
    database_url: str,
    session_factory: sessionmaker[Session],
    ruleset: Ruleset,
    clock: FixedClock,
    keys: dict[str, apikey_service.CreatedKey],
) -> Iterator[dict[str, TestClient]]:
    settings = make_settings(database_url)
    apps = {
        name: create_app(
            settings, sessionmaker=session_factory, clock=clock, ruleset=ruleset, shortcuts=on
        )
        for name, on in (("shortcuts", True), ("fastapi", False))
    }
    with TestClient(apps["shortcuts"]) as fast, TestClient(apps["fastapi"]) as full:
        for client in (fast, full):  # both apps' key caches hold both keys
            for key in keys.values():
                client.get(f"/v1/questionnaires/{QUESTIONNAIRE}", headers=_bearer(key.key))
        yield {"shortcuts": fast, "fastapi": full}


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _masked(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: "…" if k in _MASKED else _masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v) for v in value]
    return value


def _outcome(
    client: TestClient, session: Session, path: str, content: bytes, headers: dict[str, str]
) -> dict[str, Any]:
    """What a user and an auditor see of one request: the response and the rows it added."""
    before = [count(session, model) for model in (Screening, AuditEvent, IdempotencyKey)]
    response = client.post(path, content=content, headers=headers)
    after = [count(session, model) for model in (Screening, AuditEvent, IdempotencyKey)]
    shown = dict(response.headers)
    shown.pop("x-request-id")
    if "location" in shown:
        shown["location"] = shown["location"].rsplit("/", 1)[0]
    try:
        body = _masked(response.json())
    except ValueError:
        body = response.text
    return {
        "status": response.status_code,
        "headers": shown,
        "body": body,
        "rows added": [b - a for a, b in zip(before, after, strict=True)],
    }


def _body(value: Any) -> bytes:
    return json.dumps(value).encode()


# (case, path, body bytes, headers beyond the key's Authorization, key used)
CASES: list[tuple[str, str, bytes, dict[str, str], str | None]] = [
    ("evaluate", "/v1/evaluate", _body(EVALUATE), JSON, "write"),
    (
        "evaluate, not a candidate",
        "/v1/evaluate",
        _body(EVALUATE | {"answers": NOT_CANDIDATE_ANSWERS}),
        JSON,
        "write",
    ),
    (
        "evaluate, answer out of range",
        "/v1/evaluate",
        _body(EVALUATE | {"answers": CANDIDATE_ANSWERS | {"systolic_bp": 301}}),
        JSON,
        "write",
    ),
    (
        "evaluate, unknown questionnaire",
        "/v1/evaluate",
        _body(EVALUATE | {"questionnaire": "other"}),
        JSON,
        "write",
    ),
    ("evaluate, unknown field", "/v1/evaluate", _body(EVALUATE | {"x": 1}), JSON, "write"),
    ("evaluate, malformed JSON", "/v1/evaluate", b'{"questionnaire": ', JSON, "write"),
    ("evaluate, not an object", "/v1/evaluate", b"[1, 2]", JSON, "write"),
    ("evaluate, empty body", "/v1/evaluate", b"", JSON, "write"),
    ("evaluate, no key", "/v1/evaluate", _body(EVALUATE), JSON, None),
    ("evaluate, read-only key", "/v1/evaluate", _body(EVALUATE), JSON, "read"),
    (
        "evaluate, unknown key",
        "/v1/evaluate",
        _body(EVALUATE),
        JSON | {"Authorization": "Bearer sk_unknown"},
        None,
    ),
    (
        "evaluate, text/plain",
        "/v1/evaluate",
        _body(EVALUATE),
        {"Content-Type": "text/plain"},
        "write",
    ),
    (
        "evaluate, JSON with charset",
        "/v1/evaluate",
        _body(EVALUATE),
        {"Content-Type": "application/json; charset=utf-8"},
        "write",
    ),
    ("screening", "/v1/screenings", _body(SCREENING), JSON, "write"),
    (
        "screening, not a candidate",
        "/v1/screenings",
        _body(SCREENING | {"answers": NOT_CANDIDATE_ANSWERS}),
        JSON,
        "write",
    ),
    (
        "screening, answer to a disabled item",
        "/v1/screenings",
        _body(SCREENING | {"answers": CANDIDATE_ANSWERS | {"pregnant": "no"}}),
        JSON,
        "write",
    ),
    (
        "screening, no subject",
        "/v1/screenings",
        _body(EVALUATE),
        JSON,
        "write",
    ),
    ("screening, read-only key", "/v1/screenings", _body(SCREENING), JSON, "read"),
    ("screening, no key", "/v1/screenings", _body(SCREENING), JSON, None),
    (
        "screening, malformed Idempotency-Key",
        "/v1/screenings",
        _body(SCREENING),
        JSON | {"Idempotency-Key": "k" * 300},
        "write",
    ),
]


@pytest.mark.parametrize(
    ("path", "content", "headers", "key"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_same_answer_with_and_without_shortcuts(
    clients: dict[str, TestClient],
    session: Session,
    keys: dict[str, apikey_service.CreatedKey],
    path: str,
    content: bytes,
    headers: dict[str, str],
    key: str | None,
) -> None:
    sent = headers | ({} if key is None else _bearer(keys[key].key))
    outcomes = {
        name: _outcome(client, session, path, content, sent) for name, client in clients.items()
    }
    assert outcomes["shortcuts"] == outcomes["fastapi"]


def test_idempotent_retry_and_key_reuse_answer_the_same(
    clients: dict[str, TestClient], session: Session, keys: dict[str, apikey_service.CreatedKey]
) -> None:
    outcomes: dict[str, list[dict[str, Any]]] = {}
    for name, client in clients.items():
        headers = JSON | _bearer(keys["write"].key) | {"Idempotency-Key": f"{name}-1"}
        other = _body(SCREENING | {"answers": NOT_CANDIDATE_ANSWERS})
        outcomes[name] = [
            _outcome(client, session, "/v1/screenings", _body(SCREENING), headers),
            _outcome(client, session, "/v1/screenings", _body(SCREENING), headers),
            _outcome(client, session, "/v1/screenings", other, headers),
        ]
    first, retry, reuse = outcomes["shortcuts"]
    assert (first["status"], first["rows added"]) == (201, [1, 1, 1])
    assert (retry["status"], retry["headers"]["idempotent-replayed"]) == (201, "true")
    assert (reuse["status"], reuse["body"]["errors"][0]["code"]) == (422, "idempotency_key_reused")
    assert outcomes["shortcuts"] == outcomes["fastapi"]


def test_a_denied_screening_is_audited_the_same(
    clients: dict[str, TestClient], session: Session, keys: dict[str, apikey_service.CreatedKey]
) -> None:
    invalid = _body(SCREENING | {"answers": CANDIDATE_ANSWERS | {"systolic_bp": "high"}})
    headers = JSON | _bearer(keys["write"].key)
    events = {}
    for name, client in clients.items():
        response = client.post("/v1/screenings", content=invalid, headers=headers)
        assert response.status_code == 422
        event = session.query(AuditEvent).order_by(AuditEvent.seq.desc()).first()
        assert event is not None
        events[name] = (event.action, event.outcome, event.actor_id, event.request_id)
        assert event.request_id == response.headers["x-request-id"]
    expected = ("screening.created", AuditOutcome.invalid, str(keys["write"].api_key_id))
    assert events["shortcuts"][:3] == events["fastapi"][:3] == expected


def test_the_access_log_names_the_route_and_clinic(
    clients: dict[str, TestClient],
    keys: dict[str, apikey_service.CreatedKey],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("INFO", logger="app.access")
    clients["shortcuts"].post(
        "/v1/evaluate", content=_body(EVALUATE), headers=JSON | _bearer(keys["write"].key)
    )
    (line,) = [r for r in caplog.records if r.name == "app.access"]
    assert (line.route, line.status) == ("/v1/evaluate", 200)  # type: ignore[attr-defined]
    assert line.clinic_id == str(keys["write"].clinic_id)  # type: ignore[attr-defined]


class TestAdmission:
    """What the shortcuts take themselves; everything else goes the full FastAPI way."""

    @pytest.fixture
    def shortcuts(self, app: FastAPI, keys: dict[str, apikey_service.CreatedKey]) -> Shortcuts:
        with TestClient(app) as client:  # the keys get cached
            for key in keys.values():
                client.get(f"/v1/questionnaires/{QUESTIONNAIRE}", headers=_bearer(key.key))
        return Shortcuts(app, screening_router.shortcuts())

    @staticmethod
    def _scope(headers: dict[str, str], path: str = "/v1/evaluate", **extra: Any) -> dict[str, Any]:
        raw = [(name.lower().encode(), value.encode()) for name, value in headers.items()]
        return {"type": "http", "method": "POST", "path": path, "headers": raw} | extra

    def test_takes_valid_json_with_a_cached_key(
        self, shortcuts: Shortcuts, keys: dict[str, apikey_service.CreatedKey]
    ) -> None:
        scope = self._scope(JSON | _bearer(keys["write"].key))
        admitted = shortcuts.admit(scope, _body(EVALUATE))
        assert admitted is not None
        assert admitted.client.api_key_id == keys["write"].api_key_id
        assert admitted.shortcut.route.path == "/v1/evaluate"
        screening = self._scope(JSON | _bearer(keys["write"].key), path="/v1/screenings")
        assert shortcuts.admit(screening, _body(SCREENING)) is not None

    def test_takes_answers_the_rules_will_reject(
        self, shortcuts: Shortcuts, keys: dict[str, apikey_service.CreatedKey]
    ) -> None:
        # The endpoint raises the 422 itself; the app's handler answers it.
        body = _body(EVALUATE | {"answers": {"systolic_bp": "high"}})
        assert shortcuts.admit(self._scope(JSON | _bearer(keys["write"].key)), body) is not None

    @pytest.mark.parametrize(
        ("case", "headers", "body", "extra"),
        [
            ("no key", JSON | {"Authorization": None}, _body(EVALUATE), {}),
            ("uncached key", JSON | {"Authorization": "Bearer sk_x"}, _body(EVALUATE), {}),
            ("not bearer", JSON | {"Authorization": "Basic eDp5"}, _body(EVALUATE), {}),
            ("malformed JSON", JSON, b"{", {}),
            ("invalid UTF-8", JSON, b'{"questionnaire": "\xff"}', {}),
            ("unknown field", JSON, _body(EVALUATE | {"x": 1}), {}),
            ("empty body", JSON, b"", {}),
            ("no content type", {}, _body(EVALUATE), {}),
            ("another media type", {"Content-Type": "text/json"}, _body(EVALUATE), {}),
            ("root path", JSON, _body(EVALUATE), {"root_path": "/api"}),
            ("GET", JSON, _body(EVALUATE), {"method": "GET"}),
            ("another path", JSON, _body(EVALUATE), {"path": "/v1/evaluate/"}),
        ],
    )
    def test_passes_on(
        self,
        shortcuts: Shortcuts,
        keys: dict[str, apikey_service.CreatedKey],
        case: str,
        headers: dict[str, str | None],
        body: bytes,
        extra: dict[str, Any],
    ) -> None:
        # The write key unless the case sends another Authorization, or none (None).
        sent = {k: v for k, v in (_bearer(keys["write"].key) | headers).items() if v is not None}
        assert shortcuts.admit(self._scope(sent, **extra), body) is None, case

    def test_passes_on_a_key_without_the_scope(
        self, shortcuts: Shortcuts, keys: dict[str, apikey_service.CreatedKey]
    ) -> None:
        assert (
            shortcuts.admit(self._scope(JSON | _bearer(keys["read"].key)), _body(EVALUATE)) is None
        )

    def test_passes_on_a_repeated_header(
        self, shortcuts: Shortcuts, keys: dict[str, apikey_service.CreatedKey]
    ) -> None:
        scope = self._scope(JSON | _bearer(keys["write"].key))
        for header in (b"authorization", b"content-type", b"idempotency-key"):
            repeated = scope | {"headers": [*scope["headers"], (header, b"x"), (header, b"y")]}
            assert shortcuts.admit(repeated, _body(EVALUATE)) is None, header


# Any JSON an intake system might send: the questionnaire's items and strangers, with values
# of every type, in and out of range, and bodies with missing or extra members.
_ITEMS = [*CANDIDATE_ANSWERS, "pregnant", "breastfeeding", "bp_controlled", "concussion_date"]
_VALUES = st.one_of(
    st.sampled_from(["yes", "no", "unsure", "female", "male", "migraine", "depression"]),
    st.none(),
    st.booleans(),
    st.integers(-5, 400),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["1990-02-28", "1990-02-30", "2030-01-01", "2026-11-01", "28/02/1990"]),
    st.lists(st.sampled_from(["migraine", "depression", "ptsd", "x"]), max_size=3),
    st.text(max_size=5),
)
_ANSWERS = st.dictionaries(st.sampled_from([*_ITEMS, "colour", ""]), _VALUES, max_size=8)


@st.composite
def _requests(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """A path and a body, well formed most of the time (so the shortcuts take it)."""
    path = draw(st.sampled_from(["/v1/evaluate", "/v1/screenings"]))
    body: dict[str, Any] = {
        "questionnaire": draw(st.sampled_from([QUESTIONNAIRE] * 8 + ["other", ""])),
        "answers": draw(_ANSWERS),
    }
    if path == "/v1/screenings":
        body["subject"] = {"reference": draw(st.sampled_from(["MRN-1", "MRN-2", ""]))}
    broken = draw(st.sampled_from([None] * 6 + ["questionnaire", "subject", "answers"]))
    if broken is not None:
        body[broken] = draw(_VALUES)
    if draw(st.integers(0, 9)) == 0:
        body["extra"] = draw(_VALUES)
    return path, body


_CONTENT_TYPES = st.sampled_from(
    ["application/json", "application/json", "APPLICATION/JSON", "text/plain", "application/x"]
)


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    request=_requests(),
    content_type=_CONTENT_TYPES,
    key=st.sampled_from(["write", "write", "read", None]),
)
def test_any_request_gets_the_same_answer(
    clients: dict[str, TestClient],
    session: Session,
    keys: dict[str, apikey_service.CreatedKey],
    request: tuple[str, dict[str, Any]],
    content_type: str,
    key: str | None,
) -> None:
    path, body = request
    headers = {"Content-Type": content_type} | ({} if key is None else _bearer(keys[key].key))
    outcomes = {
        name: _outcome(client, session, path, _body(body), headers)
        for name, client in clients.items()
    }
    assert outcomes["shortcuts"] == outcomes["fastapi"]
