"""The clinic's active rule pack for a request: ``active_ruleset``, ``ActiveRulesetDep``.

The hot endpoints call ``active_ruleset`` with the client they authenticated; routes that
hold a session call ``active_ruleset_in``; ``clinic_ruleset`` reads in the request's own
session, uncached (for pinning an invitation).
Both per-process caches are components of the ``AppContext``: ``ActivePackCache`` (clinic →
active pack, 5 s) and the stored-pack ``RulesetCache`` (the one of ``stored_ruleset``).
"""

import uuid
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from app.apikey.auth import ClinicClient
from app.context import AppContext, context_of
from app.engine import Ruleset
from app.rulepack import policy as rulepack_policy
from app.rulepack import service as rulepack_service
from app.rulepack.policy import ActivePackCache
from app.rulepack.service import RulesetCache


def stored_rulesets(context: AppContext) -> RulesetCache:
    """The app's cache of stored packs (the process's one ``stored_ruleset`` cache)."""
    return context.component(RulesetCache, rulepack_service.stored_rulesets)


def active_packs(context: AppContext) -> ActivePackCache:
    """The app's clinic → active pack cache."""
    return context.component(ActivePackCache, ActivePackCache)


def clinic_ruleset(request: Request, session: Session, clinic_id: uuid.UUID) -> Ruleset:
    """The clinic's active pack read in the request's own session (no cache: for pinning)."""
    context = context_of(request)
    return rulepack_policy.resolve(
        session,
        clinic_id=clinic_id,
        rulesets=stored_rulesets(context),
        default=context.loaded_ruleset(),
    )


def active_ruleset_in(request: Request, session: Session, clinic_id: uuid.UUID) -> Ruleset:
    """The clinic's active pack from the per-process cache, else read in ``session`` and cached.

    For synchronous routes that already hold a session (FHIR, CDS Hooks, review pages); the
    hot endpoints use ``active_ruleset``, which opens a session only on a miss.
    """
    packs = active_packs(context_of(request))
    found = packs.get(clinic_id)
    if found is None:
        found = clinic_ruleset(request, session, clinic_id)
        packs.put(clinic_id, found)
    return found


def _load_active_ruleset(request: Request, clinic_id: uuid.UUID) -> Ruleset:
    with context_of(request).unit.session() as session:
        return active_ruleset_in(request, session, clinic_id)


async def active_ruleset(request: Request, clinic_id: uuid.UUID) -> Ruleset:
    """The clinic's active pack: per-process cache, else a short transaction of its own.

    A cache hit costs no I/O, so ``POST /v1/evaluate`` stays on the event loop; the entry
    is refreshed after ``ActivePackCache``'s TTL (README, "Design decisions").
    """
    found = active_packs(context_of(request)).get(clinic_id)
    if found is None:
        found = await run_in_threadpool(_load_active_ruleset, request, clinic_id)
    return found


async def get_active_ruleset(request: Request, client: ClinicClient) -> Ruleset:
    """The active rule pack of the caller's clinic."""
    return await active_ruleset(request, client.clinic_id)


async def get_stored_rulesets(request: Request) -> RulesetCache:
    """The app's cache of stored packs."""
    return stored_rulesets(context_of(request))


ActiveRulesetDep = Annotated[Ruleset, Depends(get_active_ruleset)]
StoredRulesetsDep = Annotated[RulesetCache, Depends(get_stored_rulesets)]
