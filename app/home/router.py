"""`GET /`: a small HTML page for a newcomer (the API, the review pages, the patient form)."""

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.html import render

router = APIRouter(include_in_schema=False)


@router.get("/")
def home(request: Request) -> Response:
    """What the service is, with links to the API docs, the review pages and the form."""
    return render(request, "home.html", {"web_user": None})
