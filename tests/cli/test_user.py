"""`screening user create | token | totp | require-totp`."""

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.account import password as passwords
from app.db.engine import make_engine, make_sessionmaker
from app.db.models import Clinic, UserAccount
from app.db.unit import session_scope
from app.engine import Ruleset
from app.main import create_app
from tests.cli.conftest import Invoke
from tests.conftest import make_settings
from tests.factories import DATA_KEY, auth, make_screening

CLINIC = "Sunrise Pain Clinic"
EMAIL = "rivera@sunrise.example"


@pytest.fixture
def env(invoke: Invoke, empty_database_url: str) -> dict[str, str]:
    """A migrated database with one clinic (made by `apikey create`, as in the README)."""
    values = {"SCREENING_DATABASE_URL": empty_database_url, "SCREENING_DATA_KEY": DATA_KEY}
    assert invoke("db", "upgrade", env=values).exit_code == 0
    assert (
        invoke("apikey", "create", "--create-clinic", "--clinic", CLINIC, env=values).exit_code == 0
    )
    return values


@pytest.fixture
def db(env: dict[str, str]) -> Iterator[sessionmaker[Session]]:
    """Sessions on the CLI's database, to check what the commands stored.

    Each check reads in a short session of its own: on SQLite every transaction takes the
    write lock, so a session left open would block the next command.
    """
    engine = make_engine(env["SCREENING_DATABASE_URL"])
    yield make_sessionmaker(engine)
    engine.dispose()


def _user(db: sessionmaker[Session], email: str = EMAIL) -> UserAccount:
    with db() as session:
        return session.scalars(select(UserAccount).where(UserAccount.email == email)).one()


def _users(db: sessionmaker[Session]) -> list[UserAccount]:
    with db() as session:
        return list(session.scalars(select(UserAccount)))


def _clinics(db: sessionmaker[Session]) -> list[Clinic]:
    with db() as session:
        return list(session.scalars(select(Clinic)))


def _create(invoke: Invoke, env: dict[str, str], *extra: str, stdin: str | None = None) -> str:
    result = invoke("user", "create", "--clinic", CLINIC, "--email", EMAIL, "--role",
                    "physician", *extra, env=env, stdin=stdin)  # fmt: skip
    assert result.exit_code == 0, result.output
    return result.stdout


class TestCreate:
    def test_prints_a_generated_one_time_password_alone_on_the_last_line(
        self, invoke: Invoke, env: dict[str, str], db: sessionmaker[Session]
    ) -> None:
        stdout = _create(invoke, env, "--name", "Dr Rivera")
        password = stdout.splitlines()[-1]
        assert len(password) == 20
        assert stdout.strip() == password  # nothing else on stdout
        user = _user(db)
        assert user.display_name == "Dr Rivera"
        assert user.must_change_password
        assert user.password_hash.startswith("$argon2id$")
        assert passwords.verify_password(user.password_hash, password)

    def test_reads_the_password_from_stdin(
        self, invoke: Invoke, env: dict[str, str], db: sessionmaker[Session]
    ) -> None:
        stdout = _create(invoke, env, "--password-stdin", stdin="correct horse battery\n")
        assert stdout == ""  # no password is printed when one was given
        user = _user(db)
        assert not user.must_change_password
        assert passwords.verify_password(user.password_hash, "correct horse battery")

    def test_a_short_password_from_stdin_is_refused(
        self, invoke: Invoke, env: dict[str, str], db: sessionmaker[Session]
    ) -> None:
        result = invoke("user", "create", "--clinic", CLINIC, "--email", EMAIL, "--role",
                        "admin", "--password-stdin", env=env, stdin="short\n")  # fmt: skip
        assert result.exit_code == 1
        assert "at least 12 characters" in result.stderr
        assert _users(db) == []

    def test_an_unknown_clinic_is_a_clear_error(
        self, invoke: Invoke, env: dict[str, str], db: sessionmaker[Session]
    ) -> None:
        result = invoke("user", "create", "--clinic", "Sunrise Pain Clinc", "--email", EMAIL,
                        "--role", "physician", env=env)  # fmt: skip
        assert result.exit_code == 1
        assert result.stderr.startswith("error: There is no clinic named 'Sunrise Pain Clinc'")
        assert result.stdout == ""
        assert len(_clinics(db)) == 1  # no clinic was made by the typo

    def test_a_duplicate_email_is_a_clear_error(self, invoke: Invoke, env: dict[str, str]) -> None:
        _create(invoke, env)
        result = invoke("user", "create", "--clinic", CLINIC, "--email", EMAIL.upper(),
                        "--role", "admin", env=env)  # fmt: skip
        assert result.exit_code == 1
        assert result.stderr == "error: A user with this email address already exists.\n"
        assert result.stdout == ""

    def test_an_unknown_role_is_a_usage_error(self, invoke: Invoke, env: dict[str, str]) -> None:
        result = invoke("user", "create", "--clinic", CLINIC, "--email", EMAIL, "--role",
                        "nurse", env=env)  # fmt: skip
        assert result.exit_code == 2
        assert "nurse" in result.stderr


