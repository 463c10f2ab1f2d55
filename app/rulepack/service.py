"""Store a rule pack version on first load; fetch one by content hash; rebuild stored packs."""

import json
import threading
from collections import OrderedDict
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.audit import canonical
from app.audit import service as audit_service
from app.db.models import RulePack
from app.db.unit import savepoint
from app.engine import Ruleset, ruleset_from_document
from app.errors import NotFound


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


def get_rule_pack(session: Session, *, sha256: str) -> dict[str, Any]:
    """Return a stored rule pack by content hash; NotFound if no decision used it."""
    pack = session.get(RulePack, sha256.lower())
    if pack is None:
        raise NotFound("No rule pack with this sha256.")
    return {
        "sha256": pack.sha256,
        "id": pack.pack_id,
        "version": pack.version,
        "loaded_at": canonical.format_datetime(pack.loaded_at),
        "content": json.loads(pack.content),
    }


class StoredRulePackError(RuntimeError):
    """A stored rule pack does not rebuild to its own sha256 (altered in the database)."""


class RulesetCache:
    """Stored rule packs rebuilt with ``ruleset_from_document``, kept by sha256 (LRU).

    Packs are content-addressed and never updated, so an entry never goes stale; the cache
    only bounds memory. One instance per process: ``stored_ruleset``.
    """

    def __init__(self, max_entries: int = 16) -> None:
        self._max = max_entries
        self._entries: OrderedDict[str, Ruleset] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, session: Session, *, sha256: str) -> Ruleset:
        """Return the rule pack stored under ``sha256``, rebuilding it on first use.

        Raises:
            NotFound: If no pack is stored under ``sha256``.
            StoredRulePackError: If the stored content no longer hashes to ``sha256``.
        """
        with self._lock:
            found = self._entries.get(sha256)
            if found is not None:
                self._entries.move_to_end(sha256)
                return found
        pack = session.get(RulePack, sha256)
        if pack is None:
            raise NotFound("No rule pack with this sha256.")
        ruleset = ruleset_from_document(json.loads(pack.content))
        if ruleset.sha256 != sha256:
            raise StoredRulePackError(f"rule pack {sha256} rebuilds to {ruleset.sha256}")
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
        StoredRulePackError: If the stored content no longer hashes to ``sha256``.
    """
    return _STORED.get(session, sha256=sha256)
