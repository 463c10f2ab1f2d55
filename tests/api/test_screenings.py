"""POST/GET /v1/screenings and POST /v1/evaluate: success paths, listing, idempotency, audit."""

import uuid
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import AuditEvent, IdempotencyKey, Review, Screening, ScreeningFlag
from app.engine import Ruleset
from tests.factories import (
    CANDIDATE_ANSWERS,
    NEEDS_REVIEW_ANSWERS,
    NOT_CANDIDATE_ANSWERS,
    NOW,
    auth,
    count,
    make_key,
    make_screening,
)

QUESTIONNAIRE = "ketamine-infusion-candidacy"


def body(answers: dict[str, Any] | None = None, reference: str = "MRN-0042") -> dict[str, Any]:
    return {
        "questionnaire": QUESTIONNAIRE,
        "subject": {"reference": reference},
        "answers": CANDIDATE_ANSWERS if answers is None else answers,
    }


class TestCreateScreening:
    def test_create_returns_201_location_and_stored_result(
        self, client: TestClient, session: Session, ruleset: Ruleset
    ) -> None:
        key = make_key(session)
        response = client.post("/v1/screenings", json=body(), headers=auth(key))
        assert response.status_code == 201
        created = response.json()
        assert response.headers["location"] == f"/v1/screenings/{created['id']}"
        assert created["decision"] == "candidate"
        assert created["flags"] == []
        assert created["subject"] == {"reference": "MRN-0042"}
        assert created["review"] is None
        assert created["as_of"] == "2026-06-15"
        assert created["created_at"] == "2026-06-15T14:30:00.000000Z"
        assert created["ruleset"] == {
            "id": ruleset.id,
            "version": ruleset.version,
            "sha256": ruleset.sha256,
        }
        fetched = client.get(response.headers["location"], headers=auth(key))
        assert fetched.status_code == 200
        assert fetched.json() == created

    @pytest.mark.parametrize(
        ("answers", "decision", "flagged"),
        [
            (CANDIDATE_ANSWERS, "candidate", []),
            (NEEDS_REVIEW_ANSWERS, "needs_review", ["elevated_blood_pressure"]),
            (NOT_CANDIDATE_ANSWERS, "not_candidate", ["heart_failure"]),
        ],
    )
    def test_create_stores_decision_and_flags(
        self,
        client: TestClient,
        session: Session,
        answers: dict[str, Any],
        decision: str,
        flagged: list[str],
    ) -> None:
        key = make_key(session)
        created = client.post("/v1/screenings", json=body(answers), headers=auth(key)).json()
        assert created["decision"] == decision
        assert [flag["rule"] for flag in created["flags"]] == flagged
        flags = session.scalars(
            select(ScreeningFlag.rule).where(ScreeningFlag.screening_id == uuid.UUID(created["id"]))
        )
        assert list(flags) == flagged

    def test_phi_is_encrypted_at_rest(self, client: TestClient, session: Session) -> None:
        key = make_key(session)
        created = client.post(
            "/v1/screenings", json=body(reference="MRN-SECRET-991"), headers=auth(key)
        ).json()
        row = session.get_one(Screening, uuid.UUID(created["id"]))
        for column in (row.subject_ct, row.answers_ct, row.result_ct):
            assert b"MRN-SECRET-991" not in column
            assert b"migraine" not in column

    def test_create_and_read_are_audited(self, client: TestClient, session: Session) -> None:
        key = make_key(session)
        created = client.post("/v1/screenings", json=body(), headers=auth(key)).json()
        client.get(f"/v1/screenings/{created['id']}", headers=auth(key))
        actions = session.scalars(
            select(AuditEvent.action)
            .where(AuditEvent.target_id == created["id"])
            .order_by(AuditEvent.seq)
        )
        assert list(actions) == ["screening.created", "screening.read"]


class TestEvaluate:
    def test_evaluate_returns_result_and_stores_nothing(
        self, client: TestClient, session: Session
    ) -> None:
        key = make_key(session)
        before = count(session, Screening)
        response = client.post(
            "/v1/evaluate",
            json={"questionnaire": QUESTIONNAIRE, "answers": NEEDS_REVIEW_ANSWERS},
            headers=auth(key),
        )
        assert response.status_code == 200
        assert response.json()["decision"] == "needs_review"
        assert set(response.json()) == {"decision", "flags", "ruleset", "as_of"}
        assert count(session, Screening) == before

    def test_partial_answers_are_unknown_never_no(
        self, client: TestClient, session: Session
    ) -> None:
        key = make_key(session)
        response = client.post(
            "/v1/evaluate",
            json={"questionnaire": QUESTIONNAIRE, "answers": {"sex_at_birth": "male"}},
            headers=auth(key),
        )
        result = response.json()
        assert result["decision"] == "needs_review"
        assert {flag["status"] for flag in result["flags"]} == {"unknown"}


