"""GET /v1/audit/events: a clinic reads its own audit trail (scope ``audit:read``)."""

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from app.apikey.auth import AuditReader, actor_of
from app.audit import service as audit_service
from app.audit.denials import marker as audited
from app.auditlog import service as auditlog_service
from app.auditlog.schemas import AuditEventPage
from app.context import RequestIdDep, SessionDep
from app.responses import AUTH_ERRORS, NOT_FOUND, model_response, problem_doc, problem_example

router = APIRouter(prefix="/v1", tags=["audit"])

INVALID_QUERY: dict[int | str, dict[str, Any]] = {
    422: problem_doc(
        "A malformed target, limit or cursor.",
        problem_example(
            422,
            "validation-failed",
            "The request is not valid; see errors.",
            errors=[{"code": "string_pattern_mismatch", "parameter": "target", "message": "..."}],
        ),
    )
}


@router.get(
    "/audit/events",
    response_model=AuditEventPage,
    summary="List this clinic's audit events, oldest first",
    responses=AUTH_ERRORS | NOT_FOUND | INVALID_QUERY,
    openapi_extra=audited("audit.listed", query_param="target"),
)
def list_audit_events(
    client: AuditReader,
    session: SessionDep,
    request_id: RequestIdDep,
    target: Annotated[
        str | None,
        Query(
            pattern=audit_service.TARGET_PATTERN,
            description="`<type>:<id>`, e.g. `screening:<uuid>`; another clinic's is 404.",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=auditlog_service.MAX_PAGE_SIZE)] = 100,
    cursor: Annotated[
        str | None, Query(pattern=r"^[0-9]{1,18}$", description="next_cursor of the last page.")
    ] = None,
) -> Response:
    """The clinic's own events (this read is itself audited as ``audit.listed``)."""
    page = auditlog_service.read_events(
        session,
        clinic_id=client.clinic_id,
        actor=actor_of(client),
        target=target,
        limit=limit,
        cursor=None if cursor is None else int(cursor),
        request_id=request_id,
    )
    return model_response(AuditEventPage, page)
