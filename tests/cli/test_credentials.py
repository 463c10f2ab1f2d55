"""Credential commands: `apikey list|revoke|rotate`, `--expires-in`, `user disable|enable`,
`user token create|list|revoke`, and `--actor` in the audit trail (issue 15)."""

import getpass
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.apikey import service as apikey_service
from app.db.engine import make_engine, make_sessionmaker
from app.db.models import ActorType, ApiKey, AuditEvent, WebSession
from app.engine import Ruleset
from app.main import create_app
from tests.cli.conftest import Invoke
from tests.conftest import make_settings
from tests.factories import DATA_KEY, FixedClock, auth
from tests.review.seed import PASSWORD, https_client, sign_in

CLINIC = "Sunrise Pain Clinic"
EMAIL = "rivera@sunrise.example"


@pytest.fixture
def env(invoke: Invoke, empty_database_url: str) -> dict[str, str]:
    values = {"SCREENING_DATABASE_URL": empty_database_url, "SCREENING_DATA_KEY": DATA_KEY}
    assert invoke("db", "upgrade", env=values).exit_code == 0
    return values


@pytest.fixture
def db(env: dict[str, str]) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(env["SCREENING_DATABASE_URL"])
    yield make_sessionmaker(engine)
    engine.dispose()


def _create_key(invoke: Invoke, env: dict[str, str], *extra: str) -> tuple[str, str]:
    """Create a key; return (its id, the key)."""
    result = invoke("apikey", "create", "--create-clinic", "--clinic", CLINIC, *extra, env=env)
    assert result.exit_code == 0, result.output
    key = result.stdout.splitlines()[-1]
    key_id = result.stderr.split("new API key ")[1].split(",")[0].split(".")[0]
    return key_id, key


def _status(env: dict[str, str], ruleset: Ruleset, key: str, at: datetime | None = None) -> int:
    """The status of GET /v1/screenings with ``key`` on a fresh app (its clock at ``at``)."""
    clock = FixedClock(at or datetime.now(UTC))
    app = create_app(make_settings(env["SCREENING_DATABASE_URL"]), ruleset=ruleset, clock=clock)
    with TestClient(app) as client:
        return client.get("/v1/screenings", headers=auth(key)).status_code


def _events(db: sessionmaker[Session], action: str) -> list[AuditEvent]:
    with db() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def _user(invoke: Invoke, env: dict[str, str]) -> None:
    _create_key(invoke, env)
    result = invoke("user", "create", "--clinic", CLINIC, "--email", EMAIL, "--role",
                    "physician", "--password-stdin", env=env, stdin=PASSWORD + "\n")  # fmt: skip
    assert result.exit_code == 0, result.output


def _token(invoke: Invoke, env: dict[str, str], *extra: str) -> str:
    result = invoke("user", "token", "create", "--email", EMAIL, *extra, env=env)
    assert result.exit_code == 0, result.output
    return result.stdout.splitlines()[-1]


class TestApikeyList:
    def test_lists_every_field_but_never_the_key_or_its_hash(
        self, invoke: Invoke, env: dict[str, str], db: sessionmaker[Session]
    ) -> None:
        first_id, first = _create_key(invoke, env)
        second_id, second = _create_key(invoke, env, "--name", "lab", "--expires-in", "30d")
        table = invoke("apikey", "list", "--clinic", CLINIC, env=env)
        assert table.exit_code == 0, table.output
        as_json = invoke("apikey", "list", "--clinic", CLINIC, "--json", env=env)
        rows = {row["id"]: row for row in json.loads(as_json.stdout)}
        assert set(rows) == {first_id, second_id}
        assert rows[first_id]["expires_at"] is None
        assert rows[first_id]["state"] == "active"
        assert rows[first_id]["scopes"] == list(apikey_service.DEFAULT_SCOPES)
        expires = datetime.fromisoformat(rows[second_id]["expires_at"])
        assert timedelta(days=29, hours=23) < expires - datetime.now(UTC) <= timedelta(days=30)
        assert rows[second_id]["name"] == "lab"
        assert {"created_at", "last_used_at", "revoked_at"} <= set(rows[first_id])
        for output in (table.stdout, as_json.stdout):
            for key in (first, second):
                assert key not in output
                assert apikey_service.hash_key(key) not in output
        assert first_id in table.stdout
        assert "LAST_USED" in table.stdout

    def test_an_unknown_clinic_is_a_clear_error(self, invoke: Invoke, env: dict[str, str]) -> None:
        _create_key(invoke, env)
        result = invoke("apikey", "list", "--clinic", "Sunrise Pain Clinc", env=env)
        assert result.exit_code == 1
        assert 'Did you mean "Sunrise Pain Clinic"' in result.stderr


