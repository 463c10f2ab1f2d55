"""CDS Hooks client authentication: the EHR's JWT, verified against its clinic's JWKS URL.

CDS Hooks 2.0 "Trusting CDS Clients": each call carries ``Authorization: Bearer <JWT>``
signed with an asymmetric key; ``iss`` names the client, ``aud`` the endpoint called, ``exp``
at most five minutes ahead, ``jti`` unique. The issuer must be configured for a clinic
(``screening cds configure``); its keys are read from the configured JWKS URL only, never
from a ``jku`` the token names. Times are checked against the app's clock.
"""

import threading
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import jwt
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.account.service import normalize_email
from app.audit import service as audit_service
from app.db.models import ActorType, CdsClient, Role, UserAccount
from app.errors import NotFound, Unauthorized, ValidationFailed

ALGORITHMS = ("ES384", "RS384", "ES256", "RS256", "ES512", "RS512", "PS256", "PS384", "PS512")
"""Asymmetric algorithms only (the spec recommends ES384 and RS384); never HS* or none."""
LEEWAY_SECONDS = 60
MAX_LIFETIME_SECONDS = 300 + LEEWAY_SECONDS


@dataclass(frozen=True, slots=True)
class Caller:
    """A verified CDS client: its configuration row, clinic and issuer."""

    client_id: uuid.UUID
    clinic_id: uuid.UUID
    issuer: str

    @property
    def actor(self) -> audit_service.Actor:
        """The audit actor: the system acting for this CDS client."""
        return audit_service.Actor(ActorType.system, f"cds:{self.client_id}")


class JwksCache:
    """One PyJWKClient per JWKS URL (keys cached, refetched on an unknown ``kid``); seen jtis."""

    def __init__(self, timeout: float = 5.0) -> None:
        self._clients: dict[str, jwt.PyJWKClient] = {}
        self._lock = threading.Lock()
        self._timeout = timeout
        self._seen: dict[tuple[str, str], float] = {}  # (iss, jti) → exp

    def is_replay(self, issuer: str, jti: str, expires: float, now: float) -> bool:
        """Whether this (issuer, jti) was already used (in this process) before it expired."""
        with self._lock:
            if len(self._seen) > 10_000:
                self._seen = {key: exp for key, exp in self._seen.items() if exp > now}
            if (issuer, jti) in self._seen:
                return True
            self._seen[(issuer, jti)] = expires
            return False

    def signing_key(self, url: str, token: str) -> Any:
        """The key that signed ``token``, from the JWKS at ``url``."""
        with self._lock:
            client = self._clients.get(url)
            if client is None:
                client = jwt.PyJWKClient(url, cache_keys=True, lifespan=300, timeout=self._timeout)
                self._clients[url] = client
        return client.get_signing_key_from_jwt(token).key


def _denied(reason: str) -> Unauthorized:
    error = Unauthorized(f"The CDS client's JWT is not valid: {reason}.")
    return error


def authenticate(
    session: Session,
    *,
    authorization: str | None,
    audiences: tuple[str, ...],
    now: datetime,
    jwks: JwksCache,
) -> Caller:
    """Verify the bearer JWT of a CDS call; Unauthorized for any problem.

    Args:
        session: to read the issuer's configuration.
        authorization: the ``Authorization`` header.
        audiences: the endpoint URLs ``aud`` may name.
        now: the app's clock.
        jwks: the JWKS cache of the app.
    """
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _denied("no bearer token")
    token = token.strip()
    try:
        header = jwt.get_unverified_header(token)
        issuer = jwt.decode(token, options={"verify_signature": False}).get("iss")
    except jwt.PyJWTError:
        raise _denied("malformed token") from None
    if header.get("alg") not in ALGORITHMS:
        raise _denied("the algorithm is not an allowed asymmetric one")
    client = session.scalars(select(CdsClient).where(CdsClient.issuer == issuer)).one_or_none()
    if client is None or not isinstance(issuer, str):
        raise _denied("unknown issuer")
    try:
        key = jwks.signing_key(client.jwks_url, token)
        claims = jwt.decode(
            token,
            key,
            algorithms=[header["alg"]],
            audience=list(audiences),
            issuer=client.issuer,
            options={"require": ["iss", "aud", "exp", "iat", "jti"], "verify_exp": False,
                     "verify_iat": False, "verify_nbf": False},
        )  # fmt: skip
    except (jwt.PyJWTError, OSError):
        raise _denied("bad signature, audience or claims, or the keys could not be read") from None
    _check_times(claims, now)
    if jwks.is_replay(client.issuer, str(claims["jti"]), claims["exp"], now.timestamp()):
        raise _denied("this jti was already used")  # the spec's replay protection
    return Caller(client.id, client.clinic_id, client.issuer)