class TestListScreenings:
    def test_list_is_newest_first_with_cursor_walk(
        self, client: TestClient, session: Session, ruleset: Ruleset
    ) -> None:
        key = make_key(session)
        ids = [
            make_screening(
                session,
                ruleset=ruleset,
                clinic_id=key.clinic_id,
                created_at=NOW - timedelta(minutes=i),
            )["id"]
            for i in range(5)
        ]
        seen: list[str] = []
        cursor: str | None = None
        for _ in range(3):
            params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
            page = client.get("/v1/screenings", params=params, headers=auth(key)).json()
            seen += [item["id"] for item in page["items"]]
            cursor = page["next_cursor"]
        assert seen == ids
        assert cursor is None

    def test_list_filters_decision_and_dates(
        self, client: TestClient, session: Session, ruleset: Ruleset
    ) -> None:
        key = make_key(session)
        old = make_screening(
            session,
            ruleset=ruleset,
            clinic_id=key.clinic_id,
            answers=NEEDS_REVIEW_ANSWERS,
            created_at=NOW - timedelta(days=2),
        )
        new = make_screening(
            session, ruleset=ruleset, clinic_id=key.clinic_id, answers=NEEDS_REVIEW_ANSWERS
        )
        make_screening(session, ruleset=ruleset, clinic_id=key.clinic_id)
        listed = client.get(
            "/v1/screenings", params={"decision": "needs_review"}, headers=auth(key)
        ).json()
        assert [item["id"] for item in listed["items"]] == [new["id"], old["id"]]
        after = (NOW - timedelta(days=1)).isoformat()
        recent = client.get(
            "/v1/screenings",
            params={"decision": "needs_review", "created_after": after},
            headers=auth(key),
        ).json()
        assert [item["id"] for item in recent["items"]] == [new["id"]]
        before = client.get(
            "/v1/screenings", params={"created_before": after}, headers=auth(key)
        ).json()
        assert [item["id"] for item in before["items"]] == [old["id"]]

    def test_list_filters_reviewed(
        self, client: TestClient, session: Session, ruleset: Ruleset
    ) -> None:
        key = make_key(session)
        reviewed = make_screening(session, ruleset=ruleset, clinic_id=key.clinic_id)
        pending = make_screening(
            session, ruleset=ruleset, clinic_id=key.clinic_id, created_at=NOW - timedelta(minutes=1)
        )
        session.add(
            Review(
                screening_id=uuid.UUID(reviewed["id"]),
                clinic_id=key.clinic_id,
                disposition="cleared",
                note_ct=b"x",
                key_id="test1",
                created_at=NOW,
            )
        )
        session.flush()
        for flag, expected in (("false", pending), ("true", reviewed)):
            page = client.get("/v1/screenings", params={"reviewed": flag}, headers=auth(key))
            assert [item["id"] for item in page.json()["items"]] == [expected["id"]]
        detail = client.get(f"/v1/screenings/{reviewed['id']}", headers=auth(key)).json()
        assert detail["review"]["disposition"] == "cleared"
        # A listed item is the screening as GET shows it: review filled in, or null.
        unfiltered = client.get("/v1/screenings", headers=auth(key)).json()["items"]
        single = [
            client.get(f"/v1/screenings/{item['id']}", headers=auth(key)).json()
            for item in (reviewed, pending)
        ]
        assert unfiltered == single
        assert (unfiltered[0]["review"]["disposition"], unfiltered[1]["review"]) == (
            "cleared",
            None,
        )

    @pytest.mark.parametrize("cursor", ["not-a-cursor", "eyJ0IjoxfQ"])
    def test_list_rejects_bad_cursor(
        self, client: TestClient, session: Session, cursor: str
    ) -> None:
        key = make_key(session)
        response = client.get("/v1/screenings", params={"cursor": cursor}, headers=auth(key))
        assert response.status_code == 422
        assert response.json()["errors"][0]["parameter"] == "cursor"

    def test_list_rejects_naive_datetime(self, client: TestClient, session: Session) -> None:
        key = make_key(session)
        response = client.get(
            "/v1/screenings", params={"created_after": "2026-06-01T00:00:00"}, headers=auth(key)
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["parameter"] == "created_after"


class TestIdempotency:
    def test_retry_with_same_key_and_body_replays_first_response(
        self, client: TestClient, session: Session
    ) -> None:
        key = make_key(session)
        headers = auth(key) | {"Idempotency-Key": str(uuid.uuid4())}
        first = client.post("/v1/screenings", json=body(), headers=headers)
        before = count(session, Screening)
        second = client.post("/v1/screenings", json=body(), headers=headers)
        assert second.status_code == first.status_code == 201
        assert second.content == first.content
        assert second.headers["idempotent-replayed"] == "true"
        assert "idempotent-replayed" not in first.headers
        assert count(session, Screening) == before
        assert count(session, IdempotencyKey) >= 1

    def test_key_reuse_with_another_body_is_422(self, client: TestClient, session: Session) -> None:
        key = make_key(session)
        headers = auth(key) | {"Idempotency-Key": "retry-1"}
        client.post("/v1/screenings", json=body(), headers=headers)
        before = count(session, Screening)
        response = client.post("/v1/screenings", json=body(NEEDS_REVIEW_ANSWERS), headers=headers)
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"].endswith("idempotency-key-reused")
        assert count(session, Screening) == before

    def test_keys_are_scoped_to_the_clinic(self, client: TestClient, session: Session) -> None:
        first, second = make_key(session), make_key(session)
        a = client.post(
            "/v1/screenings", json=body(), headers=auth(first) | {"Idempotency-Key": "k"}
        )
        b = client.post(
            "/v1/screenings", json=body(), headers=auth(second) | {"Idempotency-Key": "k"}
        )
        assert a.status_code == b.status_code == 201
        assert a.json()["id"] != b.json()["id"]
        assert "idempotent-replayed" not in b.headers

    @pytest.mark.parametrize("value", ["x" * 256, "with space", ""])
    def test_malformed_key_is_400(self, client: TestClient, session: Session, value: str) -> None:
        key = make_key(session)
        before = count(session, Screening)
        response = client.post(
            "/v1/screenings", json=body(), headers=auth(key) | {"Idempotency-Key": value}
        )
        assert response.status_code == 400
        assert count(session, Screening) == before
