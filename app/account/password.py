"""Password hashing (argon2id), one-time password generation and TOTP codes (no replay)."""

import hmac
import secrets
from datetime import datetime

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from app.account.throttle import VerifyGate

MIN_LENGTH = 12
# OWASP Password Storage Cheat Sheet floor for argon2id (m=19 MiB, t=2, p=1): strong enough,
# and two concurrent sign-ins on a 2-core box stay under 40 MiB.
_HASHER = PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1)
# Verified against when the email is unknown, so both paths cost one argon2 verification.
_DUMMY_HASH = _HASHER.hash(secrets.token_urlsafe(16))
# 2 verifications at once (2 cores, 2 x 19 MiB), 8 waiting; more get Busy (503) at once.
GATE = VerifyGate(running=2, waiting=8)
_TOTP_WINDOW = 1  # accept the previous and next 30 s step: phone clocks drift
_TOTP_DIGITS = 6


def hash_password(password: str) -> str:
    """Return the argon2id hash (``$argon2id$v=19$m=19456,t=2,p=1$...``)."""
    return _HASHER.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches; with no hash, spend the same time and return False.

    Raises:
        throttle.Busy: Too many verifications are running and waiting (``GATE``).
    """
    with GATE.slot():
        try:
            return _HASHER.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False


def needs_rehash(password_hash: str) -> bool:
    """Whether the hash uses older parameters and should be replaced after a good sign-in."""
    return _HASHER.check_needs_rehash(password_hash)


def generate_password() -> str:
    """A one-time password: 20 URL-safe characters (about 120 random bits)."""
    return secrets.token_urlsafe(15)


def generate_totp_secret() -> str:
    """A new base32 TOTP secret for an authenticator app."""
    return pyotp.random_base32()


def totp_uri(secret: str, *, email: str, issuer: str) -> str:
    """The ``otpauth://`` URI an authenticator app imports (as text or a QR code)."""
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=issuer)


def accepted_totp_step(secret: str, code: str, *, now: datetime, after: int | None) -> int | None:
    """The time step ``code`` is the code of (one step of drift allowed), or None.

    Only steps later than ``after`` (the user's last accepted step) count, so a code can
    be used once: replaying it, or an older one, within its window is refused (RFC 6238 5.2).
    """
    code = code.strip().replace(" ", "")
    if not (code.isdigit() and len(code) == _TOTP_DIGITS):
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    for step in range(current - _TOTP_WINDOW, current + _TOTP_WINDOW + 1):
        if (after is None or step > after) and hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None
