"""`screening keys rotate`: killed midway, re-run, then the old key is removable."""

import base64
import functools
import os
import signal
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select

from app import crypto
from app.audit import verify as audit_verify
from app.db import migrate
from app.db.engine import make_engine, make_sessionmaker
from app.db.models import AuditEvent, Invitation, Role, Screening, UserAccount
from app.db.unit import session_scope
from app.screening import store
from tests.audit.factories import KEY_1, KEY_2, make_clinic, make_rule_pack, make_screening
from tests.cli.conftest import Invoke

SPEC_1 = "k1:" + base64.b64encode(KEY_1).decode()
SPEC_2 = "k2:" + base64.b64encode(KEY_2).decode()
ROWS = 600
ONLY_NEW = crypto.KeyRing.parse(SPEC_2)
BOTH = crypto.KeyRing.parse(f"{SPEC_1},{SPEC_2}")


def _populate(url: str, rows: int = ROWS) -> None:
    migrate.upgrade(migrate.make_config(database_url=url))
    engine = make_engine(url)
    with session_scope(make_sessionmaker(engine)) as session:
        clinic = make_clinic(session)
        make_rule_pack(session)
        old = crypto.KeyRing.parse(SPEC_1)
        for _ in range(rows):
            make_screening(session, clinic=clinic, keyring=old)
    engine.dispose()


def _key_counts(url: str) -> dict[str, int]:
    engine = make_engine(url)
    with session_scope(make_sessionmaker(engine)) as session:
        query = select(Screening.key_id, func.count()).group_by(Screening.key_id)
        counts = {str(kid): int(count) for kid, count in session.execute(query).all()}
    engine.dispose()
    return counts


def _rotate_process(url: str, tmp_path: Path) -> subprocess.Popen[str]:
    env = os.environ | {
        "SCREENING_DATABASE_URL": url,
        "SCREENING_DATA_KEY": f"{SPEC_1},{SPEC_2}",
        "SCREENING_SECRETS_FILE": str(tmp_path / "none.env"),
        "PYTHONUNBUFFERED": "1",
    }
    command = [sys.executable, "-m", "app", "keys", "rotate", "--batch-size", "5"]
    return subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, text=True)


def test_rotate_killed_midway_then_rerun(
    invoke: Invoke, empty_database_url: str, tmp_path: Path
) -> None:
    url = empty_database_url
    _populate(url)
    process = _rotate_process(url, tmp_path)
    assert process.stdout is not None
    first = process.stdout.readline()
    assert first.startswith("screening: 5 / 600 rows"), first
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    process.stdout.close()
    partial = _key_counts(url)
    assert partial.get("k2", 0) >= 5
    assert partial.get("k1", 0) > 0, "rotation finished before the kill; raise ROWS"
    assert sum(partial.values()) == ROWS

    env = {"SCREENING_DATABASE_URL": url, "SCREENING_DATA_KEY": f"{SPEC_1},{SPEC_2}"}
    result = invoke("keys", "rotate", "--batch-size", "50", env=env)
    assert result.exit_code == 0, result.output
    assert "OK: every row is on key k2" in result.stdout
    assert _key_counts(url) == {"k2": ROWS}

    # The old key is now removable: every row decrypts and the chain (digests included) holds.
    engine = make_engine(url)
    with session_scope(make_sessionmaker(engine)) as session:
        report = audit_verify.verify_chain(
            session, screenings=functools.partial(store.content_digest, ONLY_NEW)
        )
    engine.dispose()
    assert report.ok, report.problem
    assert report.screenings_checked == ROWS
    only_new = invoke(
        "audit", "verify", env={"SCREENING_DATABASE_URL": url, "SCREENING_DATA_KEY": SPEC_2}
    )
    assert only_new.exit_code == 0, only_new.output


def test_rotate_reports_undecryptable_row(invoke: Invoke, empty_database_url: str) -> None:
    _populate(empty_database_url)
    env = {"SCREENING_DATABASE_URL": empty_database_url, "SCREENING_DATA_KEY": SPEC_2}
    result = invoke("keys", "rotate", env=env)
    assert result.exit_code == 1
    assert "unknown data key id 'k1'" in result.stderr
    assert "screening " in result.stderr


