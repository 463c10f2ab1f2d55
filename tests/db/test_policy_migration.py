"""Upgrading to per-clinic packs leaves every clinic's decisions unchanged (both backends).

A database at the previous head gets real data through the services of the time: clinics
whose screenings were decided under policy v1, one that moved to v2, one without
screenings, an open invitation. After ``upgrade head`` each clinic's active pack is the one
it was using, and the API (serving v2 as the default on disk) decides each clinic's stored
answers as they were decided, replays each with /explain, and pins the open invitation.
"""

import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from app.apikey import service as apikey_service
from app.audit import service as audit_service
from app.context import app_context
from app.db import migrate
from app.db.engine import make_engine, make_sessionmaker
from app.db.models import Clinic, Invitation, Screening
from app.db.policy_models import RulePackActivation
from app.db.unit import session_scope
from app.engine import Ruleset, load_ruleset
from app.main import create_app
from app.rulepack import service as rulepack_service
from app.screening import service as screening_service
from tests.conftest import make_settings
from tests.factories import (
    CANDIDATE_ANSWERS,
    KEYRING,
    NOW,
    V1_CANDIDATE_ANSWERS,
    FixedClock,
    auth,
)

PREVIOUS_HEAD = "5b7c9d1e3f20"
RULES = Path(__file__).resolve().parents[2] / "rules"
# Elevated blood pressure: needs review under both packs; v1 answers under v2 also lack items.
V1_ELEVATED = V1_CANDIDATE_ANSWERS | {"systolic_bp": 148}


def _clinic(session: Session, name: str) -> uuid.UUID:
    """Insert a clinic with the columns of the previous schema (the ORM class is newer).

    Core renders only the columns given or with a default, so the new column is left out.
    """
    clinic_id = uuid.uuid4()
    session.execute(
        insert(Clinic),
        [{"id": clinic_id, "name": name, "phone": None, "form_origins": [],
          "require_totp": False, "created_at": NOW}],
    )  # fmt: skip
    return clinic_id


def _screen(
    session: Session, ruleset: Ruleset, clinic_id: uuid.UUID, answers: dict[str, Any], days: int
) -> dict[str, Any]:
    at = NOW - timedelta(days=days)
    session.flush()
    return screening_service.submit(
        session.connection(),
        ruleset=ruleset,
        keyring=KEYRING,
        clinic_id=clinic_id,
        actor=audit_service.Actor.cli(),
        submission=screening_service.Submission(
            ruleset.questionnaire.id, answers, {"reference": "MRN-1"}
        ),
        idempotency_key=None,
        now=at,
        as_of=at.date(),
    ).body


def _seed(url: str, v1: Ruleset, v2: Ruleset) -> dict[str, Any]:
    """Data at the previous head: returns the clinics, their screenings and an invitation."""
    engine = make_engine(url)
    with session_scope(make_sessionmaker(engine)) as session:
        rulepack_service.store_rule_pack(session, ruleset=v1, now=NOW - timedelta(days=30))
        rulepack_service.store_rule_pack(session, ruleset=v2, now=NOW - timedelta(days=2))
        on_v1, moved, empty = (_clinic(session, name) for name in ("On v1", "Moved", "Empty"))
        moved_screenings = [
            _screen(session, v1, moved, V1_ELEVATED, 20),
            _screen(session, v2, moved, CANDIDATE_ANSWERS, 1),
        ]
        seeded = {
            "on_v1": (on_v1, [_screen(session, v1, on_v1, V1_ELEVATED, days) for days in (9, 3)]),
            "moved": (moved, moved_screenings),
            "empty": (empty, []),
        }
        invitation_id = uuid.uuid4()
        session.execute(
            insert(Invitation),
            [{"id": invitation_id, "clinic_id": on_v1, "token_hash": "a" * 64,
              "key_id": KEYRING.current_kid, "subject_ct": b"x", "language": "en",
              "created_at": NOW, "expires_at": NOW + timedelta(days=7)}],
        )  # fmt: skip
    engine.dispose()
    return seeded | {"invitation": invitation_id}


def test_upgrade_keeps_every_clinics_decisions(empty_database_url: str) -> None:
    v1 = load_ruleset(RULES / "ketamine-infusion-v1")
    v2 = load_ruleset(RULES / "ketamine-infusion")
    config = migrate.make_config(database_url=empty_database_url)
    migrate.upgrade(config, PREVIOUS_HEAD)
    seeded = _seed(empty_database_url, v1, v2)
    migrate.upgrade(config)

    engine = make_engine(empty_database_url)
    factory = make_sessionmaker(engine)
    with factory() as session:
        active = {name: session.get_one(Clinic, seeded[name][0]).rule_pack_sha256
                  for name in ("on_v1", "moved", "empty")}  # fmt: skip
        pinned = session.get_one(Invitation, seeded["invitation"]).rule_pack_sha256
        history = session.scalars(select(RulePackActivation)).all()
    # the newest screening's pack; a clinic without screenings: the last loaded pack
    assert active == {"on_v1": v1.sha256, "moved": v2.sha256, "empty": v2.sha256}
    assert pinned == v1.sha256
    assert {(row.clinic_id, row.kind.value, row.to_sha256) for row in history} == {
        (seeded[name][0], "migrated", active[name]) for name in active
    }

    settings = make_settings(empty_database_url)
    app = create_app(settings, sessionmaker=factory, clock=FixedClock(), ruleset=v2)
    with session_scope(factory) as session:
        keys = {
            name: apikey_service.create(
                session,
                clinic_name=session.get_one(Clinic, seeded[name][0]).name,
                actor=audit_service.Actor.cli(),
                now=NOW,
            )
            for name in ("on_v1", "moved")
        }
    with TestClient(app) as client:
        # ready, although the default pack on disk is not every clinic's active pack
        assert client.get("/readyz").json() == {"status": "ready"}
        for name, key in keys.items():
            for stored in seeded[name][1]:
                _assert_replayed(client, key, stored)
        # the newest decision of each clinic, made again today with its active pack
        on_v1 = _evaluate(client, keys["on_v1"], V1_ELEVATED)
        assert (on_v1["decision"], on_v1["ruleset"]["sha256"]) == ("needs_review", v1.sha256)
        moved = _evaluate(client, keys["moved"], CANDIDATE_ANSWERS)
        assert (moved["decision"], moved["ruleset"]["sha256"]) == ("candidate", v2.sha256)
        # v2 serves the stricter v2 questionnaire only to the clinic that moved to it
        assert _evaluate(client, keys["on_v1"], CANDIDATE_ANSWERS).get("status") == 422
    engine.dispose()


def _evaluate(
    client: TestClient, key: apikey_service.CreatedKey, answers: dict[str, Any]
) -> dict[str, Any]:
    body = {"questionnaire": "ketamine-infusion-candidacy", "answers": answers}
    result: dict[str, Any] = client.post("/v1/evaluate", json=body, headers=auth(key)).json()
    return result


def _assert_replayed(
    client: TestClient, key: apikey_service.CreatedKey, stored: dict[str, Any]
) -> None:
    explained = client.get(f"/v1/screenings/{stored['id']}/explain", headers=auth(key)).json()
    assert explained["matches_stored"] is True
    assert explained["ruleset"] == stored["ruleset"]
    assert explained["result"]["decision"] == stored["decision"]
    with app_context(client.app).unit.session() as session:  # type: ignore[arg-type]
        row = session.get_one(Screening, uuid.UUID(stored["id"]))
        assert row.decision.value == stored["decision"]
