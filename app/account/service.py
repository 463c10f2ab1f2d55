"""Users of a clinic: create them, sign them in (back-off, TOTP); personal tokens: tokens.py.

Contracts: functions take the caller's session and never commit. Every account change and
every sign-in attempt is an audit event (no email, password or code in it). A failed sign-in
is *returned*, not raised, so the caller's transaction commits the failure count.
"""

import hashlib
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.account import password as passwords
from app.account import throttle
from app.apikey import service as apikey_service
from app.audit import service as audit_service
from app.crypto import KeyRing, field_aad
from app.db.models import ActorType, AuditOutcome, Clinic, LoginFailure, Role, UserAccount
from app.errors import Conflict, NotFound, ProblemItem, ValidationFailed

# Per email: from the MAX_FAILURES-th failure on, each failure imposes a wait that doubles
# (1 s, 2 s, 4 s ...) up to MAX_DELAY, never a lock the right password cannot get through once
# the wait has passed (app/account/throttle.py). The count is forgotten FAILURE_WINDOW after
# its first failure.
MAX_FAILURES = 5
MAX_DELAY = timedelta(minutes=1)
FAILURE_WINDOW = timedelta(hours=1)
# One message for a wrong email, a wrong password, a wrong code and a disabled account, and
# one for a wait that unknown emails get too: neither reveals whether an account exists.
BAD_CREDENTIALS = "The email address, password or code is not correct."
LOCKED = (
    "Too many unsuccessful attempts. For your security, wait a minute before signing in "
    "with this email address again."
)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True, slots=True)
class Principal:
    """A signed-in user: who, which clinic, which role."""

    user_id: uuid.UUID
    clinic_id: uuid.UUID
    role: Role
    display_name: str
    email: str

    @property
    def is_physician(self) -> bool:
        """Whether this user may sign off screenings."""
        return self.role is Role.physician

    @property
    def actor(self) -> audit_service.Actor:
        """The audit actor of this user."""
        return audit_service.Actor(ActorType.user, str(self.user_id))


@dataclass(frozen=True, slots=True)
class CreatedUser:
    """A new user; ``password`` is the generated one-time password (None if one was given)."""

    user_id: uuid.UUID
    clinic_id: uuid.UUID
    password: str | None
    is_new_clinic: bool


@dataclass(frozen=True, slots=True)
class SignInResult:
    """The outcome of a sign-in attempt: a principal, or a message safe to show anyone.

    ``must_change_password``: the user signed in with a one-time password and must choose
    their own before doing anything else.
    """

    principal: Principal | None
    message: str = ""
    must_change_password: bool = False


def normalize_email(email: str) -> str:
    """Lower-cased, trimmed email; ValidationFailed if it does not look like one."""
    email = email.strip().lower()
    if not _EMAIL.match(email) or len(email) > 254:
        raise ValidationFailed(
            "The email address is not valid.",
            errors=[ProblemItem("invalid_email", "Enter an email address.", parameter="email")],
        )
    return email


def principal_of(user: UserAccount) -> Principal:
    """The principal of a user row."""
    return Principal(user.id, user.clinic_id, user.role, user.display_name, user.email)


def _clinic_for_user(
    session: Session, name: str, actor: audit_service.Actor, now: datetime, *, is_creating: bool
) -> tuple[Clinic, bool]:
    if is_creating:
        return apikey_service.get_or_create_clinic(session, name=name, actor=actor, now=now)
    clinic = apikey_service.find_clinic(session, name=name)
    if clinic is None:
        raise NotFound(
            f"There is no clinic named {name.strip()!r}. Check the spelling; a new clinic is "
            "created with `screening apikey create --clinic NAME`."
        )
    return clinic, False