def _check_times(claims: dict[str, Any], now: datetime) -> None:
    """``exp`` in the future, ``iat`` not ahead, lifetime at most five minutes (with leeway)."""
    stamp = now.timestamp()
    expires, issued = claims.get("exp"), claims.get("iat")
    if not isinstance(expires, int | float) or not isinstance(issued, int | float):
        raise _denied("exp and iat must be numbers")
    if expires <= stamp - LEEWAY_SECONDS:
        raise _denied("expired")
    if issued > stamp + LEEWAY_SECONDS or expires - issued > MAX_LIFETIME_SECONDS:
        raise _denied("issued in the future or valid for more than five minutes")


def configure(
    session: Session,
    *,
    clinic_id: uuid.UUID,
    issuer: str,
    jwks_url: str,
    actor: audit_service.Actor,
    now: datetime,
) -> CdsClient:
    """Create or update the CDS client of ``issuer``; audited as ``cds_client.configured``."""
    client = session.scalars(select(CdsClient).where(CdsClient.issuer == issuer)).one_or_none()
    if client is None:
        client = CdsClient(
            clinic_id=clinic_id, issuer=issuer, jwks_url=jwks_url, created_at=now, updated_at=now
        )
        session.add(client)
    else:
        client.clinic_id, client.jwks_url, client.updated_at = clinic_id, jwks_url, now
    session.flush()
    audit_service.append(
        session,
        action="cds_client.configured",
        actor=actor,
        clinic_id=clinic_id,
        target_type="cds_client",
        target_id=client.id,
        detail={"issuer": issuer, "jwks_url": jwks_url},
    )
    return client


def link_practitioner(
    session: Session,
    *,
    issuer: str,
    ehr_user: str,
    email: str,
    actor: audit_service.Actor,
    now: datetime,
) -> CdsClient:
    """Map the EHR's user reference (``context.userId``) to a physician of the same clinic.

    Feedback that overrides a card is then also recorded as that physician's review.
    Raises NotFound (no such issuer) and ValidationFailed (no such physician in the clinic).
    """
    client = session.scalars(select(CdsClient).where(CdsClient.issuer == issuer)).one_or_none()
    if client is None:
        raise NotFound("No CDS client with this issuer.")
    user = session.scalars(
        select(UserAccount).where(UserAccount.email == normalize_email(email))
    ).one_or_none()
    if (
        user is None
        or user.clinic_id != client.clinic_id
        or user.role is not Role.physician
        or user.disabled_at is not None
    ):
        raise ValidationFailed("No active physician with this email in the issuer's clinic.")
    client.practitioners = {**(client.practitioners or {}), ehr_user: str(user.id)}
    client.updated_at = now
    session.flush()
    audit_service.append(
        session,
        action="cds_client.practitioner_linked",
        actor=actor,
        clinic_id=client.clinic_id,
        target_type="cds_client",
        target_id=client.id,
        detail={"ehr_user": ehr_user, "user_id": str(user.id)},
    )
    return client
