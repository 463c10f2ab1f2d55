"""GET /v1/rulesets/{sha256}: the exact rule pack a stored decision was made with."""

from typing import Annotated

from fastapi import APIRouter, Path, Response

from app.apikey.auth import ClinicClient
from app.context import SessionDep
from app.responses import (
    AUTH_ERRORS,
    MALFORMED_PATH,
    NOT_FOUND,
    RULE_PACK_INTEGRITY,
    model_response,
)
from app.rulepack import service as rulepack_service
from app.rulepack.schemas import RulePackRead

router = APIRouter(prefix="/v1")


@router.get(
    "/rulesets/{sha256}",
    response_model=RulePackRead,
    summary="Get a rule pack by content hash",
    tags=["rulesets"],
    responses=AUTH_ERRORS | NOT_FOUND | MALFORMED_PATH | RULE_PACK_INTEGRITY,
)
def get_ruleset(
    sha256: Annotated[str, Path(pattern=r"^[0-9a-fA-F]{64}$")],
    _client: ClinicClient,
    session: SessionDep,
) -> Response:
    """The exact rule pack (canonical content) a stored decision names, checked against its hash."""
    return model_response(RulePackRead, rulepack_service.get_rule_pack(session, sha256=sha256))
