"""GET /v1/questionnaires/{id} and GET /v1/rulesets/{sha256}."""

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.engine import Ruleset
from tests.factories import auth, make_key


def test_questionnaire_lists_groups_and_items(client: TestClient, session: Session) -> None:
    key = make_key(session)
    response = client.get("/v1/questionnaires/ketamine-infusion-candidacy", headers=auth(key))
    assert response.status_code == 200
    document = response.json()
    assert document["id"] == "ketamine-infusion-candidacy"
    items = {item["id"]: item for group in document["groups"] for item in group["items"]}
    assert items["systolic_bp"]["type"] == "integer"
    assert items["pregnant"]["enable_when"] is not None
    assert len(items) == 26  # policy v2: the 19 items of v1 and 7 more


def test_unknown_questionnaire_is_404(client: TestClient, session: Session) -> None:
    key = make_key(session)
    response = client.get("/v1/questionnaires/nope", headers=auth(key))
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def test_ruleset_returns_the_loaded_pack_content(
    client: TestClient, session: Session, ruleset: Ruleset
) -> None:
    key = make_key(session)
    response = client.get(f"/v1/rulesets/{ruleset.sha256}", headers=auth(key))
    assert response.status_code == 200
    body = response.json()
    assert (body["sha256"], body["id"], body["version"]) == (
        ruleset.sha256,
        ruleset.id,
        ruleset.version,
    )
    assert body["content"] == ruleset.document


def test_unknown_or_malformed_ruleset_hash(client: TestClient, session: Session) -> None:
    key = make_key(session)
    assert client.get(f"/v1/rulesets/{'a' * 64}", headers=auth(key)).status_code == 404
    assert client.get("/v1/rulesets/xyz", headers=auth(key)).status_code == 422


def test_health_ready_and_metrics(client: TestClient, session: Session) -> None:
    key = make_key(session)
    client.post(
        "/v1/evaluate",
        json={"questionnaire": "ketamine-infusion-candidacy", "answers": {}},
        headers=auth(key),
    )
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}
    metrics = client.get("/metrics").text
    assert 'route="/v1/evaluate",status="200"' in metrics
    assert "screening_http_request_duration_seconds_bucket" in metrics


def test_openapi_has_examples_for_bodies(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert schema["openapi"].startswith("3.1")
    for name in (
        "ScreeningCreate",
        "EvaluateCreate",
        "ScreeningRead",
        "EvaluationRead",
        "ScreeningPage",
        "QuestionnaireRead",
        "RulePackRead",
    ):
        assert schema["components"]["schemas"][name]["examples"], name
    assert client.get("/docs").status_code == 200
