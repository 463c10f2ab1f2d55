"""Production defaults (issue 15 section 4): docs, public base URL, cookies, HSTS, caching.

The app is built with ``SCREENING_ENVIRONMENT=prod`` settings and driven over real HTTP
semantics (FastAPI's test client); ``tests/ui/test_docs_browser.py`` renders the docs in a
real browser.
"""

import base64
import hashlib
import re
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy.orm import Session, sessionmaker

from app.db.models import Clinic
from app.engine import Ruleset
from app.home import docs
from app.main import create_app
from app.settings import Settings
from tests.conftest import make_settings
from tests.factories import AUDIT_KEY, DATA_KEY, NOW, FixedClock, auth, make_key, make_screening
from tests.review.seed import make_user, sign_in

PUBLIC = "https://screening.clinic.example"
HSTS = "max-age=31536000; includeSubDomains"


def _app(
    database_url: str,
    session_factory: sessionmaker[Session],
    ruleset: Ruleset,
    **overrides: Any,
) -> FastAPI:
    values = {"environment": "prod", "public_base_url": PUBLIC} | overrides
    settings = make_settings(database_url, **values)
    return create_app(settings, sessionmaker=session_factory, clock=FixedClock(), ruleset=ruleset)


@pytest.fixture
def prod(
    database_url: str, session_factory: sessionmaker[Session], ruleset: Ruleset
) -> Iterator[TestClient]:
    """A production app (docs off by default), reached as its proxy would: plain http."""
    app = _app(database_url, session_factory, ruleset)
    with TestClient(app, base_url="http://127.0.0.1:8000", follow_redirects=False) as client:
        yield client


@pytest.fixture
def prod_docs(
    database_url: str, session_factory: sessionmaker[Session], ruleset: Ruleset
) -> Iterator[TestClient]:
    """A production app whose operator turned the docs on (SCREENING_DOCS_ENABLED=true)."""
    app = _app(database_url, session_factory, ruleset, docs_enabled=True)
    with TestClient(app, base_url="https://screening.clinic.example") as client:
        yield client


