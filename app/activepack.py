"""The clinic's active rule pack for a request: ``active_ruleset``, ``ActiveRulesetDep``.

Kept apart from ``app/deps.py`` (issue 13): the hot endpoints call ``active_ruleset`` with the
client they authenticated; ``clinic_ruleset`` reads in the request's own session, uncached.
"""

import uuid
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from app.db.session import session_scope
from app.deps import ClinicClient
from app.engine import Ruleset
from app.rulepack import policy as rulepack_policy


def clinic_ruleset(request: Request, session: Session, clinic_id: uuid.UUID) -> Ruleset:
    """The clinic's active pack read in the request's own session (no cache: for pinning)."""
    state = request.app.state
    return rulepack_policy.resolve(
        session, clinic_id=clinic_id, rulesets=state.rulesets, default=state.ruleset
    )


def _load_active_ruleset(request: Request, clinic_id: uuid.UUID) -> Ruleset:
    with session_scope(request.app.state.sessionmaker) as session:
        ruleset = clinic_ruleset(request, session, clinic_id)
    request.app.state.active_packs.put(clinic_id, ruleset)
    return ruleset


async def active_ruleset(request: Request, clinic_id: uuid.UUID) -> Ruleset:
    """The clinic's active pack: per-process cache, else a short transaction of its own.

    A cache hit costs no I/O, so ``POST /v1/evaluate`` stays on the event loop; the entry
    is refreshed after ``ActivePackCache``'s TTL (README, "Design decisions").
    """
    packs: rulepack_policy.ActivePackCache = request.app.state.active_packs
    found = packs.get(clinic_id)
    if found is None:
        found = await run_in_threadpool(_load_active_ruleset, request, clinic_id)
    return found


async def get_active_ruleset(request: Request, client: ClinicClient) -> Ruleset:
    """The active rule pack of the caller's clinic."""
    return await active_ruleset(request, client.clinic_id)


ActiveRulesetDep = Annotated[Ruleset, Depends(get_active_ruleset)]