class TestToken:
    def test_prints_a_token_that_signs_off_while_an_intake_key_gets_403(
        self, invoke: Invoke, env: dict[str, str], db: sessionmaker[Session], ruleset: Ruleset
    ) -> None:
        intake = invoke(
            "apikey", "create", "--create-clinic", "--clinic", CLINIC, env=env
        ).stdout.splitlines()[-1]
        _create(invoke, env)
        result = invoke("user", "token", "create", "--email", EMAIL, env=env)
        assert result.exit_code == 0, result.output
        token = result.stdout.splitlines()[-1]
        assert token.startswith("sk_")
        assert result.stdout.strip() == token
        url = env["SCREENING_DATABASE_URL"]
        screening_id = _flagged_screening(url, ruleset)
        app = create_app(make_settings(url), ruleset=ruleset)
        with TestClient(app) as client:
            path = f"/v1/screenings/{screening_id}"
            etag = client.get(path, headers=auth(token)).headers["etag"]
            review = {"disposition": "declined", "note": "Heart failure: refer."}
            refused = client.post(
                f"{path}/reviews", json=review, headers=auth(intake) | {"If-Match": etag}
            )
            assert refused.status_code == 403
            signed = client.post(
                f"{path}/reviews", json=review, headers=auth(token) | {"If-Match": etag}
            )
            assert signed.status_code == 201, signed.text
            assert signed.json()["reviewer"]["id"] == str(_user(db).id)

    def test_an_unknown_email_is_a_clear_error(self, invoke: Invoke, env: dict[str, str]) -> None:
        result = invoke("user", "token", "create", "--email", "nobody@sunrise.example", env=env)
        assert result.exit_code == 1
        assert result.stderr == "error: No active user with this email address.\n"
        assert result.stdout == ""


def _flagged_screening(database_url: str, ruleset: Ruleset) -> uuid.UUID:
    engine = make_engine(database_url)
    with session_scope(make_sessionmaker(engine)) as session:
        clinic = session.scalars(select(Clinic).where(Clinic.name == CLINIC)).one()
        body = make_screening(
            session,
            ruleset=ruleset,
            clinic_id=clinic.id,
            answers={"heart_failure": "yes"},
            created_at=datetime.now(UTC),
        )
    engine.dispose()
    return uuid.UUID(str(body["id"]))


class TestTotp:
    def test_enrolls_a_user_and_prints_the_otpauth_uri_last(
        self, invoke: Invoke, env: dict[str, str], db: sessionmaker[Session]
    ) -> None:
        _create(invoke, env)
        result = invoke("user", "totp", "--email", EMAIL, env=env)
        assert result.exit_code == 0, result.output
        uri = result.stdout.splitlines()[-1]
        totp = pyotp.parse_uri(uri)
        assert isinstance(totp, pyotp.TOTP)
        assert uri.startswith("otpauth://totp/")
        assert "Sunrise" in uri
        user = _user(db)
        assert user.totp_secret_ct is not None
        assert totp.secret.encode() not in user.totp_secret_ct  # stored encrypted

    def test_an_unknown_user_is_a_clear_error(self, invoke: Invoke, env: dict[str, str]) -> None:
        result = invoke("user", "totp", "--email", EMAIL, env=env)
        assert result.exit_code == 1
        assert result.stderr == "error: No user with this email address.\n"

    def test_without_a_data_key_it_says_so(self, invoke: Invoke, env: dict[str, str]) -> None:
        _create(invoke, env)
        result = invoke("user", "totp", "--email", EMAIL, env=env | {"SCREENING_DATA_KEY": ""})
        assert result.exit_code == 1
        assert "SCREENING_DATA_KEY" in result.stderr


class TestRequireTotp:
    def test_turns_the_requirement_on_and_off(
        self, invoke: Invoke, env: dict[str, str], db: sessionmaker[Session]
    ) -> None:
        on = invoke("user", "require-totp", "--clinic", CLINIC, env=env)
        assert on.exit_code == 0, on.output
        assert on.stdout == f"Clinic {CLINIC!r} now requires an authenticator code at sign-in.\n"
        assert _clinic(db).require_totp
        off = invoke("user", "require-totp", "--clinic", CLINIC, "--off", env=env)
        assert off.exit_code == 0, off.output
        assert "no longer requires" in off.stdout
        assert not _clinic(db).require_totp

    def test_an_unknown_clinic_is_a_clear_error(self, invoke: Invoke, env: dict[str, str]) -> None:
        result = invoke("user", "require-totp", "--clinic", "Nowhere", env=env)
        assert result.exit_code == 1
        assert result.stderr == "error: No clinic with this name.\n"


def _clinic(db: sessionmaker[Session]) -> Clinic:
    with db() as session:
        return session.scalars(select(Clinic).where(Clinic.name == CLINIC)).one()
