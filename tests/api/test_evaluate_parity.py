"""`screening evaluate` and `POST /v1/evaluate` agree under both packs (issue 12)."""

import functools
import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from app.cli import app as cli
from app.engine import Ruleset
from app.main import create_app, load_checked_ruleset
from app.settings import get_settings
from tests.conftest import make_settings
from tests.factories import CANDIDATE_ANSWERS, V1_CANDIDATE_ANSWERS, FixedClock, auth, make_key

RULES_ROOT = Path(__file__).resolve().parents[2] / "rules"
PACKS = ["ketamine-infusion-v1", "ketamine-infusion"]
# POLICY-V2.md section 4, with the v1 part clean, and a few v1 sets; under v1 the v2 answers
# are unknown items, so each set is sent to a pack only if that pack knows every item in it.
ANSWER_SETS: dict[str, dict[str, Any]] = {
    "v1 clean": V1_CANDIDATE_ANSWERS,
    "v1 partial": {"sex_at_birth": "female", "hypertension": "unsure", "systolic_bp": 150},
    "v1 recent concussion": V1_CANDIDATE_ANSWERS
    | {"concussion": "yes", "concussion_date": "2026-05-20"},
    "v2 clean": CANDIDATE_ANSWERS,
    "allergy": CANDIDATE_ANSWERS
    | {"ketamine_before": "yes", "ketamine_reaction": "no", "ketamine_allergy": "yes"},
    "allergy, exposure unsure": CANDIDATE_ANSWERS
    | {"ketamine_before": "unsure", "ketamine_reaction": "no", "ketamine_allergy": "yes"},
    "history unsure": CANDIDATE_ANSWERS
    | {"heart_brain_history": ["unsure"], "heart_brain_recent": ["none"]},
    "recent heart attack": CANDIDATE_ANSWERS
    | {"heart_brain_history": ["heart_attack"], "heart_brain_recent": ["heart_attack", "unsure"]},
    "glaucoma and unsure": CANDIDATE_ANSWERS | {"other_medical_conditions": ["glaucoma", "unsure"]},
    "psychosis unsure": CANDIDATE_ANSWERS | {"psychosis_or_mania": "unsure"},
}


@functools.cache
def pack(name: str) -> Ruleset:
    return load_checked_ruleset(RULES_ROOT / name)


def cli_result(name: str, answers: dict[str, Any], as_of: str, tmp_path: Path) -> Any:
    file = tmp_path / "answers.json"
    file.write_text(json.dumps(answers), encoding="utf-8")
    env = {"SCREENING_RULES_DIR": str(RULES_ROOT / name)}
    get_settings.cache_clear()
    result = CliRunner().invoke(cli, ["evaluate", "--as-of", as_of, str(file)], env=env)
    get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize("name", PACKS)
def test_cli_and_api_agree_under_both_packs(
    name: str,
    database_url: str,
    session_factory: sessionmaker[Session],
    session: Session,
    tmp_path: Path,
) -> None:
    ruleset = pack(name)
    clock = FixedClock()
    settings = make_settings(database_url, rules_path=RULES_ROOT / name)
    api = create_app(settings, sessionmaker=session_factory, clock=clock, ruleset=ruleset)
    key = make_key(session)
    compared = 0
    with TestClient(api) as client:
        for label, answers in ANSWER_SETS.items():
            if not set(answers) <= set(ruleset.items):
                continue
            body = {"questionnaire": ruleset.questionnaire.id, "answers": answers}
            response = client.post("/v1/evaluate", json=body, headers=auth(key))
            assert response.status_code == 200, (label, response.text)
            from_api = response.json()
            assert from_api["ruleset"]["sha256"] == ruleset.sha256
            assert cli_result(name, answers, from_api["as_of"], tmp_path) == from_api, label
            compared += 1
    assert compared == (3 if name == PACKS[0] else len(ANSWER_SETS))
