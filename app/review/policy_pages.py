"""The clinic's policy pages for admins: pack history, a diff with the active pack, reports.

Contracts: never commits; reads only. Only a clinic admin may see them (Forbidden
otherwise), and only their own clinic's packs and reports (NotFound otherwise). Reports
hold counts and screening ids, never PHI. Views are plain dicts for the templates.
"""

import uuid
from typing import Any

from sqlalchemy.orm import Session

from app.account.service import Principal
from app.db.models import Role
from app.engine import Ruleset
from app.engine.diff import diff_rulesets
from app.errors import Forbidden, NotFound
from app.rulepack import policy, replay
from app.rulepack.impact import OUTCOMES
from app.rulepack.service import RulesetCache

LABELS = {
    "candidate": "Candidate",
    "needs_review": "Needs review",
    "not_candidate": "Not a candidate",
}
KINDS = {
    "adopted": "Started on the server's pack",
    "migrated": "In use when per-clinic packs arrived",
    "published": "Published",
    "rolled_back": "Rolled back",
}


def require_admin(principal: Principal) -> None:
    """Forbidden unless the user is an admin of their clinic."""
    if principal.role is not Role.admin:
        raise Forbidden("Only a clinic admin can see the clinic's policy.")


def history_page(session: Session, *, principal: Principal) -> dict[str, Any]:
    """The clinic's pack history (newest first) and its latest impact reports."""
    require_admin(principal)
    active = policy.active_sha256(session, clinic_id=principal.clinic_id)
    entries = policy.history(session, clinic_id=principal.clinic_id)
    rows = [
        {"when": e.activated_at, "kind": KINDS.get(e.kind, e.kind), "version": e.version,
         "sha256": e.to_sha256, "actor": e.actor, "is_active": e.to_sha256 == active}
        for e in reversed(entries)
    ]  # fmt: skip
    reports = [
        {"id": str(r.id), "when": r.created_at, "candidate": r.candidate_sha256,
         "period": r.report.get("period", ""), "screenings": r.report.get("screenings", 0),
         "changed": r.report.get("changed", 0)}
        for r in replay.latest_reports(session, clinic_id=principal.clinic_id)
    ]  # fmt: skip
    earlier = sorted({e.to_sha256 for e in entries} - {active})
    return {"active": active, "rows": rows, "reports": reports, "earlier": earlier}


def diff_page(
    session: Session, *, principal: Principal, sha256: str, rulesets: RulesetCache, default: Ruleset
) -> dict[str, Any]:
    """What changed from an earlier pack of the clinic to its active pack."""
    require_admin(principal)
    sha256 = sha256.lower()
    known = {e.to_sha256 for e in policy.history(session, clinic_id=principal.clinic_id)}
    if sha256 not in known:
        raise NotFound("This clinic never had a rule pack with this sha256.")
    active = policy.resolve(
        session, clinic_id=principal.clinic_id, rulesets=rulesets, default=default
    )
    earlier = policy.pack(session, sha256=sha256, rulesets=rulesets, default=default)
    changes = diff_rulesets(earlier, active).lines()
    return {"earlier": earlier.ref.to_dict(), "active": active.ref.to_dict(), "lines": changes}


def report_page(session: Session, *, principal: Principal, report_id: uuid.UUID) -> dict[str, Any]:
    """One stored impact report: matrix, rules, answers not accepted, changed screenings."""
    require_admin(principal)
    row = replay.get_report(session, clinic_id=principal.clinic_id, report_id=report_id)
    if row is None:
        raise NotFound("No such impact report.")
    report = row.report
    matrix = {(cell["before"], cell["after"]): cell["count"] for cell in report["matrix"]}
    return {
        "report": report,
        "when": row.created_at,
        "outcomes": [(o, LABELS[o]) for o in OUTCOMES],
        "matrix": matrix,
        "rules": sorted(report["rules"].items()),
        "rejected": sorted(report["rejected_reasons"].items()),
        "changed": report["changed_screenings"],
    }
