"""Per-credential rate limits on /v1: a token bucket per API key (per user on the review API).

The limiter's clock is injected (``RateLimiter(now=...)``), so nothing here waits.
"""

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from app.account import tokens as account_tokens
from app.apikey.ratelimit import RateLimiter
from app.audit import service as audit_service
from app.context import app_context
from app.engine import Ruleset
from app.main import create_app
from app.settings import Settings
from tests.conftest import make_settings
from tests.factories import FixedClock, auth, make_key
from tests.openapi_check import ResponseCheck
from tests.review.seed import seed_queue


class ManualClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.seconds = 1000.0

    def __call__(self) -> float:
        return self.seconds


@pytest.fixture
def ticks() -> ManualClock:
    return ManualClock()


@pytest.fixture
def limited_client(
    database_url: str,
    session_factory: sessionmaker[Session],
    ruleset: Ruleset,
    clock: FixedClock,
    ticks: ManualClock,
) -> Iterator[TestClient]:
    """An app allowing 2 requests per second per credential, in bursts of 3."""
    settings = make_settings(database_url, rate_limit_per_second=2, rate_limit_burst=3)
    app = create_app(settings, sessionmaker=session_factory, clock=clock, ruleset=ruleset)
    limits = app_context(app).settings
    app_context(app).components[RateLimiter] = RateLimiter(
        limits.rate_limit_per_second, limits.rate_limit_burst, now=ticks
    )
    with TestClient(app) as client:
        client.event_hooks["response"].append(ResponseCheck(app))
        yield client


def test_a_key_over_its_burst_gets_429_with_the_ratelimit_headers(
    limited_client: TestClient, session: Session, ticks: ManualClock
) -> None:
    key = make_key(session)
    statuses = [
        limited_client.get("/v1/screenings", headers=auth(key)).status_code for _ in range(3)
    ]
    assert statuses == [200, 200, 200]
    refused = limited_client.get("/v1/screenings", headers=auth(key))
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"].endswith(":too-many-requests")
    assert refused.headers["retry-after"] == "1"
    assert refused.headers["ratelimit-policy"] == '"burst";q=3;w=2'
    assert refused.headers["ratelimit"] == '"burst";r=0;t=1'
    ticks.seconds += 0.5  # one token back at 2 per second
    assert limited_client.get("/v1/screenings", headers=auth(key)).status_code == 200
    assert limited_client.get("/v1/screenings", headers=auth(key)).status_code == 429


def test_one_keys_flood_leaves_another_key_alone(
    limited_client: TestClient, session: Session
) -> None:
    flooder, other = make_key(session), make_key(session)
    flood = [limited_client.get("/v1/screenings", headers=auth(flooder)) for _ in range(30)]
    assert sum(r.status_code == 429 for r in flood) == 27
    assert limited_client.get("/v1/screenings", headers=auth(other)).status_code == 200


def test_every_route_that_takes_a_key_is_limited(
    limited_client: TestClient, session: Session
) -> None:
    key = make_key(session)
    for _ in range(3):
        limited_client.get("/v1/screenings", headers=auth(key))
    body = {"questionnaire": "ketamine-infusion-candidacy", "answers": {}}
    hot = limited_client.post("/v1/evaluate", json=body, headers=auth(key))
    assert hot.status_code == 429
    assert limited_client.get("/v1/audit/events", headers=auth(key)).status_code == 429


def test_personal_tokens_on_the_review_api_are_limited(
    limited_client: TestClient, session: Session, ruleset: Ruleset, clock: FixedClock
) -> None:
    seeded = seed_queue(session, ruleset=ruleset, now=clock.now())
    token = account_tokens.create_token(
        session, email=seeded.physician, actor=audit_service.Actor.cli(), now=datetime.now(UTC)
    )
    path = f"/v1/screenings/{seeded.queue[0]}/reviews"
    statuses = [limited_client.get(path, headers=auth(token)).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    write = limited_client.post(
        path, json={"disposition": "cleared", "note": "x"}, headers=auth(token) | {"If-Match": "x"}
    )
    assert write.status_code == 429
    assert write.headers["retry-after"] == "1"


def test_unauthenticated_requests_do_not_spend_a_keys_tokens(
    limited_client: TestClient, session: Session
) -> None:
    key = make_key(session)
    for _ in range(10):
        assert limited_client.get("/v1/screenings", headers=auth("sk_wrong")).status_code == 401
    assert limited_client.get("/v1/screenings", headers=auth(key)).status_code == 200


def test_429_is_documented_on_every_authenticated_v1_route(app: FastAPI) -> None:
    document = app.openapi()
    limited = 0
    for path, operations in document["paths"].items():
        for operation in operations.values():
            if path.startswith("/v1/") and "401" in operation["responses"]:
                documented = operation["responses"]["429"]
                assert {"Retry-After", "RateLimit-Policy", "RateLimit"} <= set(
                    documented["headers"]
                )
                limited += 1
    assert limited >= 10


def test_the_defaults_suit_an_intake_system() -> None:
    settings = Settings(_env_file=None)
    assert (settings.rate_limit_per_second, settings.rate_limit_burst) == (50.0, 100)


def test_the_bucket_refills_to_its_burst_and_no_further() -> None:
    ticks = ManualClock()
    limiter = RateLimiter(10, 5, now=ticks)
    assert [limiter.take("k") for _ in range(5)] == [0.0] * 5
    assert limiter.take("k") == pytest.approx(0.1)
    ticks.seconds += 3600  # idle for an hour: back to 5, not 36,000
    assert [limiter.take("k") == 0.0 for _ in range(6)] == [True] * 5 + [False]


def test_the_buckets_stay_bounded() -> None:
    ticks = ManualClock()
    limiter = RateLimiter(10, 5, now=ticks, max_entries=100)
    for credential in range(1000):
        ticks.seconds += 1  # each older bucket has refilled by the time the table is full
        limiter.take(credential)
    assert len(limiter._buckets) <= 100
