"""Impact analysis core: replaying stored screenings under a candidate pack (issue 13)."""

import re
import shutil
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from app.engine import Ruleset, evaluate, load_ruleset, validate_answers
from app.rulepack.impact import Impact, StoredScreening
from app.rulepack.report import render_html
from tests.factories import CANDIDATE_ANSWERS

RULES_ROOT = Path(__file__).resolve().parents[2] / "rules"
AS_OF = date(2026, 6, 15)


@pytest.fixture(scope="module")
def current() -> Ruleset:
    return load_ruleset(RULES_ROOT / "ketamine-infusion")


@pytest.fixture(scope="module")
def stricter(tmp_path_factory: pytest.TempPathFactory) -> Ruleset:
    pack = tmp_path_factory.mktemp("packs") / "stricter"
    shutil.copytree(RULES_ROOT / "ketamine-infusion", pack)
    rule = pack / "rules" / "uncontrolled_blood_pressure.yaml"
    rule.write_text(rule.read_text().replace("at_least: 160", "at_least: 150"))
    return load_ruleset(pack)


def stored(ruleset: Ruleset, sid: str, answers: dict[str, Any]) -> StoredScreening:
    decision = evaluate(ruleset, validate_answers(ruleset, answers, as_of=AS_OF), as_of=AS_OF)
    statuses = {flag.rule: flag.status.value for flag in decision.flags}
    return StoredScreening(sid, AS_OF, answers, decision.outcome.value, statuses)


def test_a_stricter_systolic_cut_off_moves_only_150_to_159(
    current: Ruleset, stricter: Ruleset
) -> None:
    impact = Impact(stricter)
    cases = {
        "s149": CANDIDATE_ANSWERS | {"systolic_bp": 149},
        "s150": CANDIDATE_ANSWERS | {"systolic_bp": 150},
        "s159": CANDIDATE_ANSWERS | {"systolic_bp": 159},
        "s160": CANDIDATE_ANSWERS | {"systolic_bp": 160},
        "s155-excluded": CANDIDATE_ANSWERS | {"systolic_bp": 155, "heart_failure": "yes"},
        "clean": CANDIDATE_ANSWERS,
    }
    for sid, answers in cases.items():
        impact.add(stored(current, sid, answers))
    assert impact.total == 6
    assert sorted(change.id for change in impact.changed) == ["s150", "s159"]
    assert impact.changed[0].rules == (("uncontrolled_blood_pressure", "clear", "fired"),)
    assert impact.matrix[("needs_review", "not_candidate")] == 2
    assert impact.matrix[("not_candidate", "not_candidate")] == 2
    counts = impact.rules["uncontrolled_blood_pressure"]
    # the already excluded 155 also fires the rule newly, without changing its decision
    assert (counts.newly_fired, counts.newly_unknown, counts.no_longer_fired) == (3, 0, 0)
    assert set(impact.rules) == {"uncontrolled_blood_pressure"}
    report = impact.to_dict()
    assert report["changed"] == 2
    assert report["rejected"] == 0


def test_answers_a_pack_no_longer_accepts_are_counted_per_reason(current: Ruleset) -> None:
    v1 = load_ruleset(RULES_ROOT / "ketamine-infusion-v1")
    impact = Impact(v1)
    impact.add(stored(current, "a", CANDIDATE_ANSWERS))
    impact.add(stored(current, "b", CANDIDATE_ANSWERS | {"psychosis_or_mania": None}))
    assert impact.rejected_total == 2
    assert impact.rejected["unknown_item: heart_brain_history"] == 2
    assert impact.rejected["unknown_item: psychosis_or_mania"] == 2
    assert sum(impact.matrix.values()) == 0


def test_v1_answers_replayed_under_v2_need_review(current: Ruleset) -> None:
    v1 = load_ruleset(RULES_ROOT / "ketamine-infusion-v1")
    v1_answers = {k: v for k, v in CANDIDATE_ANSWERS.items() if k in v1.items}
    impact = Impact(current)
    impact.add(stored(v1, "old", v1_answers))
    [change] = impact.changed
    assert (change.before, change.after) == ("candidate", "needs_review")
    assert ("psychosis_or_mania_recent", "clear", "unknown") in change.rules
    assert "ketamine_hypersensitivity" not in impact.rules  # ketamine_before "no" disables it


def test_only_the_first_changed_screenings_are_kept(current: Ruleset, stricter: Ruleset) -> None:
    impact = Impact(stricter, keep=3)
    for n in range(10):
        impact.add(stored(current, f"s{n}", CANDIDATE_ANSWERS | {"systolic_bp": 155}))
    assert (len(impact.changed), impact.changed_total) == (3, 10)
    assert "changed screenings (first 3 of 10):" in impact.lines()


def test_the_html_report_is_self_contained_and_names_only_ids(
    current: Ruleset, stricter: Ruleset
) -> None:
    impact = Impact(stricter)
    answers = CANDIDATE_ANSWERS | {"systolic_bp": 152}
    impact.add(stored(current, "0b7c1e57-0000-4000-8000-000000000001", answers))
    page = render_html(impact, clinic="<Demo> clinic", period="at any time", base_url="https://x/")
    assert "&lt;Demo&gt; clinic" in page
    assert 'href="https://x/review/screenings/0b7c1e57-0000-4000-8000-000000000001"' in page
    assert "<svg" in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//(?!x/)""", page)
    assert "<script" not in page
    assert "<link" not in page
    assert "1984-03-27" not in page  # no answers
