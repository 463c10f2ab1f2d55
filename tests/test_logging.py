"""PHI-free JSON logs: one access line per request, rejections by code, generic 500s."""

import json
import logging
import os
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from app import logs
from tests.factories import CANDIDATE_ANSWERS, auth, make_key

CANARY = "CANARYlog7f3a"
QUESTIONNAIRE = "ketamine-infusion-candidacy"


def lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    """Every captured server record as the JSON object the server would write.

    The test client's own loggers (httpx) log full URLs; they are not the server's.
    """
    formatter = logs.JsonFormatter()
    server = [record for record in caplog.records if not record.name.startswith("httpx")]
    rendered = [formatter.format(record) for record in server]
    assert all("\n" not in line for line in rendered)
    return [json.loads(line) for line in rendered]


def access(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [line for line in lines(caplog) if line["logger"] == "app.access"]


@pytest.fixture
def logged(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.DEBUG)
    yield caplog
    assert all(CANARY not in json.dumps(line) for line in lines(caplog))
    assert all(
        CANARY not in record.getMessage() and CANARY not in str(record.__dict__)
        for record in caplog.records
        if not record.name.startswith("httpx")
    )


def test_access_line_has_route_template_status_latency_and_clinic(
    client: TestClient, session: Session, logged: pytest.LogCaptureFixture
) -> None:
    key = make_key(session)
    created = client.post(
        "/v1/screenings",
        json={
            "questionnaire": QUESTIONNAIRE,
            "subject": {"reference": f"MRN-{CANARY}"},
            "answers": CANDIDATE_ANSWERS,
        },
        headers=auth(key) | {"Idempotency-Key": f"idem-{CANARY}", "Cookie": f"s={CANARY}"},
    )
    assert created.status_code == 201
    read = client.get(f"/v1/screenings/{created.json()['id']}?note={CANARY}", headers=auth(key))
    assert read.status_code == 200
    post_line, get_line = access(logged)
    assert post_line | {"latency_ms": 0, "time": ""} == {
        "time": "",
        "level": "INFO",
        "logger": "app.access",
        "pid": os.getpid(),
        "message": "request",
        "request_id": created.headers["x-request-id"],
        "method": "POST",
        "route": "/v1/screenings",
        "status": 201,
        "latency_ms": 0,
        "clinic_id": str(key.clinic_id),
    }
    assert post_line["latency_ms"] > 0
    assert get_line["route"] == "/v1/screenings/{screening_id}"
    assert get_line["request_id"] == read.headers["x-request-id"]


def test_validation_errors_are_logged_by_code_and_item_only(
    client: TestClient, session: Session, logged: pytest.LogCaptureFixture
) -> None:
    key = make_key(session)
    answers = CANDIDATE_ANSWERS | {
        "sex_at_birth": "female",
        "systolic_bp": 9999,
        CANARY: "yes",
        "pregnant": CANARY,
    }
    response = client.post(
        "/v1/screenings",
        json={"questionnaire": QUESTIONNAIRE, "subject": {"reference": CANARY}, "answers": answers},
        headers=auth(key),
    )
    assert response.status_code == 422
    (rejection,) = [line for line in lines(logged) if line["message"] == "request rejected"]
    assert rejection["status"] == 422
    assert rejection["request_id"] == response.headers["x-request-id"]
    assert sorted(rejection["errors"], key=json.dumps) == sorted(
        [
            {"code": "out_of_range", "item": "systolic_bp"},
            {"code": "unknown_item", "pointer": "#/answers"},
            {"code": "bad_choice", "item": "pregnant"},
        ],
        key=json.dumps,
    )
    assert access(logged)[-1]["status"] == 422


def test_request_schema_errors_omit_unknown_field_names(
    client: TestClient, session: Session, logged: pytest.LogCaptureFixture
) -> None:
    key = make_key(session)
    response = client.post(
        "/v1/screenings",
        json={"questionnaire": QUESTIONNAIRE, "answers": {}, CANARY: 1},
        headers=auth(key),
    )
    assert response.status_code == 422
    (rejection,) = [line for line in lines(logged) if line["message"] == "request rejected"]
    codes = {error["code"]: error for error in rejection["errors"]}
    assert codes["extra_forbidden"] == {"code": "extra_forbidden", "pointer": "#"}
    assert codes["missing"] == {"code": "missing", "pointer": "#/subject"}


def test_rejected_credentials_and_query_strings_are_not_logged(
    client: TestClient, logged: pytest.LogCaptureFixture
) -> None:
    response = client.get(
        f"/v1/screenings?cursor={CANARY}", headers={"Authorization": f"Bearer sk_{CANARY}"}
    )
    assert response.status_code == 401
    assert access(logged)[-1] | {"latency_ms": 0, "time": "", "request_id": ""} == {
        "time": "",
        "level": "INFO",
        "logger": "app.access",
        "pid": os.getpid(),
        "message": "request",
        "request_id": "",
        "method": "GET",
        "route": "/v1/screenings",
        "status": 401,
        "latency_ms": 0,
        "clinic_id": None,
    }


def test_unhandled_error_is_generic_for_the_client_and_typed_in_the_log(
    app: FastAPI, logged: pytest.LogCaptureFixture
) -> None:
    def explode() -> None:
        patient = {"reference": CANARY}
        try:
            raise KeyError(f"no row for {patient}")
        except KeyError as inner:
            raise RuntimeError(f"lookup failed for {CANARY}") from inner

    app.add_api_route("/v1/explode/{ident}", explode)
    with TestClient(app) as client:
        response = client.get(f"/v1/explode/{CANARY}", headers={"X-Request-ID": "req-boom-1"})
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == {
        "type": "urn:problem-type:screening:internal-error",
        "title": "Internal Server Error",
        "status": 500,
        "detail": "An unexpected error occurred.",
        "request_id": "req-boom-1",
    }
    (error,) = [line for line in lines(logged) if line["logger"] == "app.errors"]
    assert error["level"] == "ERROR"
    assert (error["request_id"], error["route"]) == ("req-boom-1", "/v1/explode/{ident}")
    assert error["exc_chain"] == ["RuntimeError", "KeyError"]
    assert any("in explode" in frame for frame in error["exc_frames"])
    assert access(logged)[-1]["status"] == 500


def test_forged_request_ids_and_control_characters_cannot_forge_lines(
    client: TestClient, logged: pytest.LogCaptureFixture
) -> None:
    response = client.get("/readyz", headers={"X-Request-ID": "a\tb"})
    assert response.headers["x-request-id"] != "a\tb"
    record = logging.LogRecord("t", logging.INFO, "f", 1, 'x\n{"forged": 1}\x1b[2J', (), None)
    rendered = logs.JsonFormatter().format(record)
    assert "\n" not in rendered
    assert "\x1b" not in rendered
    assert json.loads(rendered)["message"] == 'x\n{"forged": 1}\x1b[2J'


def test_configure_installs_one_json_handler_and_silences_uvicorn_access() -> None:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level, logging.getLogger("uvicorn.access").disabled)
    try:
        logs.configure("INFO")
        logs.configure("WARNING")
        ours = [h for h in root.handlers if isinstance(h.formatter, logs.JsonFormatter)]
        assert len(ours) == 1
        assert root.level == logging.WARNING
        assert logging.getLogger("uvicorn.access").disabled
        assert logging.getLogger("sqlalchemy").level == logging.WARNING
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        logging.getLogger("uvicorn.access").disabled = saved[2]