def create_user(
    session: Session,
    *,
    clinic_name: str,
    email: str,
    role: Role,
    actor: audit_service.Actor,
    now: datetime,
    display_name: str | None = None,
    password: str | None = None,
    create_clinic: bool = False,
) -> CreatedUser:
    """Create a user of an existing clinic; generate a one-time password unless given.

    A generated password must be changed at the first sign-in. ``create_clinic`` creates
    the clinic if it does not exist (bootstrap and tests); otherwise an unknown clinic is
    NotFound, so a typo cannot put a physician into a new, empty clinic. Raises
    ValidationFailed (bad email, short password) or Conflict (email taken).
    """
    email = normalize_email(email)
    if password is not None and len(password) < passwords.MIN_LENGTH:
        raise ValidationFailed(
            f"The password must have at least {passwords.MIN_LENGTH} characters."
        )
    if session.scalars(select(UserAccount.id).where(UserAccount.email == email)).first():
        raise Conflict("A user with this email address already exists.")
    clinic, is_new_clinic = _clinic_for_user(
        session, clinic_name, actor, now, is_creating=create_clinic
    )
    generated = passwords.generate_password() if password is None else None
    user = UserAccount(
        id=uuid.uuid4(),
        clinic_id=clinic.id,
        email=email,
        display_name=display_name or email.split("@")[0],
        role=role,
        password_hash=passwords.hash_password(password or generated or ""),
        must_change_password=generated is not None,
        created_at=now,
    )
    session.add(user)
    session.flush()
    audit_service.append(
        session,
        action="user.created",
        actor=actor,
        clinic_id=clinic.id,
        target_type="user",
        target_id=user.id,
        detail={"role": role.value},
    )
    return CreatedUser(user.id, clinic.id, generated, is_new_clinic)


def user_by_email(session: Session, email: str) -> UserAccount | None:
    """The user with this (normalised) email address, disabled or not."""
    return session.scalars(select(UserAccount).where(UserAccount.email == email)).one_or_none()


def _email_hash(email: str) -> str:
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


def sign_in(
    session: Session,
    *,
    email: str,
    password: str,
    totp_code: str,
    keyring: KeyRing,
    now: datetime,
    request_id: str | None = None,
) -> SignInResult:
    """Check the credentials, counting failures per email whether or not the account exists.

    From the ``MAX_FAILURES``-th failure within ``FAILURE_WINDOW`` on, each failure delays
    the next attempt (doubling, at most ``MAX_DELAY``); during the delay even the right
    password is refused (without a hash verification), after it the right one signs in.
    Raises ``throttle.Busy`` when too many verifications are running (``passwords.GATE``).
    """
    key = _email_hash(email)
    record = session.get(LoginFailure, key)
    if _is_locked(record, now):
        _audit_failure(session, None, "locked", request_id)
        return SignInResult(None, LOCKED)
    user = user_by_email(session, email.strip().lower())
    usable_hash = None if user is None or user.disabled_at is not None else user.password_hash
    is_ok = passwords.verify_password(usable_hash, password)
    if is_ok and user is not None and not _second_factor_ok(session, user, totp_code, keyring, now):
        is_ok = False
    if not is_ok or user is None:
        return _fail(session, key, record, user, now, request_id)
    if record is not None:
        session.delete(record)
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash_password(password)
    principal = principal_of(user)
    audit_service.append(
        session,
        action="user.signed_in",
        actor=principal.actor,
        clinic_id=user.clinic_id,
        target_type="user",
        target_id=user.id,
        request_id=request_id,
    )
    return SignInResult(principal, must_change_password=user.must_change_password)


def _second_factor_ok(
    session: Session, user: UserAccount, code: str, keyring: KeyRing, now: datetime
) -> bool:
    """Check the code and remember its time step, so the same code cannot sign in again."""
    clinic = session.get_one(Clinic, user.clinic_id)
    if user.totp_secret_ct is None or user.totp_key_id is None:
        return not clinic.require_totp
    # Lock the row: two sign-ins racing with one code must not both see the old step.
    session.refresh(user, with_for_update=True)
    secret = keyring.decrypt(
        user.totp_key_id, user.totp_secret_ct, field_aad("user_account", "totp_secret_ct", user.id)
    ).decode()
    step = passwords.accepted_totp_step(secret, code, now=now, after=user.totp_last_step)
    if step is None:
        return False
    user.totp_last_step = step
    return True


