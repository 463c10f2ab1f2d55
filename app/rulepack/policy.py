"""A clinic's active rule pack: resolve it, publish, roll back, and list its history.

Contracts: functions take the caller's session and never commit. Every change of a clinic's
active pack adds a ``rule_pack_activation`` row and an audit event (actor, clinic, from hash,
to hash) in the same transaction. A clinic without an active pack (created since the
server started) is evaluated with the server's default pack and pinned at the next start
(``adopt_unpinned``), so a later upgrade that ships another default never changes its policy.
"""

import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.audit import service as audit_service
from app.db.models import Clinic, Invitation, RulePack, Screening
from app.db.policy_models import ActivationKind, RulePackActivation
from app.engine import Ruleset
from app.errors import Conflict, NotFound
from app.rulepack import service as rulepack_service
from app.rulepack import translation
from app.rulepack.service import RulesetCache

ACTIONS = {
    ActivationKind.adopted: "rule_pack.adopted",
    ActivationKind.published: "rule_pack.published",
    ActivationKind.rolled_back: "rule_pack.rolled_back",
}


@dataclass(frozen=True, slots=True)
class Activation:
    """One entry of a clinic's pack history (what became active, when, by whom)."""

    kind: str
    from_sha256: str | None
    to_sha256: str
    version: str
    actor: str
    activated_at: datetime


class ActivePackCache:
    """Clinic id → its active pack, per process, each entry fresh for ``ttl_seconds``.

    The hot path (``POST /v1/evaluate``) must not read the database on every request. A pack
    published or rolled back by another process is therefore picked up within ``ttl_seconds``
    (README, "Design decisions"); a pinned invitation and a stored screening never depend on it.
    """

    def __init__(self, ttl_seconds: float = 5.0, max_entries: int = 10_000) -> None:
        self._ttl = ttl_seconds
        self._max = max_entries
        self._entries: dict[uuid.UUID, tuple[float, Ruleset]] = {}
        self._lock = threading.Lock()

    def get(self, clinic_id: uuid.UUID) -> Ruleset | None:
        """The clinic's cached active pack if still fresh."""
        entry = self._entries.get(clinic_id)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, clinic_id: uuid.UUID, ruleset: Ruleset) -> None:
        """Remember the clinic's active pack for ``ttl_seconds``."""
        with self._lock:
            if len(self._entries) >= self._max:
                self._entries.clear()
            self._entries[clinic_id] = (time.monotonic() + self._ttl, ruleset)

    def clear(self) -> None:
        """Forget every entry (after a publish in this process, and in tests)."""
        with self._lock:
            self._entries.clear()


def find_clinic(session: Session, *, name: str) -> Clinic:
    """The clinic called ``name``; NotFound otherwise."""
    clinic = session.scalar(select(Clinic).where(Clinic.name == name))
    if clinic is None:
        raise NotFound(f"No clinic is called {name!r}.")
    return clinic


def active_sha256(session: Session, *, clinic_id: uuid.UUID) -> str | None:
    """The sha256 of the clinic's active pack; None before its first use."""
    return session.scalar(select(Clinic.rule_pack_sha256).where(Clinic.id == clinic_id))


def resolve(
    session: Session, *, clinic_id: uuid.UUID, rulesets: RulesetCache, default: Ruleset
) -> Ruleset:
    """The clinic's active pack, rebuilt from the database (its hash checked).

    A clinic not pinned yet (created since this server started) is on ``default``; the
    next start pins it (``adopt_unpinned``). Reads only: the hot path never writes.
    """
    sha256 = active_sha256(session, clinic_id=clinic_id)
    if sha256 is None:
        return default
    return pack(session, sha256=sha256, rulesets=rulesets, default=default)


def adopt_unpinned(session: Session, *, default: Ruleset, now: datetime) -> int:
    """Pin every clinic without an active pack to the pack it has been using; return how many.

    Run at startup: a clinic's newest screening's pack, else ``default`` (the server's
    default pack). Each pin is a ``rule_pack.adopted`` event. Several processes may start
    at once: a conditional UPDATE lets exactly one of them pin a clinic.
    """
    unpinned = session.scalars(select(Clinic.id).where(Clinic.rule_pack_sha256.is_(None))).all()
    return sum(
        adopt(session, clinic_id=clinic_id, default=default, now=now) for clinic_id in unpinned
    )