# --- SCREENING_PUBLIC_BASE_URL ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("base", "message"),
    [
        (None, "production requires SCREENING_PUBLIC_BASE_URL to be set"),
        ("http://screening.clinic.example", "SCREENING_PUBLIC_BASE_URL to be an https:// URL"),
    ],
)
def test_production_settings_need_an_https_public_base_url(base: str | None, message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        Settings(
            _env_file=None, environment="prod", data_keys=DATA_KEY, audit_key=AUDIT_KEY,
            public_base_url=base,
        )  # fmt: skip


def test_invitation_links_use_the_public_url_never_the_host_header(
    prod: TestClient, session: Session
) -> None:
    key = make_key(session)
    session.get_one(Clinic, key.clinic_id).phone = "+1 555 0100"
    session.flush()
    headers = auth(key) | {"Host": "attacker.example", "X-Forwarded-Host": "attacker.example"}
    response = prod.post("/v1/invitations", json={"subject": {"reference": "R"}}, headers=headers)
    assert response.status_code == 201
    assert response.json()["url"].startswith(f"{PUBLIC}/form/{key.clinic_id}/")


def test_without_a_public_url_dev_and_test_fall_back_to_the_request(
    client: TestClient, session: Session
) -> None:
    key = make_key(session)
    session.get_one(Clinic, key.clinic_id).phone = "+1 555 0100"
    session.flush()
    response = client.post(
        "/v1/invitations", json={"subject": {"reference": "R"}}, headers=auth(key)
    )
    assert response.json()["url"].startswith(f"http://testserver/form/{key.clinic_id}/")


# --- Docs --------------------------------------------------------------------------------------


def test_production_has_no_docs_or_openapi_by_default(prod: TestClient) -> None:
    for path in ("/docs", "/redoc", "/openapi.json", "/static/docs/swagger-ui-bundle.js"):
        assert prod.get(path).status_code == 404, path
    assert 'href="/docs"' not in prod.get("/").text  # the front page does not link to a 404


def test_docs_load_only_self_hosted_assets_whose_integrity_hashes_match(
    prod_docs: TestClient,
) -> None:
    assert prod_docs.get("/openapi.json").json()["info"]["title"] == "Candidacy screening API"
    for page in ("/docs", "/redoc"):
        response = prod_docs.get(page)
        assert response.status_code == 200
        policy = response.headers["content-security-policy"]
        assert "script-src 'self';" in policy
        assert "frame-ancestors 'none'" in policy
        urls = re.findall(r'(?:src|href)="(?!data:)([^"]+)"', response.text)
        assert urls, page
        assert [url for url in urls if not url.startswith("/static/docs/")] == []
        tags = re.findall(r"<(?:script|link)\b[^>]*(?:src|href)=\"(?!data:)[^>]*>", response.text)
        for tag in tags:
            url = re.search(r'(?:src|href)="([^"]+)"', tag)
            integrity = re.search(r'integrity="sha384-([^"]+)"', tag)
            assert url is not None, tag
            assert integrity is not None, tag
            served = prod_docs.get(url.group(1))
            assert served.status_code == 200
            digest = base64.b64encode(hashlib.sha384(served.content).digest()).decode()
            assert integrity.group(1) == digest, url.group(1)


def test_every_pinned_asset_matches_the_vendored_file() -> None:
    for name, pinned in docs.ASSETS.items():
        content = (docs.ASSET_DIR / name).read_bytes()
        assert base64.b64encode(hashlib.sha384(content).digest()).decode() == pinned, name


def test_docs_stay_on_in_dev_and_test(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    assert client.get("/openapi.json").status_code == 200


# --- Cookies and HSTS ------------------------------------------------------------------------


def _session_cookie(response: Any) -> str:
    cookies = [v for k, v in response.headers.multi_items() if k == "set-cookie"]
    assert len(cookies) == 1, cookies
    return str(cookies[0])


def test_production_session_cookie_is_host_prefixed_secure_and_http_only_behind_a_proxy(
    prod: TestClient, session: Session
) -> None:
    # The proxy talks plain http to 127.0.0.1: the cookie is still __Host-, Secure, HttpOnly.
    make_user(session, clinic="Cookie clinic", email="cookie@example.org")
    cookie = _session_cookie(sign_in(prod, "cookie@example.org"))
    assert cookie.startswith("__Host-session=")
    attributes = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"secure", "httponly", "path=/", "samesite=lax"} <= attributes
    assert not [part for part in attributes if part.startswith("domain")]


def test_dev_over_plain_http_on_loopback_uses_a_plain_session_cookie(
    app: FastAPI, session: Session
) -> None:
    make_user(session, clinic="Dev clinic", email="dev@example.org")
    with TestClient(app, base_url="http://127.0.0.1:8000", follow_redirects=False) as dev:
        cookie = _session_cookie(sign_in(dev, "dev@example.org"))
    assert cookie.startswith("session=")
    assert "httponly" in cookie.lower()
    assert "secure" not in cookie.lower()


def test_production_sends_hsts_on_every_kind_of_response(prod: TestClient) -> None:
    responses = {
        "health": prod.get("/healthz"),
        "api 401": prod.get("/v1/screenings"),
        "page redirect": prod.get("/review"),
        "form 404 page": prod.get(f"/form/{uuid.uuid4()}/not-a-token"),
        "unknown path": prod.get("/nothing-here"),
        "413": prod.post("/v1/evaluate", content=b"x" * 70_000),
    }
    missing = {name: r.status_code for name, r in responses.items()
               if r.headers.get("strict-transport-security") != HSTS}  # fmt: skip
    assert missing == {}


def test_no_hsts_outside_production(client: TestClient) -> None:
    assert "strict-transport-security" not in client.get("/healthz").headers


# --- Cache-Control: no-store -----------------------------------------------------------------


# Pages and endpoints outside the OpenAPI document (include_in_schema=False).
UNDOCUMENTED = [
    "/", "/sign-in", "/review", "/review/screenings/{id}", "/review/policy",
    "/account/password", "/form/{clinic}/{token}", "/form/{clinic}/{token}/check",
    "/.well-known/security.txt", "/docs", "/redoc", "/openapi.json", "/no-such-path",
]  # fmt: skip


def test_every_get_route_answers_no_store_whoever_asks(app: FastAPI, client: TestClient) -> None:
    documented = [path for path, item in app.openapi()["paths"].items() if "get" in item]
    assert len(documented) >= 15
    cached = {}
    for template in documented + UNDOCUMENTED:
        path = re.sub(r"\{[^}]+\}", lambda _: str(uuid.uuid4()), template)
        response = client.get(path, follow_redirects=False)
        if "no-store" not in response.headers.get("cache-control", ""):
            cached[template] = response.status_code
    assert cached == {}


def test_phi_responses_are_no_store(client: TestClient, session: Session, ruleset: Ruleset) -> None:
    key = make_key(session)
    screening = make_screening(session, ruleset=ruleset, clinic_id=key.clinic_id)
    body = {"questionnaire": "ketamine-infusion-candidacy", "answers": {"systolic_bp": 150}}
    created_body = body | {"subject": {"reference": "MRN-NS"}}
    responses = {
        "read": client.get(f"/v1/screenings/{screening['id']}", headers=auth(key)),
        "list": client.get("/v1/screenings", headers=auth(key)),
        "evaluate": client.post("/v1/evaluate", json=body, headers=auth(key)),
        "create": client.post("/v1/screenings", json=created_body, headers=auth(key)),
        "invalid": client.post("/v1/evaluate", json={"answers": 1}, headers=auth(key)),
    }
    assert {name: r.status_code for name, r in responses.items()} == {
        "read": 200, "list": 200, "evaluate": 200, "create": 201, "invalid": 422,
    }  # fmt: skip
    controls = {name: r.headers.get("cache-control") for name, r in responses.items()}
    assert controls == dict.fromkeys(responses, "no-store")


def test_static_assets_stay_cacheable(client: TestClient) -> None:
    response = client.get("/static/review/review.css")
    assert response.status_code == 200
    assert "no-store" not in response.headers.get("cache-control", "")


# --- security.txt ----------------------------------------------------------------------------


def test_security_txt_names_the_contact_and_expires_within_a_year(
    database_url: str, session_factory: sessionmaker[Session], ruleset: Ruleset
) -> None:
    contact = "mailto:security@clinic.example"
    app = _app(database_url, session_factory, ruleset, security_contact=contact)
    with TestClient(app) as client:
        response = client.get("/.well-known/security.txt")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    fields = dict(line.split(": ", 1) for line in response.text.splitlines())
    assert fields["Contact"] == contact
    assert fields["Preferred-Languages"] == "en, es"
    assert fields["Canonical"] == f"{PUBLIC}/.well-known/security.txt"
    expires = datetime.strptime(fields["Expires"], "%Y-%m-%dT%H:%M:%S%z")
    assert NOW < expires <= NOW + timedelta(days=365)


def test_security_txt_is_absent_without_a_contact(prod: TestClient) -> None:
    assert prod.get("/.well-known/security.txt").status_code == 404
