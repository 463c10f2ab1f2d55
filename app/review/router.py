"""The review API: a physician signs off a screening (If-Match guarded) and lists its reviews."""

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header, Response

from app.account.auth import Reviewer
from app.audit.denials import marker as audited
from app.context import ClockDep, KeyRingDep, RequestIdDep, SessionDep
from app.responses import model_response, problem_doc, problem_example
from app.review import service as review_service
from app.review.schemas import ReviewCreate, ReviewList, ReviewRead

router = APIRouter(prefix="/v1", tags=["reviews"])


def _problem(status: int, slug: str, description: str, detail: str) -> dict[str, Any]:
    return problem_doc(description, problem_example(status, slug, detail))


ERRORS: dict[int | str, dict[str, Any]] = {
    401: _problem(
        401,
        "unauthorized",
        "No session or personal token.",
        "Sign in, or send a personal token as a Bearer token.",
    ),
    403: _problem(
        403,
        "forbidden",
        "A clinic intake key, a non-physician, or a bad X-CSRF-Token.",
        "Only a physician can do this: use a personal token or sign in.",
    ),
    404: _problem(404, "not-found", "Not found for this clinic.", "No screening with this id."),
}
WRITE_ERRORS: dict[int | str, dict[str, Any]] = ERRORS | {
    412: _problem(
        412,
        "precondition-failed",
        "Someone signed since your ETag; the response carries the current ETag.",
        "This screening was already signed by Dr Rivera at 2026-06-15T15:02:11.034000Z; "
        "reload it and review again.",
    ),
    422: _problem(
        422,
        "validation-failed",
        "A bad body, or clearing a fired exclude without override_reason and note.",
        "The sign-off is not complete; nothing was saved.",
    ),
    428: _problem(
        428,
        "precondition-required",
        "If-Match is missing.",
        "Send If-Match with the ETag of the screening you reviewed.",
    ),
}


@router.post(
    "/screenings/{screening_id}/reviews",
    status_code=201,
    response_model=ReviewRead,
    summary="Sign off a screening",
    responses=WRITE_ERRORS,
    openapi_extra=audited("review.recorded", "screening", path_param="screening_id"),
)
def create_review(
    screening_id: uuid.UUID,
    body: ReviewCreate,
    reviewer: Reviewer,
    session: SessionDep,
    keyring: KeyRingDep,
    clock: ClockDep,
    request_id: RequestIdDep,
    if_match: Annotated[
        str | None, Header(description="The screening's ETag (GET /v1/screenings/{id}).")
    ] = None,
) -> Response:
    """Record a physician's review; requires If-Match with the ETag you reviewed (428, 412)."""
    review = review_service.ReviewInput(
        review_service.Disposition(body.disposition), body.note, body.override_reason
    )
    recorded = review_service.record(
        session,
        keyring=keyring,
        reviewer=reviewer,
        screening_id=screening_id,
        review=review,
        if_match=if_match,
        now=clock.now(),
        request_id=request_id,
    )
    headers = {"ETag": recorded.etag, "Location": f"/v1/screenings/{screening_id}/reviews"}
    return model_response(ReviewRead, recorded.review.to_dict(), 201, headers)


@router.get(
    "/screenings/{screening_id}/reviews",
    response_model=ReviewList,
    summary="List a screening's reviews",
    responses=ERRORS,
    openapi_extra=audited("review.listed", "screening", path_param="screening_id"),
)
def list_reviews(
    screening_id: uuid.UUID,
    reviewer: Reviewer,
    session: SessionDep,
    keyring: KeyRingDep,
    request_id: RequestIdDep,
) -> Response:
    """Every review of the screening, newest first (audited); the ETag header is the screening's."""
    views = review_service.read_history(
        session,
        keyring=keyring,
        reader=reviewer,
        screening_id=screening_id,
        request_id=request_id,
    )
    etag = review_service.etag(screening_id, views[0].id if views else None)
    items = {"items": [view.to_dict() for view in views]}
    return model_response(ReviewList, items, headers={"ETag": etag})
