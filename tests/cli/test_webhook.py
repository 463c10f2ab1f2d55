"""`screening webhook add|list|remove|log|replay|deliver`."""

import json
from datetime import UTC, datetime

from sqlalchemy import select

from app.apikey import service as apikey_service
from app.db.engine import make_engine, make_sessionmaker
from app.db.models import WebhookEndpoint
from app.db.unit import session_scope
from app.main import load_checked_ruleset
from app.settings import default_rules_path
from tests.cli.conftest import Invoke
from tests.factories import DATA_KEY, make_screening
from tests.webhook.support import receiver


def test_add_list_deliver_log_replay_remove(invoke: Invoke, empty_database_url: str) -> None:
    env = {"SCREENING_DATABASE_URL": empty_database_url, "SCREENING_DATA_KEY": DATA_KEY}
    assert invoke("db", "upgrade", env=env).exit_code == 0
    assert (
        invoke("apikey", "create", "--clinic", "Sunrise", "--create-clinic", env=env).exit_code == 0
    )
    with receiver() as received:
        added = invoke("webhook", "add", "--clinic", "Sunrise", "--url", received.url,
                       "--events", "screening.created,screening.flagged", env=env)  # fmt: skip
        assert added.exit_code == 0, added.output
        secret = added.stdout.splitlines()[-1]
        assert secret.startswith("whsec_")
        listed = json.loads(invoke("webhook", "list", "--json", env=env).stdout)
        assert [item["events"] for item in listed] == [["screening.created", "screening.flagged"]]
        assert "whsec_" not in json.dumps(listed)
        _store_screening(empty_database_url)
        delivered = invoke("webhook", "deliver", "--once", env=env)
        assert delivered.exit_code == 0, delivered.output
        assert [body["type"] for body in received.bodies()] == ["screening.created"]
        log = json.loads(invoke("webhook", "log", "--json", env=env).stdout)
        assert [(row["status"], row["attempts"]) for row in log] == [("delivered", 1)]
        replayed = invoke("webhook", "replay", log[0]["event_id"], env=env)
        assert replayed.exit_code == 0, replayed.output
        assert invoke("webhook", "deliver", "--once", env=env).exit_code == 0
        assert len(received.requests) == 2
        assert received.requests[0][0]["webhook-id"] == received.requests[1][0]["webhook-id"]
    removed = invoke("webhook", "remove", listed[0]["id"], env=env)
    assert removed.exit_code == 0, removed.output
    assert invoke("webhook", "list", "--json", env=env).stdout.strip() == "[]"
    engine = make_engine(empty_database_url)
    with make_sessionmaker(engine)() as session:
        assert session.scalars(select(WebhookEndpoint)).one().removed_at is not None
    engine.dispose()


def test_add_refuses_unknown_events_and_clinics(invoke: Invoke, empty_database_url: str) -> None:
    env = {"SCREENING_DATABASE_URL": empty_database_url, "SCREENING_DATA_KEY": DATA_KEY}
    assert invoke("db", "upgrade", env=env).exit_code == 0
    assert (
        invoke("apikey", "create", "--clinic", "Sunrise", "--create-clinic", env=env).exit_code == 0
    )
    args = ("webhook", "add", "--url", "https://x.test/h")
    unknown = invoke(*args, "--clinic", "Nowhere", "--events", "screening.created", env=env)
    assert unknown.exit_code == 1
    bad = invoke(*args, "--clinic", "Sunrise", "--events", "patient.deleted", env=env)
    assert bad.exit_code == 1
    assert "events must be" in bad.stderr
    assert invoke("webhook", "replay", "msg_nope", env=env).exit_code == 1


def _store_screening(database_url: str) -> None:
    """One candidate screening of the clinic "Sunrise", committed (as the API would)."""
    engine = make_engine(database_url)
    with session_scope(make_sessionmaker(engine)) as session:
        clinic = apikey_service.find_clinic(session, name="Sunrise")
        assert clinic is not None
        ruleset = load_checked_ruleset(default_rules_path())
        make_screening(session, ruleset=ruleset, clinic_id=clinic.id, created_at=datetime.now(UTC))
    engine.dispose()
