"""GET /healthz (process alive), GET /readyz (database and rule pack), GET /metrics."""

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.context import SessionDep, context_of
from app.health import service as health_service

router = APIRouter(tags=["operations"])


@router.get(
    "/healthz",
    summary="Liveness",
    responses={200: {"content": {"application/json": {"example": {"status": "ok"}}}}},
)
def get_health() -> dict[str, str]:
    """The process is alive (no dependency is checked)."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness",
    responses={
        200: {"content": {"application/json": {"example": {"status": "ready"}}}},
        503: {
            "content": {
                "application/json": {
                    "example": {
                        "status": "unavailable",
                        "reason": "database unreachable or not migrated",
                    }
                }
            }
        },
    },
)
def get_readiness(request: Request, session: SessionDep, response: Response) -> dict[str, str]:
    """Ready when the database is at the expected schema revision and the rule pack is loaded."""
    problem = health_service.database_problem(
        session, expected_revisions=context_of(request).schema_heads
    )
    if problem is None and context_of(request).ruleset is None:
        problem = "rule pack not loaded"
    if problem is not None:
        response.status_code = 503
        return {"status": "unavailable", "reason": problem}
    return {"status": "ready"}


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={
        200: {
            "content": {CONTENT_TYPE_LATEST: {"example": "screening_http_requests_total{...} 1.0"}}
        }
    },
)
def get_metrics(request: Request) -> Response:
    """Request counts and latency by route template, screenings by decision."""
    return Response(
        generate_latest(context_of(request).metrics.registry), media_type=CONTENT_TYPE_LATEST
    )
