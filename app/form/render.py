"""Rendering of the patient form's pages: the templates and the headers every page sends."""

from pathlib import Path
from typing import Any

from fastapi import Request, Response
from fastapi.templating import Jinja2Templates

from app.form import views
from app.form.text import Text

TEMPLATES = Jinja2Templates(directory=Path(__file__).with_name("templates"))


def security_headers(origins: list[str], default_ancestors: str) -> dict[str, str]:
    """Headers of every form page: who may frame it, no referrer, no caching, no sniffing."""
    ancestors = " ".join(origins) or default_ancestors
    policy = (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        f"form-action 'self'; base-uri 'none'; frame-ancestors {ancestors}"
    )
    return {
        "Content-Security-Policy": policy,
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
    }


def render(
    request: Request,
    template: str,
    text: Text,
    clinic: Any,
    status: int,
    ancestors: str,
    **context: Any,
) -> Response:
    """Render a form page with the clinic's name, phone and framing policy (or none)."""
    origins = list(clinic.form_origins) if clinic is not None else []
    name = clinic.name if clinic is not None else text("clinic.unknown")
    phone = clinic.phone if clinic is not None else None
    base_context: dict[str, Any] = {
        "t": text,
        "clinic_name": name,
        "clinic_known": clinic is not None,
        "clinic_phone": phone,
        "clinic_tel": views.tel_href(phone) if phone else "",
        "parent_origins": " ".join(origins),
        "switch_href": f"{request.url.path}?lang=",
        "summary": [],
        "title": "",
    }
    return TEMPLATES.TemplateResponse(
        request,
        template,
        base_context | context,
        status_code=status,
        headers=security_headers(origins, ancestors),
    )
