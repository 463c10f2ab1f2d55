"""Every DESIGN.md rejection is a 422 problem+json naming the item; nothing is stored."""

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.db.models import AuditEvent, Screening
from tests.factories import CANDIDATE_ANSWERS, auth, count, make_key

QUESTIONNAIRE = "ketamine-infusion-candidacy"
FEMALE = CANDIDATE_ANSWERS | {"sex_at_birth": "female", "pregnant": "no", "breastfeeding": "no"}

# (case, answers, item named in the error, error code)
REJECTIONS: list[tuple[str, dict[str, Any], str, str]] = [
    (
        "unknown item",
        CANDIDATE_ANSWERS | {"favourite_colour": "blue"},
        "favourite_colour",
        "unknown_item",
    ),
    ("integer as string", CANDIDATE_ANSWERS | {"systolic_bp": "150"}, "systolic_bp", "wrong_type"),
    ("integer as float", CANDIDATE_ANSWERS | {"systolic_bp": 150.5}, "systolic_bp", "wrong_type"),
    (
        "yes/no as boolean",
        CANDIDATE_ANSWERS | {"heart_failure": True},
        "heart_failure",
        "wrong_type",
    ),
    ("out of range", CANDIDATE_ANSWERS | {"systolic_bp": 301}, "systolic_bp", "out_of_range"),
    (
        "invalid calendar date",
        CANDIDATE_ANSWERS | {"date_of_birth": "1990-02-30"},
        "date_of_birth",
        "invalid_date",
    ),
    (
        "future date",
        CANDIDATE_ANSWERS | {"date_of_birth": "2030-01-01"},
        "date_of_birth",
        "future_date",
    ),
    (
        "choice not listed",
        CANDIDATE_ANSWERS | {"sex_at_birth": "other"},
        "sex_at_birth",
        "bad_choice",
    ),
    ("empty conditions", CANDIDATE_ANSWERS | {"conditions": []}, "conditions", "empty_selection"),
    ("unsure for yes/no", FEMALE | {"breastfeeding": "unsure"}, "breastfeeding", "bad_choice"),
    (
        "answer to a disabled item",
        CANDIDATE_ANSWERS | {"pregnant": "no"},
        "pregnant",
        "item_disabled",
    ),
    (
        "concussion before birth",
        CANDIDATE_ANSWERS | {"concussion": "yes", "concussion_date": "1980-01-01"},
        "concussion_date",
        "inconsistent_dates",
    ),
]


@pytest.mark.parametrize(
    ("answers", "item", "code"),
    [case[1:] for case in REJECTIONS],
    ids=[case[0] for case in REJECTIONS],
)
@pytest.mark.parametrize("path", ["/v1/screenings", "/v1/evaluate"])
def test_invalid_answer_is_422_naming_the_item_and_stores_nothing(
    client: TestClient, session: Session, path: str, answers: dict[str, Any], item: str, code: str
) -> None:
    key = make_key(session)
    rows, events = count(session, Screening), count(session, AuditEvent)
    body = {"questionnaire": QUESTIONNAIRE, "subject": {"reference": "MRN-1"}, "answers": answers}
    if path == "/v1/evaluate":
        del body["subject"]
    response = client.post(path, json=body, headers=auth(key))
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 422
    assert {"item": item, "code": code, "pointer": f"#/answers/{item}"}.items() <= next(
        error for error in problem["errors"] if error.get("item") == item
    ).items()
    # Nothing stored; a rejected submission is audited once (outcome invalid), an evaluation not.
    audited = 1 if path == "/v1/screenings" else 0
    assert (count(session, Screening), count(session, AuditEvent)) == (rows, events + audited)


def test_errors_never_echo_submitted_values(client: TestClient, session: Session) -> None:
    key = make_key(session)
    answers = CANDIDATE_ANSWERS | {"systolic_bp": "SECRET-VALUE-8812", "zz_SECRET-ITEM": 1}
    body = {
        "questionnaire": QUESTIONNAIRE,
        "subject": {"reference": "SECRET-REF"},
        "answers": answers,
        "extra_SECRET": "SECRET-EXTRA",
    }
    for payload in (body, {k: v for k, v in body.items() if k != "extra_SECRET"}):
        response = client.post("/v1/screenings", json=payload, headers=auth(key))
        assert response.status_code == 422
        assert "SECRET-VALUE" not in response.text
        assert "SECRET-REF" not in response.text
        assert "SECRET-EXTRA" not in response.text


@pytest.mark.parametrize(
    ("payload", "pointer"),
    [
        ({"questionnaire": QUESTIONNAIRE, "answers": {}}, "#/subject"),
        (
            {"questionnaire": QUESTIONNAIRE, "subject": {"reference": ""}, "answers": {}},
            "#/subject/reference",
        ),
        (
            {"questionnaire": QUESTIONNAIRE, "subject": {"reference": "x"}, "answers": []},
            "#/answers",
        ),
        (
            {"questionnaire": "other", "subject": {"reference": "x"}, "answers": {}},
            "#/questionnaire",
        ),
        (
            {"questionnaire": QUESTIONNAIRE, "subject": {"reference": "x"}, "answers": {}, "x": 1},
            "#/x",
        ),
    ],
)
def test_malformed_body_is_422_with_pointer(
    client: TestClient, session: Session, payload: dict[str, Any], pointer: str
) -> None:
    key = make_key(session)
    before = count(session, Screening)
    response = client.post("/v1/screenings", json=payload, headers=auth(key))
    assert response.status_code == 422
    assert pointer in [error.get("pointer") for error in response.json()["errors"]]
    assert count(session, Screening) == before


def test_invalid_json_is_422(client: TestClient, session: Session) -> None:
    key = make_key(session)
    response = client.post(
        "/v1/screenings",
        content=b'{"answers": {',
        headers=auth(key) | {"Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["code"] == "json_invalid"


def test_body_over_limit_is_413(client: TestClient, session: Session) -> None:
    key = make_key(session)
    big = {"questionnaire": QUESTIONNAIRE, "subject": {"reference": "x" * 70_000}, "answers": {}}
    response = client.post("/v1/screenings", json=big, headers=auth(key))
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"


def test_streamed_body_over_limit_is_413(client: TestClient, session: Session) -> None:
    key = make_key(session)

    def chunks() -> Any:
        yield b'{"questionnaire": "' + b"x" * 40_000
        yield b"y" * 40_000 + b'"}'

    response = client.post(
        "/v1/evaluate", content=chunks(), headers=auth(key) | {"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["status"] == 413


@pytest.mark.parametrize(
    ("method", "path", "status"), [("GET", "/v1/nothing", 404), ("DELETE", "/v1/screenings", 405)]
)
def test_routing_errors_are_problem_json(
    client: TestClient, method: str, path: str, status: int
) -> None:
    response = client.request(method, path)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == status