class TestApikeyRevoke:
    def test_the_key_is_refused_and_the_operator_is_audited(
        self, invoke: Invoke, env: dict[str, str], db: sessionmaker[Session], ruleset: Ruleset
    ) -> None:
        key_id, key = _create_key(invoke, env)
        assert _status(env, ruleset, key) == 200
        result = invoke("apikey", "revoke", key_id, "--actor", "alice.ops", env=env)
        assert result.exit_code == 0, result.output
        assert _status(env, ruleset, key) == 401
        [event] = _events(db, "apikey.revoked")
        assert (event.actor_type, event.actor_id, event.target_id) == (
            ActorType.cli,
            "alice.ops",
            key_id,
        )
        listed = json.loads(invoke("apikey", "list", "--clinic", CLINIC, "--json", env=env).stdout)
        assert listed[0]["state"] == "revoked"
        assert listed[0]["last_used_at"] is not None
        again = invoke("apikey", "revoke", key_id, env=env)
        assert again.exit_code == 1
        assert "already revoked" in again.stderr

    def test_the_default_actor_is_the_os_user(
        self, invoke: Invoke, env: dict[str, str], db: sessionmaker[Session]
    ) -> None:
        key_id, _ = _create_key(invoke, env)
        assert invoke("apikey", "revoke", key_id, env=env).exit_code == 0
        [created] = _events(db, "apikey.created")
        [revoked] = _events(db, "apikey.revoked")
        assert created.actor_id == revoked.actor_id == getpass.getuser()

    @pytest.mark.parametrize("actor", ["", "x" * 101, "eve\x1b[2J"])
    def test_a_bad_actor_is_a_usage_error_and_changes_nothing(
        self, invoke: Invoke, env: dict[str, str], db: sessionmaker[Session], actor: str
    ) -> None:
        key_id, _ = _create_key(invoke, env)
        result = invoke("apikey", "revoke", key_id, "--actor", actor, env=env)
        assert result.exit_code == 2
        assert "--actor" in result.stderr
        assert _events(db, "apikey.revoked") == []

    def test_bad_and_unknown_ids_are_clear_errors(
        self, invoke: Invoke, env: dict[str, str]
    ) -> None:
        _create_key(invoke, env)
        bad = invoke("apikey", "revoke", "not-a-uuid", env=env)
        assert bad.exit_code == 2
        assert "Invalid value for 'ID': Input should be a valid UUID" in bad.stderr
        unknown = invoke("apikey", "revoke", str(uuid.uuid4()), env=env)
        assert unknown.exit_code == 1
        assert "no clinic API key with id" in unknown.stderr


class TestApikeyRotate:
    def test_the_old_key_works_until_the_grace_ends_and_the_new_one_after(
        self, invoke: Invoke, env: dict[str, str], db: sessionmaker[Session], ruleset: Ruleset
    ) -> None:
        key_id, old = _create_key(invoke, env, "--scopes", "screenings:read")
        result = invoke("apikey", "rotate", key_id, "--grace", "1h", env=env)
        assert result.exit_code == 0, result.output
        new = result.stdout.splitlines()[-1]
        assert new.startswith("sk_")
        assert new != old
        now = datetime.now(UTC)
        assert _status(env, ruleset, old, now) == 200
        assert _status(env, ruleset, old, now + timedelta(minutes=59)) == 200
        assert _status(env, ruleset, old, now + timedelta(minutes=61)) == 401
        assert _status(env, ruleset, new, now + timedelta(days=400)) == 200  # no expiry
        with db() as session:
            rows = session.scalars(select(ApiKey).order_by(ApiKey.created_at)).all()
        assert [row.scopes for row in rows] == [["screenings:read"], ["screenings:read"]]
        [event] = _events(db, "apikey.rotated")
        assert event.detail is not None
        assert event.detail["new_key_id"] == str(rows[1].id)

    def test_the_default_grace_is_24_hours(
        self, invoke: Invoke, env: dict[str, str], db: sessionmaker[Session]
    ) -> None:
        key_id, _ = _create_key(invoke, env)
        before = datetime.now(UTC)
        assert invoke("apikey", "rotate", key_id, env=env).exit_code == 0
        with db() as session:
            old = session.get_one(ApiKey, uuid.UUID(key_id))
        assert old.expires_at is not None
        assert timedelta(hours=24) <= old.expires_at - before < timedelta(hours=24, minutes=1)

    @pytest.mark.parametrize(
        ("option", "value"),
        [("--grace", "24"), ("--grace", "1.5h"), ("--grace", "-1d"), ("--grace", "2y"),
         ("--expires-in", "0h"), ("--expires-in", "soon"), ("--expires-in", "99999w")],
    )  # fmt: skip
    def test_a_bad_duration_is_a_usage_error_naming_the_option_and_changes_nothing(
        self, invoke: Invoke, env: dict[str, str], db: sessionmaker[Session], option: str,
        value: str,
    ) -> None:  # fmt: skip
        key_id, _ = _create_key(invoke, env)
        result = invoke("apikey", "rotate", key_id, option, value, env=env)
        assert result.exit_code == 2, result.output
        assert option in result.stderr
        assert result.stdout == ""
        with db() as session:
            assert len(session.scalars(select(ApiKey)).all()) == 1
        created = invoke("apikey", "create", "--clinic", CLINIC, "--expires-in", value, env=env)
        assert created.exit_code == 2


