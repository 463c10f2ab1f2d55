"""Store a rule pack version on first load; the one checked loader of stored packs.

Every reader of a stored pack (``GET /v1/rulesets/{sha256}``, explain, the review pages, the
form through ``policy.pack``, the CLI) goes through ``verified_content``: the stored content
is re-hashed on every load and a mismatch is a ``RulePackIntegrityError`` (a handled 500 with
its own problem type, audited by ``app.rulepack.integrity``), never the altered text.
"""

import hashlib
import json
import threading
from collections import OrderedDict
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.audit import canonical
from app.audit import service as audit_service
from app.db.models import RulePack
from app.db.unit import savepoint
from app.engine import Ruleset, ruleset_from_document
from app.errors import AppError, NotFound


class RulePackIntegrityError(AppError):
    """A stored rule pack's content no longer hashes to its sha256: altered in the database.

    A 500 with its own problem type: the service cannot show what the rules were, and says
    so rather than show text nobody can vouch for. ``stored_sha256`` is the hash of what is
    stored now (for the audit event); the altered content itself is never carried.
    """

    status = 500
    slug = "rule-pack-integrity"

    def __init__(self, sha256: str, stored_sha256: str) -> None:
        super().__init__(
            f"The stored rule pack {sha256} does not match its content hash (it was altered "
            "in the database); it is not shown. The failure has been recorded in the audit "
            "trail: ask the operator to restore the pack from a backup."
        )
        self.sha256 = sha256
        self.stored_sha256 = stored_sha256


_VERIFIED = "rule_packs_verified"  # Session.info key: sha256 → content checked in this session

# The name the CLI used before the loader's error became an AppError.
StoredRulePackError = RulePackIntegrityError


def store_rule_pack(session: Session, *, ruleset: Ruleset, now: datetime) -> bool:
    """Store the pack's canonical content the first time it is loaded; True if it was new."""
    if session.get(RulePack, ruleset.sha256) is not None:
        return False
    try:
        # Several worker processes (or replicas) start at once: one stores the pack and its
        # audit event; the others wait on the primary key, fail here and store nothing.
        with savepoint(session):
            session.add(
                RulePack(
                    sha256=ruleset.sha256,
                    pack_id=ruleset.id,
                    version=ruleset.version,
                    content=ruleset.canonical_json.decode(),
                    loaded_at=now,
                )
            )
            session.flush()
    except IntegrityError:
        return False
    audit_service.append(
        session,
        action="rule_pack.loaded",
        actor=audit_service.Actor.system(),
        clinic_id=None,
        target_type="rule_pack",
        target_id=ruleset.sha256,
        ruleset_sha256=ruleset.sha256,
        detail={"pack_id": ruleset.id, "version": ruleset.version},
    )
    return True


def verified_content(session: Session, *, sha256: str) -> str:
    """The stored canonical content of the pack ``sha256``, re-hashed and checked.

    Read as a column, never through the identity map, so the bytes checked are the stored ones;
    checked once per session (a request, a command): a review queue page of 50 screenings
    made with one pack reads and hashes it once, not 50 times.

    Raises:
        NotFound: If no pack is stored under ``sha256``.
        RulePackIntegrityError: If the stored content does not hash to ``sha256``.
    """
    verified: dict[str, str] = session.info.setdefault(_VERIFIED, {})
    found = verified.get(sha256)
    if found is not None:
        return found
    content = session.scalar(select(RulePack.content).where(RulePack.sha256 == sha256))
    if content is None:
        raise NotFound("No rule pack with this sha256.")
    actual = hashlib.sha256(content.encode("utf-8")).hexdigest()
    if actual != sha256:
        raise RulePackIntegrityError(sha256, actual)
    verified[sha256] = content
    return content


def get_rule_pack(session: Session, *, sha256: str) -> dict[str, Any]:
    """Return a stored rule pack by content hash, its content checked against the hash.

    Raises:
        NotFound: If no decision used a pack with this hash.
        RulePackIntegrityError: If the stored content was altered.
    """
    sha256 = sha256.lower()
    content = verified_content(session, sha256=sha256)
    pack_id, version, loaded_at = session.execute(
        select(RulePack.pack_id, RulePack.version, RulePack.loaded_at).where(
            RulePack.sha256 == sha256
        )
    ).one()
    return {
        "sha256": sha256,
        "id": pack_id,
        "version": version,
        "loaded_at": canonical.format_datetime(loaded_at),
        "content": json.loads(content),
    }


class RulesetCache:
    """Stored rule packs rebuilt with ``ruleset_from_document``, kept by sha256 (LRU).

    Packs are content-addressed and never updated (a trigger refuses it), so an entry never
    goes stale; the cache saves the rebuild, not the check: every ``get`` re-hashes the stored
    content (``verified_content``), so a pack altered after it was cached is refused too.
    One instance per process: ``stored_ruleset``.
    """

    def __init__(self, max_entries: int = 16) -> None:
        self._max = max_entries
        self._entries: OrderedDict[str, Ruleset] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, session: Session, *, sha256: str, known: Ruleset | None = None) -> Ruleset:
        """Return the rule pack stored under ``sha256``, rebuilding it on first use.

        ``known``: a pack already in memory (the server's own) returned when it is this one,
        after the stored copy is checked all the same.

        Raises:
            NotFound: If no pack is stored under ``sha256``.
            RulePackIntegrityError: If the stored content no longer hashes to ``sha256``.
        """
        content = verified_content(session, sha256=sha256)
        if known is not None and known.sha256 == sha256:
            return known
        with self._lock:
            found = self._entries.get(sha256)
            if found is not None:
                self._entries.move_to_end(sha256)
                return found
        ruleset = ruleset_from_document(json.loads(content))
        if ruleset.sha256 != sha256:  # the engine rebuilt it differently: refuse it too
            raise RulePackIntegrityError(sha256, ruleset.sha256)
        with self._lock:
            self._entries[sha256] = ruleset
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
        return ruleset


_STORED = RulesetCache()


def stored_rulesets() -> RulesetCache:
    """The process's one cache of stored packs (``stored_ruleset``'s; an app component)."""
    return _STORED


def stored_ruleset(session: Session, *, sha256: str) -> Ruleset:
    """The rule pack stored under ``sha256``, rebuilt once per process and checked.

    The one cache of stored packs (explain, the review queue and detail use it).

    Raises:
        NotFound: If no pack is stored under ``sha256``.
        RulePackIntegrityError: If the stored content no longer hashes to ``sha256``.
    """
    return _STORED.get(session, sha256=sha256)