def adopt(session: Session, *, clinic_id: uuid.UUID, default: Ruleset, now: datetime) -> bool:
    """Pin one clinic without an active pack (see ``adopt_unpinned``); False if it had one."""
    newest = session.scalar(
        select(Screening.rule_pack_sha256)
        .where(Screening.clinic_id == clinic_id)
        .order_by(Screening.created_at.desc(), Screening.id.desc())
        .limit(1)
    )
    if newest is None:
        rulepack_service.store_rule_pack(session, ruleset=default, now=now)
    sha256 = newest or default.sha256
    claimed = session.execute(
        update(Clinic)
        .where(Clinic.id == clinic_id, Clinic.rule_pack_sha256.is_(None))
        .values(rule_pack_sha256=sha256)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        return False
    version = session.scalar(select(RulePack.version).where(RulePack.sha256 == sha256))
    _record(
        session,
        clinic_id=clinic_id,
        kind=ActivationKind.adopted,
        before=None,
        after=(sha256, version or ""),
        actor=audit_service.Actor.system(),
        now=now,
    )
    return True


def pack(session: Session, *, sha256: str, rulesets: RulesetCache, default: Ruleset) -> Ruleset:
    """A stored pack by hash, its stored content checked (``default`` itself if it is that one).

    Raises:
        RulePackIntegrityError: If the stored content was altered (``default`` included).
    """
    return rulesets.get(session, sha256=sha256, known=default)


def invitation_ruleset(
    session: Session,
    *,
    invitation: Invitation,
    rulesets: RulesetCache,
    default: Ruleset,
) -> Ruleset:
    """The pack an invitation was created under; its clinic's active pack if it has none."""
    if invitation.rule_pack_sha256 is not None:
        return pack(session, sha256=invitation.rule_pack_sha256, rulesets=rulesets, default=default)
    return resolve(session, clinic_id=invitation.clinic_id, rulesets=rulesets, default=default)


def publish(
    session: Session,
    *,
    clinic_id: uuid.UUID,
    ruleset: Ruleset,
    catalogues: translation.Catalogues,
    actor: audit_service.Actor,
    now: datetime,
) -> Activation:
    """Store a checked pack with its translations and make it the clinic's active pack.

    Raises Conflict if it already is the active pack.
    """
    rulepack_service.store_rule_pack(session, ruleset=ruleset, now=now)
    translation.store(session, sha256=ruleset.sha256, catalogues=catalogues, now=now)
    return _activate(
        session,
        clinic_id=clinic_id,
        ruleset=ruleset,
        kind=ActivationKind.published,
        actor=actor,
        now=now,
    )


def roll_back(
    session: Session,
    *,
    clinic_id: uuid.UUID,
    sha256: str,
    rulesets: RulesetCache,
    actor: audit_service.Actor,
    now: datetime,
) -> Activation:
    """Re-activate a pack the clinic had active before.

    Raises NotFound if the clinic never had that pack, Conflict if it is the active one.
    """
    sha256 = sha256.lower()
    had = session.scalar(
        select(RulePackActivation.id)
        .where(RulePackActivation.clinic_id == clinic_id, RulePackActivation.to_sha256 == sha256)
        .limit(1)
    )
    if had is None:
        raise NotFound("This clinic never had a rule pack with this sha256 active.")
    ruleset = rulesets.get(session, sha256=sha256)
    return _activate(
        session,
        clinic_id=clinic_id,
        ruleset=ruleset,
        kind=ActivationKind.rolled_back,
        actor=actor,
        now=now,
    )


def _activate(
    session: Session,
    *,
    clinic_id: uuid.UUID,
    ruleset: Ruleset,
    kind: ActivationKind,
    actor: audit_service.Actor,
    now: datetime,
) -> Activation:
    clinic = session.get(Clinic, clinic_id, with_for_update=True)
    if clinic is None:
        raise NotFound("No such clinic.")
    before = clinic.rule_pack_sha256
    if before == ruleset.sha256:
        raise Conflict("This rule pack is already the clinic's active pack.")
    clinic.rule_pack_sha256 = ruleset.sha256
    session.flush()
    after = (ruleset.sha256, ruleset.version)
    return _record(
        session, clinic_id=clinic_id, kind=kind, before=before, after=after, actor=actor, now=now
    )


def _record(
    session: Session,
    *,
    clinic_id: uuid.UUID,
    kind: ActivationKind,
    before: str | None,
    after: tuple[str, str],
    actor: audit_service.Actor,
    now: datetime,
) -> Activation:
    """Add the history row and the audit event of an activation; ``after``: (sha256, version)."""
    sha256, version = after
    session.add(
        RulePackActivation(
            clinic_id=clinic_id,
            kind=kind,
            from_sha256=before,
            to_sha256=sha256,
            actor_type=actor.type,
            actor_id=actor.id,
            activated_at=now,
        )
    )
    session.flush()
    audit_service.append(
        session,
        action=ACTIONS[kind],
        actor=actor,
        clinic_id=clinic_id,
        target_type="rule_pack",
        target_id=sha256,
        ruleset_sha256=sha256,
        detail={"from_sha256": before, "to_sha256": sha256, "version": version},
    )
    return Activation(kind.value, before, sha256, version, _actor(actor), now)


def _actor(actor: audit_service.Actor) -> str:
    return f"{actor.type.value}:{actor.id}" if actor.id else actor.type.value


def history(session: Session, *, clinic_id: uuid.UUID) -> list[Activation]:
    """Every activation of the clinic's packs, oldest first."""
    rows = session.execute(
        select(RulePackActivation, RulePack.version)
        .join(RulePack, RulePack.sha256 == RulePackActivation.to_sha256)
        .where(RulePackActivation.clinic_id == clinic_id)
        .order_by(RulePackActivation.id)
    ).all()
    return [
        Activation(
            row.kind.value,
            row.from_sha256,
            row.to_sha256,
            version,
            f"{row.actor_type.value}:{row.actor_id}" if row.actor_id else row.actor_type.value,
            row.activated_at,
        )
        for row, version in rows
    ]