def test_rotate_with_nothing_to_do(invoke: Invoke, empty_database_url: str) -> None:
    migrate.upgrade(migrate.make_config(database_url=empty_database_url))
    env = {"SCREENING_DATABASE_URL": empty_database_url, "SCREENING_DATA_KEY": SPEC_1}
    result = invoke("keys", "rotate", env=env)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "OK: every row is on key k1"


def test_rotate_moves_invitations_and_second_factor_secrets(
    invoke: Invoke, empty_database_url: str
) -> None:
    url = empty_database_url
    migrate.upgrade(migrate.make_config(database_url=url))
    engine = make_engine(url)
    old = crypto.KeyRing.parse(SPEC_1)
    now = datetime.now(UTC)
    with session_scope(make_sessionmaker(engine)) as session:
        clinic = make_clinic(session)
        invitation = Invitation(
            id=uuid.uuid4(),
            clinic_id=clinic.id,
            token_hash="a" * 64,
            key_id="k1",
            subject_ct=b"",
            language="en",
            created_at=now,
            expires_at=now,
        )
        invitation.subject_ct = old.encrypt(
            b'"MRN-1"', _aad("invitation", "subject_ct", invitation)
        )[1]
        invitation.draft_ct = old.encrypt(b"{}", _aad("invitation", "draft_ct", invitation))[1]
        without_draft = Invitation(
            id=uuid.uuid4(),
            clinic_id=clinic.id,
            token_hash="b" * 64,
            key_id="k1",
            subject_ct=b"",
            language="en",
            created_at=now,
            expires_at=now,
        )
        without_draft.subject_ct = old.encrypt(
            b'"MRN-2"', _aad("invitation", "subject_ct", without_draft)
        )[1]
        user = UserAccount(
            id=uuid.uuid4(),
            clinic_id=clinic.id,
            email="dr@example.org",
            display_name="Dr",
            role=Role.physician,
            password_hash="x",
            created_at=now,
            totp_key_id="k1",
        )
        user.totp_secret_ct = old.encrypt(b"SECRET", _aad("user_account", "totp_secret_ct", user))[
            1
        ]
        session.add_all([invitation, without_draft, user])

    env = {"SCREENING_DATABASE_URL": url, "SCREENING_DATA_KEY": f"{SPEC_1},{SPEC_2}"}
    result = invoke("keys", "rotate", env=env)
    assert result.exit_code == 0, result.output

    with session_scope(make_sessionmaker(engine)) as session:
        stored = session.get_one(Invitation, invitation.id)
        bare = session.get_one(Invitation, without_draft.id)
        account = session.get_one(UserAccount, user.id)
        assert (stored.key_id, bare.key_id, account.totp_key_id) == ("k2", "k2", "k2")
        subject = _aad("invitation", "subject_ct", stored)
        assert ONLY_NEW.decrypt("k2", stored.subject_ct, subject) == b'"MRN-1"'
        draft = _aad("invitation", "draft_ct", stored)
        assert stored.draft_ct is not None
        assert ONLY_NEW.decrypt("k2", stored.draft_ct, draft) == b"{}"
        assert bare.draft_ct is None
        secret = _aad("user_account", "totp_secret_ct", account)
        assert account.totp_secret_ct is not None
        assert ONLY_NEW.decrypt("k2", account.totp_secret_ct, secret) == b"SECRET"
    engine.dispose()


def _aad(table: str, column: str, row: Invitation | UserAccount) -> bytes:
    return crypto.field_aad(table, column, row.id)


def test_rotate_records_the_operator_in_the_audit_trail(
    invoke: Invoke, empty_database_url: str
) -> None:
    url = empty_database_url
    _populate(url, rows=1)
    env = {"SCREENING_DATABASE_URL": url, "SCREENING_DATA_KEY": f"{SPEC_1},{SPEC_2}"}
    result = invoke("keys", "rotate", "--actor", "ops-alice", env=env)
    assert result.exit_code == 0, result.output
    engine = make_engine(url)
    with session_scope(make_sessionmaker(engine)) as session:
        actors = session.execute(
            select(AuditEvent.actor_type, AuditEvent.actor_id).where(
                AuditEvent.action == "data_key.rotated"
            )
        ).all()
    engine.dispose()
    assert actors
    assert {(str(kind), name) for kind, name in actors} == {("cli", "ops-alice")}