def is_locked(session: Session, *, email: str, now: datetime) -> bool:
    """Whether failed attempts have locked ``email`` out (sign-in and password change)."""
    return _is_locked(session.get(LoginFailure, _email_hash(email)), now)


def _is_locked(record: LoginFailure | None, now: datetime) -> bool:
    return record is not None and record.locked_until is not None and record.locked_until > now


def note_wrong_current_password(
    session: Session, *, user: UserAccount, now: datetime, request_id: str | None
) -> bool:
    """Count a wrong current password on the change-password form as a failed sign-in.

    The same counter as ``sign_in``: whoever holds a signed-in browser cannot try passwords
    there without limit. Audited as ``user.sign_in_failed``. Returns True once the email is
    locked out (the caller then ends the session).
    """
    key = _email_hash(user.email)
    result = _fail(
        session, key, session.get(LoginFailure, key), user, now, request_id,
        reason="wrong_current_password",
    )  # fmt: skip
    return result.message == LOCKED


def _fail(
    session: Session,
    key: str,
    record: LoginFailure | None,
    user: UserAccount | None,
    now: datetime,
    request_id: str | None,
    *,
    reason: str = "bad_credentials",
) -> SignInResult:
    if record is None:
        record = LoginFailure(email_hash=key, failures=0, window_started_at=now)
        session.add(record)
    elif record.window_started_at + FAILURE_WINDOW < now:
        record.failures, record.window_started_at, record.locked_until = 0, now, None
    record.failures += 1
    delay = throttle.backoff(record.failures, free=MAX_FAILURES, cap=MAX_DELAY)
    is_locked = delay > timedelta(0)
    record.locked_until = now + delay if is_locked else None
    _audit_failure(session, user, "locked_out" if is_locked else reason, request_id)
    return SignInResult(None, LOCKED if is_locked else BAD_CREDENTIALS)


def _audit_failure(
    session: Session, user: UserAccount | None, reason: str, request_id: str | None
) -> None:
    audit_service.append(
        session,
        action="user.sign_in_failed",
        actor=audit_service.Actor(ActorType.user, None if user is None else str(user.id)),
        clinic_id=None if user is None else user.clinic_id,
        target_type="user",
        target_id=None if user is None else user.id,
        outcome=AuditOutcome.denied,
        request_id=request_id,
        detail={"reason": reason},
    )


def enroll_totp(
    session: Session, *, email: str, keyring: KeyRing, actor: audit_service.Actor
) -> str:
    """Give the user a new TOTP secret (stored encrypted); return its ``otpauth://`` URI."""
    user = user_by_email(session, normalize_email(email))
    if user is None:
        raise NotFound("No user with this email address.")
    secret = passwords.generate_totp_secret()
    aad = field_aad("user_account", "totp_secret_ct", user.id)
    user.totp_key_id, user.totp_secret_ct = keyring.encrypt(secret.encode(), aad)
    user.totp_last_step = None  # steps of the old secret say nothing about the new one
    clinic = session.get_one(Clinic, user.clinic_id)
    audit_service.append(
        session,
        action="user.totp_enrolled",
        actor=actor,
        clinic_id=user.clinic_id,
        target_type="user",
        target_id=user.id,
    )
    return passwords.totp_uri(secret, email=user.email, issuer=clinic.name)


def require_totp(
    session: Session, *, clinic_name: str, is_required: bool, actor: audit_service.Actor
) -> None:
    """Require (or stop requiring) a second factor for every user of a clinic."""
    clinic = session.scalars(select(Clinic).where(Clinic.name == clinic_name)).one_or_none()
    if clinic is None:
        raise NotFound("No clinic with this name.")
    clinic.require_totp = is_required
    audit_service.append(
        session,
        action="clinic.totp_required" if is_required else "clinic.totp_not_required",
        actor=actor,
        clinic_id=clinic.id,
        target_type="clinic",
        target_id=clinic.id,
    )