class TestUserDisable:
    def test_disable_ends_sessions_and_tokens_and_enable_lets_them_sign_in_again(
        self, invoke: Invoke, env: dict[str, str], db: sessionmaker[Session], ruleset: Ruleset
    ) -> None:
        _user(invoke, env)
        token = _token(invoke, env)
        app = create_app(make_settings(env["SCREENING_DATABASE_URL"]), ruleset=ruleset)
        with https_client(app) as browser:
            assert sign_in(browser, EMAIL).status_code == 303
            assert browser.get("/review").status_code == 200
            reviews = f"/v1/screenings/{uuid.uuid4()}/reviews"  # the review API: accepted
            assert browser.get(reviews, headers=auth(token)).status_code == 404
            result = invoke("user", "disable", "--email", EMAIL, "--actor", "it-desk", env=env)
            assert result.exit_code == 0, result.output
            assert "1 web session(s) ended, 1 personal token(s) revoked" in result.stdout
            assert browser.get("/review").status_code == 303  # back to signing in
            assert browser.get(reviews, headers=auth(token)).status_code == 401
            assert sign_in(browser, EMAIL).status_code != 303
            assert invoke("user", "enable", "--email", EMAIL, env=env).exit_code == 0
            assert sign_in(browser, EMAIL).status_code == 303
            assert browser.get(reviews, headers=auth(token)).status_code == 401
        with db() as session:
            assert session.scalars(select(WebSession.ended_at)).first() is not None
        [disabled] = _events(db, "user.disabled")
        assert (disabled.actor_type, disabled.actor_id) == (ActorType.cli, "it-desk")
        assert [event.actor_id for event in _events(db, "apikey.revoked")] == ["it-desk"]
        assert len(_events(db, "user.enabled")) == 1

    def test_twice_and_unknown_are_clear_errors(self, invoke: Invoke, env: dict[str, str]) -> None:
        _user(invoke, env)
        assert invoke("user", "disable", "--email", EMAIL, env=env).exit_code == 0
        again = invoke("user", "disable", "--email", EMAIL, env=env)
        assert (again.exit_code, again.stderr) == (1, f"error: {EMAIL} is already disabled.\n")
        unknown = invoke("user", "enable", "--email", "nobody@sunrise.example", env=env)
        assert unknown.exit_code == 1
        assert "no user with the email address nobody@sunrise.example" in unknown.stderr


class TestUserToken:
    def test_revoking_one_token_leaves_the_other_and_the_list_shows_it(
        self, invoke: Invoke, env: dict[str, str], ruleset: Ruleset
    ) -> None:
        _user(invoke, env)
        first, second = _token(invoke, env), _token(invoke, env, "--expires-in", "never")
        listed = json.loads(invoke("user", "token", "list", "--email", EMAIL, "--json",
                                   env=env).stdout)  # fmt: skip
        assert len(listed) == 2
        expires = datetime.fromisoformat(listed[0]["expires_at"])
        assert timedelta(days=89, hours=23) < expires - datetime.now(UTC) <= timedelta(days=90)
        assert listed[1]["expires_at"] is None
        result = invoke("user", "token", "revoke", listed[0]["id"], "--email", EMAIL, env=env)
        assert result.exit_code == 0, result.output
        app = create_app(make_settings(env["SCREENING_DATABASE_URL"]), ruleset=ruleset)
        with TestClient(app) as client:
            reviews = f"/v1/screenings/{uuid.uuid4()}/reviews"
            assert client.get(reviews, headers=auth(first)).status_code == 401
            assert client.get(reviews, headers=auth(second)).status_code == 404  # accepted
        after = json.loads(invoke("user", "token", "list", "--email", EMAIL, "--json",
                                  env=env).stdout)  # fmt: skip
        assert [row["state"] for row in after] == ["revoked", "active"]
        for output in (json.dumps(after),):
            assert first not in output
            assert second not in output

    def test_an_intake_key_id_is_not_a_token_of_the_user(
        self, invoke: Invoke, env: dict[str, str]
    ) -> None:
        _user(invoke, env)
        key_id, _ = _create_key(invoke, env)
        result = invoke("user", "token", "revoke", key_id, "--email", EMAIL, env=env)
        assert result.exit_code == 1
        assert "This user has no personal token with id" in result.stderr
        token_id = json.loads(
            invoke("user", "token", "list", "--email", EMAIL, "--json", env=env).stdout or "[]"
        )
        assert token_id == []


@pytest.mark.parametrize(
    ("command", "action"),
    [
        (("form", "configure", "--clinic", CLINIC, "--phone", "+1 555 0100"),
         "clinic.form_configured"),
        (("user", "require-totp", "--clinic", CLINIC), "clinic.totp_required"),
    ],
)  # fmt: skip
def test_clinic_setting_changes_are_audited_with_the_operator(
    invoke: Invoke,
    env: dict[str, str],
    db: sessionmaker[Session],
    command: tuple[str, ...],
    action: str,
) -> None:
    _create_key(invoke, env)
    result = invoke(*command, "--actor", "dr.admin", env=env)
    assert result.exit_code == 0, result.output
    [event] = _events(db, action)
    assert (event.actor_type, event.actor_id) == (ActorType.cli, "dr.admin")
