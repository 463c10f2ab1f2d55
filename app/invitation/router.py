"""POST /v1/invitations: intake software creates a patient's link to the form."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from app.apikey.auth import actor_of, require_scope
from app.context import ClockDep, KeyRingDep, RequestIdDep, SessionDep, public_base_url
from app.errors import PROBLEM_JSON
from app.invitation import service as invitation_service
from app.invitation.schemas import InvitationCreate, InvitationRead
from app.responses import RULE_PACK_INTEGRITY
from app.rulepack.active import clinic_ruleset

router = APIRouter(prefix="/v1", tags=["invitations"])
InvitationWriter = Annotated[
    invitation_service.Client, Depends(require_scope(invitation_service.SCOPE))
]


def _problem(status: int, slug: str, detail: str) -> dict[str, Any]:
    example = {"type": f"urn:problem-type:screening:{slug}", "status": status, "detail": detail}
    return {"description": detail, "content": {PROBLEM_JSON: {"example": example}}}


ERRORS: dict[int | str, dict[str, Any]] = {
    401: _problem(401, "unauthorized", "A valid API key is required."),
    403: _problem(403, "forbidden", "This API key lacks the 'invitations:write' scope."),
    409: _problem(
        409,
        "conflict",
        "The clinic has no phone number yet: set it with `screening form configure --phone`.",
    ),
    422: _problem(
        422, "validation-failed", "expires_at must be in the future, at most 30 days away."
    ),
}


@router.post(
    "/invitations",
    status_code=201,
    response_model=InvitationRead,
    summary="Create a patient invitation",
    responses=ERRORS | RULE_PACK_INTEGRITY,
)
def create_invitation(
    request: Request,
    response: Response,
    body: InvitationCreate,
    client: InvitationWriter,
    session: SessionDep,
    keyring: KeyRingDep,
    clock: ClockDep,
    request_id: RequestIdDep,
) -> InvitationRead:
    """Create a single-use link to the patient form for one subject (default expiry 7 days)."""
    created = invitation_service.create(
        session,
        keyring=keyring,
        clinic_id=client.clinic_id,
        subject=body.subject.model_dump(),
        language=body.language,
        expires_at=body.expires_at,
        now=clock.now(),
        actor=actor_of(client),
        request_id=request_id,
        rule_pack_sha256=clinic_ruleset(request, session, client.clinic_id).sha256,
    )
    # The body holds the token: no cache may keep it.
    response.headers["Cache-Control"] = "no-store"
    url = public_base_url(request) + created.path
    return InvitationRead(url=url, expires_at=created.expires_at)
