"""`screening rules publish|history|rollback|impact` on a clinic's stored screenings (issue 13)."""

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from app.db import migrate
from app.db.engine import make_engine, make_sessionmaker
from app.db.models import AuditEvent, Clinic
from app.db.policy_models import ImpactReport
from app.db.unit import session_scope
from app.engine import load_ruleset
from tests.cli.conftest import Invoke
from tests.factories import (
    AUDIT_KEY,
    CANDIDATE_ANSWERS,
    DATA_KEY,
    NOW,
    make_key,
    make_screening,
)
from tests.rulepack.packs import DEFAULT, stricter_pack

ENV = {"SCREENING_DATA_KEY": DATA_KEY, "SCREENING_AUDIT_KEY": AUDIT_KEY,
       "SCREENING_RULES_DIR": str(DEFAULT)}  # fmt: skip
SYSTOLICS = (120, 148, 150, 155, 159, 160)


@pytest.fixture
def seeded(tmp_path: Path) -> dict[str, Any]:
    """A migrated database with one clinic and a screening per systolic reading."""
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    migrate.upgrade(migrate.make_config(database_url=url))
    engine = make_engine(url)
    ruleset = load_ruleset(DEFAULT)
    with session_scope(make_sessionmaker(engine)) as session:
        key = make_key(session, clinic_name="North")
        ids = {
            systolic: make_screening(
                session, ruleset=ruleset, clinic_id=key.clinic_id,
                answers=CANDIDATE_ANSWERS | {"systolic_bp": systolic},
                created_at=NOW - timedelta(days=10 - number),
            )["id"]
            for number, systolic in enumerate(SYSTOLICS)
        }  # fmt: skip
    engine.dispose()
    return {"url": url, "ids": ids, "clinic_id": key.clinic_id, "default": ruleset.sha256}


def _rows(url: str, query: Any) -> list[Any]:
    engine = make_engine(url)
    with make_sessionmaker(engine)() as session:
        rows = list(session.scalars(query))
    engine.dispose()
    return rows


def test_impact_reports_the_150_to_159_readings_and_is_audited(
    invoke: Invoke, seeded: dict[str, Any], tmp_path: Path
) -> None:
    candidate = stricter_pack(tmp_path)
    page = tmp_path / "impact.html"
    result = invoke("rules", "impact", "--clinic", "North", "--candidate", str(candidate),
                    "--json", "--html", str(page), "--actor", "dr.lee", env=ENV)  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    expected = {seeded["ids"][systolic] for systolic in (150, 155, 159)}
    assert {change["id"] for change in report["changed_screenings"]} == expected
    assert (report["screenings"], report["changed"], report["rejected"]) == (6, 3, 0)
    assert "MRN" not in result.stdout
    assert "MRN" not in page.read_text()
    assert seeded["ids"][150] in page.read_text()
    (event,) = _rows(seeded["url"], select(AuditEvent).where(
        AuditEvent.action == "rule_pack.impact_analyzed"))  # fmt: skip
    assert event.actor_id == "dr.lee"
    assert event.detail is not None
    assert (event.detail["changed"], event.detail["screenings"]) == (3, 6)
    assert event.detail["candidate_sha256"] == load_ruleset(candidate).sha256
    (stored,) = _rows(seeded["url"], select(ImpactReport))
    assert stored.report["changed"] == 3


def test_impact_respects_the_date_range(
    invoke: Invoke, seeded: dict[str, Any], tmp_path: Path
) -> None:
    candidate = stricter_pack(tmp_path)
    since = (NOW - timedelta(days=7)).date().isoformat()  # from the 150 reading on
    until = (NOW - timedelta(days=6)).date().isoformat()  # to the 155 reading
    result = invoke("rules", "impact", "--clinic", "North", "--candidate", str(candidate),
                    "--since", since, "--until", until, "--json", env=ENV)  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["screenings"], report["changed"]) == (2, 2)


def test_publish_asks_then_history_and_rollback(
    invoke: Invoke, seeded: dict[str, Any], tmp_path: Path
) -> None:
    candidate = stricter_pack(tmp_path)
    declined = invoke("rules", "publish", str(candidate), "--clinic", "North", env=ENV,
                      stdin="n\n")  # fmt: skip
    assert declined.exit_code == 1
    assert "uncontrolled_blood_pressure: systolic_bp at_least 160 → 150" in declined.stdout
    assert "3 would change decision" in declined.stdout
    assert "nothing published" in declined.stderr
    published = invoke("rules", "publish", str(candidate), "--clinic", "North", "--yes",
                       "--actor", "dr.lee", env=ENV)  # fmt: skip
    assert published.exit_code == 0, published.output
    new = load_ruleset(candidate).sha256
    (clinic,) = _rows(seeded["url"], select(Clinic))
    assert clinic.rule_pack_sha256 == new
    back = invoke("rules", "rollback", "--clinic", "North", "--to", seeded["default"], env=ENV)
    assert back.exit_code == 0, back.output
    history = invoke("rules", "history", "--clinic", "North", "--json", env=ENV)
    body = json.loads(history.stdout)
    assert body["active"] == seeded["default"]
    assert [(row["kind"], row["sha256"], row["from_sha256"]) for row in body["history"]] == [
        ("adopted", seeded["default"], None),
        ("published", new, seeded["default"]),
        ("rolled_back", seeded["default"], new),
    ]
    assert body["history"][1]["actor"] == "cli:dr.lee"
    text = invoke("rules", "history", "--clinic", "North", env=ENV)
    assert text.stdout.splitlines()[-1].endswith("(active)")


def test_publish_refuses_a_pack_whose_tests_fail(
    invoke: Invoke, seeded: dict[str, Any], tmp_path: Path
) -> None:
    candidate = stricter_pack(tmp_path)
    rule = candidate / "rules" / "uncontrolled_blood_pressure.yaml"
    rule.write_text(rule.read_text().replace("systolic_bp: 149, diastolic_bp: 99",
                                             "systolic_bp: 151, diastolic_bp: 99"))  # fmt: skip
    result = invoke("rules", "publish", str(candidate), "--clinic", "North", "--yes", env=ENV)
    assert result.exit_code == 1
    assert "not publishable" in result.stderr
    (clinic,) = _rows(seeded["url"], select(Clinic))
    assert clinic.rule_pack_sha256 is None


def test_rollback_to_a_pack_the_clinic_never_had_fails(
    invoke: Invoke, seeded: dict[str, Any]
) -> None:
    result = invoke("rules", "rollback", "--clinic", "North", "--to", "a" * 64, env=ENV)
    assert result.exit_code == 1
    assert "never had" in result.stderr
    unknown = invoke("rules", "history", "--clinic", "Nowhere", env=ENV)
    assert unknown.exit_code == 1