def test_engine_never_echoes_sql_or_parameters(engine: Engine) -> None:
    assert engine.echo is False
    assert engine.hide_parameters is True


def test_uvicorn_colour_codes_stay_out_of_the_json_line() -> None:
    record = logging.LogRecord("uvicorn.error", logging.INFO, __file__, 1, "Started", (), None)
    record.color_message = "Started \x1b[36m%d\x1b[0m"
    line = json.loads(logs.JsonFormatter().format(record))
    assert line["message"] == "Started"
    assert "color_message" not in line


@pytest.mark.parametrize("name", ["psycopg", "psycopg.pool", "sqlalchemy.engine.Engine"])
def test_driver_warnings_keep_their_template_not_the_server_message(name: str) -> None:
    # e.g. psycopg's "error ignored terminating <pipeline>: duplicate key ... Key (x)=(...)"
    record = logging.getLogger(name).makeRecord(
        name,
        logging.WARNING,
        __file__,
        1,
        "error ignored terminating %r: %s",
        ("<pipeline>", f"duplicate key value: Key (reference)=(MRN-{CANARY})"),
        None,
    )
    line = json.loads(logs.JsonFormatter().format(record))
    assert line["message"] == "error ignored terminating %r: %s"
    assert CANARY not in json.dumps(line)


def test_other_loggers_keep_their_formatted_message() -> None:
    record = logging.getLogger("uvicorn.error").makeRecord(
        "uvicorn.error", logging.INFO, __file__, 1, "Started server process [%d]", (42,), None
    )
    assert (
        json.loads(logs.JsonFormatter().format(record))["message"] == "Started server process [42]"
    )
