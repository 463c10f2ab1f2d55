"""Admin pages of the clinic's policy: /review/policy (history, reports), a diff, a report."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from app.account.auth import WebUserDep
from app.context import RulesetDep, SessionDep
from app.html import render
from app.review import policy_pages as pages
from app.rulepack.active import StoredRulesetsDep

router = APIRouter(prefix="/review/policy", include_in_schema=False)


@router.get("")
def policy_history(request: Request, web_user: WebUserDep, session: SessionDep) -> Response:
    """The clinic's rule pack history and its latest impact reports (admins)."""
    view = pages.history_page(session, principal=web_user.principal)
    return render(request, "policy_history.html", view | {"web_user": web_user})


@router.get("/diff")
def policy_diff(
    request: Request,
    web_user: WebUserDep,
    session: SessionDep,
    rulesets: StoredRulesetsDep,
    ruleset: RulesetDep,
    sha256: Annotated[str, Query(pattern=r"^[0-9a-fA-F]{64}$")],
) -> Response:
    """What changed between an earlier pack of the clinic and its active pack (admins)."""
    view = pages.diff_page(
        session, principal=web_user.principal, sha256=sha256, rulesets=rulesets, default=ruleset
    )
    return render(request, "policy_diff.html", view | {"web_user": web_user})


@router.get("/reports/{report_id}")
def policy_report(
    request: Request, report_id: uuid.UUID, web_user: WebUserDep, session: SessionDep
) -> Response:
    """One stored impact report (admins): counts and screening ids, never answers."""
    view = pages.report_page(session, principal=web_user.principal, report_id=report_id)
    return render(request, "policy_report.html", view | {"web_user": web_user})
