"""Evaluation (DESIGN.md "Rules", "Decision", "Contracts"): every rule fired, clear, unknown."""

import functools
import json
import shutil
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from app.engine import (
    Decision,
    Outcome,
    Ruleset,
    RuleStatus,
    Severity,
    evaluate,
    load_ruleset,
    validate_answers,
)

PACK_DIR = Path(__file__).resolve().parents[2] / "rules" / "ketamine-infusion-v1"
AS_OF = date(2026, 6, 15)
DROP = object()  # marks an answer to remove from BASE

# A fully answered adult with a listed indication and no contraindication: a candidate.
BASE: dict[str, Any] = {
    "date_of_birth": "1980-01-01",
    "sex_at_birth": "female",
    "conditions": ["migraine"],
    "symptom_duration_months": 24,
    "prior_treatments_tried": "yes",
    "pregnant": "no",
    "breastfeeding": "no",
    "hypertension": "no",
    "systolic_bp": 120,
    "diastolic_bp": 80,
    "concussion": "no",
    "brain_injury": "no",
    "intracranial_pressure": "no",
    "heart_failure": "no",
    "schizophrenia": "no",
    "ketamine_before": "no",
}
EXCLUDE_RULES = {
    "pregnancy_or_breastfeeding",
    "uncontrolled_blood_pressure",
    "recent_concussion",
    "brain_injury_or_intracranial_pressure",
    "heart_failure",
    "schizophrenia",
    "prior_ketamine_reaction",
}
F, C, U = "fired", "clear", "unknown"
NC, NR, CA = "not_candidate", "needs_review", "candidate"


@functools.cache
def default_pack() -> Ruleset:
    return load_ruleset(PACK_DIR)


def answers_with(**changes: Any) -> dict[str, Any]:
    """BASE with some answers changed; DROP removes one."""
    raw = {**BASE, **changes}
    return {key: value for key, value in raw.items() if value is not DROP}


def decide(raw: dict[str, Any], as_of: date = AS_OF, ruleset: Ruleset | None = None) -> Decision:
    ruleset = ruleset or default_pack()
    return evaluate(ruleset, validate_answers(ruleset, raw, as_of=as_of), as_of=as_of)


def not_clear(decision: Decision) -> dict[str, str]:
    return {rule: s.value for rule, s in decision.statuses.items() if s is not RuleStatus.clear}


def flag_of(decision: Decision, rule: str) -> dict[str, Any]:
    flags: list[dict[str, Any]] = [f for f in decision.to_dict()["flags"] if f["rule"] == rule]
    assert len(flags) == 1, decision.to_dict()["flags"]
    return flags[0]


def evidence_of(decision: Decision, rule: str) -> list[tuple[str, Any]]:
    return [(e["item"], e["answer"]) for e in flag_of(decision, rule)["evidence"]]


def test_fully_answered_healthy_adult_is_a_candidate() -> None:
    decision = decide(BASE)
    assert decision.outcome is Outcome.candidate
    assert decision.flags == ()
    assert set(decision.statuses.values()) == {RuleStatus.clear}
    assert list(decision.statuses) == [rule.id for rule in default_pack().rules]


# Each case changes BASE and lists every rule that is then not clear, and the decision.
RULE_CASES: list[tuple[str, dict[str, Any], dict[str, str], str]] = [
    # pregnancy_or_breastfeeding (exclude)
    ("pregnant", {"pregnant": "yes"}, {"pregnancy_or_breastfeeding": F}, NC),
    ("breastfeeding", {"breastfeeding": "yes"}, {"pregnancy_or_breastfeeding": F}, NC),
    (
        "intersex and pregnant",
        {"sex_at_birth": "intersex", "pregnant": "yes"},
        {"pregnancy_or_breastfeeding": F},
        NC,
    ),
    (
        "pregnant, breastfeeding unanswered",
        {"pregnant": "yes", "breastfeeding": DROP},
        {"pregnancy_or_breastfeeding": F},
        NC,
    ),
    ("pregnancy unsure", {"pregnant": "unsure"}, {"pregnancy_or_breastfeeding": U}, NR),
    ("pregnancy unanswered", {"pregnant": DROP}, {"pregnancy_or_breastfeeding": U}, NR),
    ("breastfeeding unanswered", {"breastfeeding": DROP}, {"pregnancy_or_breastfeeding": U}, NR),
    (
        "male: questions disabled",
        {"sex_at_birth": "male", "pregnant": DROP, "breastfeeding": DROP},
        {},
        CA,
    ),
    (
        "sex at birth missing, nothing about pregnancy",
        {"sex_at_birth": DROP, "pregnant": DROP, "breastfeeding": DROP},
        {"pregnancy_or_breastfeeding": U},
        NR,
    ),
    ("sex at birth missing, both answered no", {"sex_at_birth": DROP}, {}, CA),
    (
        "sex at birth missing, pregnant",
        {"sex_at_birth": DROP, "pregnant": "yes"},
        {"pregnancy_or_breastfeeding": F},
        NC,
    ),
    # uncontrolled_blood_pressure (exclude) and elevated_blood_pressure (review)
    ("systolic 139", {"systolic_bp": 139}, {}, CA),
    ("systolic 140", {"systolic_bp": 140}, {"elevated_blood_pressure": F}, NR),
    ("systolic 159", {"systolic_bp": 159}, {"elevated_blood_pressure": F}, NR),
    ("systolic 160", {"systolic_bp": 160}, {"uncontrolled_blood_pressure": F}, NC),
    ("systolic 300", {"systolic_bp": 300}, {"uncontrolled_blood_pressure": F}, NC),
    ("diastolic 89", {"diastolic_bp": 89}, {}, CA),
    ("diastolic 90", {"diastolic_bp": 90}, {"elevated_blood_pressure": F}, NR),
    ("diastolic 99", {"diastolic_bp": 99}, {"elevated_blood_pressure": F}, NR),
    ("diastolic 100", {"diastolic_bp": 100}, {"uncontrolled_blood_pressure": F}, NC),
    ("159 over 99", {"systolic_bp": 159, "diastolic_bp": 99}, {"elevated_blood_pressure": F}, NR),
    (
        "139 over 89 with known controlled hypertension",
        {"systolic_bp": 139, "diastolic_bp": 89, "hypertension": "yes", "bp_controlled": "yes"},
        {},
        CA,
    ),
    (
        "170 over 95: high systolic excludes, diastolic in review band",
        {"systolic_bp": 170, "diastolic_bp": 95},
        {"uncontrolled_blood_pressure": F, "elevated_blood_pressure": F},
        NC,
    ),
    (
        "hypertension not controlled, normal reading",
        {"hypertension": "yes", "bp_controlled": "no"},
        {"uncontrolled_blood_pressure": F},
        NC,
    ),
    (
        "hypertension not controlled, no reading",
        {"hypertension": "yes", "bp_controlled": "no", "systolic_bp": DROP, "diastolic_bp": DROP},
        {"uncontrolled_blood_pressure": F, "elevated_blood_pressure": U},
        NC,
    ),
    (
        "hypertension, control unsure",
        {"hypertension": "yes", "bp_controlled": "unsure"},
        {"uncontrolled_blood_pressure": U},
        NR,
    ),
    (
        "hypertension, control unanswered",
        {"hypertension": "yes"},
        {"uncontrolled_blood_pressure": U},
        NR,
    ),
    (
        "hypertension unsure: bp_controlled enabled and unanswered",
        {"hypertension": "unsure"},
        {"uncontrolled_blood_pressure": U},
        NR,
    ),
    ("hypertension unsure, controlled", {"hypertension": "unsure", "bp_controlled": "yes"}, {}, CA),
    (
        "hypertension unsure, not controlled",
        {"hypertension": "unsure", "bp_controlled": "no"},
        {"uncontrolled_blood_pressure": U},
        NR,
    ),
    ("hypertension unanswered", {"hypertension": DROP}, {"uncontrolled_blood_pressure": U}, NR),
    (
        "systolic unanswered",
        {"systolic_bp": DROP},
        {"uncontrolled_blood_pressure": U, "elevated_blood_pressure": U},
        NR,
    ),
    (
        "diastolic unanswered",
        {"diastolic_bp": DROP},
        {"uncontrolled_blood_pressure": U, "elevated_blood_pressure": U},
        NR,
    ),
    (
        "systolic 165, diastolic unanswered",
        {"systolic_bp": 165, "diastolic_bp": DROP},
        {"uncontrolled_blood_pressure": F, "elevated_blood_pressure": U},
        NC,
    ),
    (
        "systolic 150, diastolic unanswered",
        {"systolic_bp": 150, "diastolic_bp": DROP},
        {"uncontrolled_blood_pressure": U, "elevated_blood_pressure": F},
        NR,
    ),
    # recent_concussion (exclude); AS_OF is 2026-06-15
    (
        "concussion today (0 days)",
        {"concussion": "yes", "concussion_date": "2026-06-15"},
        {"recent_concussion": F},
        NC,
    ),
    (
        "concussion 90 days before",
        {"concussion": "yes", "concussion_date": "2026-03-17"},
        {"recent_concussion": F},
        NC,
    ),
    ("concussion 91 days before", {"concussion": "yes", "concussion_date": "2026-03-16"}, {}, CA),
    ("concussion years ago", {"concussion": "yes", "concussion_date": "2001-09-01"}, {}, CA),
    ("concussion, date unanswered", {"concussion": "yes"}, {"recent_concussion": U}, NR),
    ("concussion unsure", {"concussion": "unsure"}, {"recent_concussion": U}, NR),
    (
        "concussion unsure, recent date",
        {"concussion": "unsure", "concussion_date": "2026-06-01"},
        {"recent_concussion": U},
        NR,
    ),
    (
        "concussion unsure, old date",
        {"concussion": "unsure", "concussion_date": "2010-06-01"},
        {},
        CA,
    ),
    ("concussion unanswered", {"concussion": DROP}, {"recent_concussion": U}, NR),
    (
        "concussion unanswered, recent date",
        {"concussion": DROP, "concussion_date": "2026-06-10"},
        {"recent_concussion": U},
        NR,
    ),
    # brain_injury_or_intracranial_pressure (exclude)
    ("brain injury", {"brain_injury": "yes"}, {"brain_injury_or_intracranial_pressure": F}, NC),
    (
        "intracranial pressure",
        {"intracranial_pressure": "yes"},
        {"brain_injury_or_intracranial_pressure": F},
        NC,
    ),
    (
        "brain injury, pressure unsure",
        {"brain_injury": "yes", "intracranial_pressure": "unsure"},
        {"brain_injury_or_intracranial_pressure": F},
        NC,
    ),
    (
        "brain injury unsure",
        {"brain_injury": "unsure"},
        {"brain_injury_or_intracranial_pressure": U},
        NR,
    ),
    (
        "intracranial pressure unanswered",
        {"intracranial_pressure": DROP},
        {"brain_injury_or_intracranial_pressure": U},
        NR,
    ),
    # heart_failure, schizophrenia (exclude)
    ("heart failure", {"heart_failure": "yes"}, {"heart_failure": F}, NC),
    ("heart failure unsure", {"heart_failure": "unsure"}, {"heart_failure": U}, NR),
    ("heart failure unanswered", {"heart_failure": DROP}, {"heart_failure": U}, NR),
    ("schizophrenia", {"schizophrenia": "yes"}, {"schizophrenia": F}, NC),
    ("schizophrenia unsure", {"schizophrenia": "unsure"}, {"schizophrenia": U}, NR),
    ("schizophrenia unanswered", {"schizophrenia": DROP}, {"schizophrenia": U}, NR),
    # prior_ketamine_reaction (exclude)
    (
        "ketamine reaction",
        {"ketamine_before": "yes", "ketamine_reaction": "yes"},
        {"prior_ketamine_reaction": F},
        NC,
    ),
    ("ketamine without reaction", {"ketamine_before": "yes", "ketamine_reaction": "no"}, {}, CA),
    (
        "ketamine, reaction unsure",
        {"ketamine_before": "yes", "ketamine_reaction": "unsure"},
        {"prior_ketamine_reaction": U},
        NR,
    ),
    (
        "ketamine, reaction unanswered",
        {"ketamine_before": "yes"},
        {"prior_ketamine_reaction": U},
        NR,
    ),
    (
        "ketamine unsure, reaction yes",
        {"ketamine_before": "unsure", "ketamine_reaction": "yes"},
        {"prior_ketamine_reaction": U},
        NR,
    ),
    (
        "ketamine unsure, reaction no",
        {"ketamine_before": "unsure", "ketamine_reaction": "no"},
        {},
        CA,
    ),
    (
        "ketamine unsure, reaction unanswered",
        {"ketamine_before": "unsure"},
        {"prior_ketamine_reaction": U},
        NR,
    ),
    ("ketamine unanswered", {"ketamine_before": DROP}, {"prior_ketamine_reaction": U}, NR),
    # no_listed_indication (review)
    ("only other", {"conditions": ["other"]}, {"no_listed_indication": F}, NR),
    ("other and depression", {"conditions": ["other", "depression"]}, {}, CA),
    ("conditions unanswered", {"conditions": DROP}, {"no_listed_indication": U}, NR),
    # conventional_treatment_not_tried (review)
    (
        "treatments not tried",
        {"prior_treatments_tried": "no"},
        {"conventional_treatment_not_tried": F},
        NR,
    ),
    (
        "treatments unsure",
        {"prior_treatments_tried": "unsure"},
        {"conventional_treatment_not_tried": U},
        NR,
    ),
    (
        "treatments unanswered",
        {"prior_treatments_tried": DROP},
        {"conventional_treatment_not_tried": U},
        NR,
    ),
    # under_18 (review)
    ("18th birthday is the as-of date", {"date_of_birth": "2008-06-15"}, {}, CA),
    ("18th birthday is tomorrow", {"date_of_birth": "2008-06-16"}, {"under_18": F}, NR),
    ("born today", {"date_of_birth": "2026-06-15"}, {"under_18": F}, NR),
    ("date of birth unanswered", {"date_of_birth": DROP}, {"under_18": U}, NR),
    # symptom duration has no rule
    ("symptom duration unanswered", {"symptom_duration_months": DROP}, {}, CA),
    ("symptom duration 0", {"symptom_duration_months": 0}, {}, CA),
]


@pytest.mark.parametrize(
    ("changes", "expected", "outcome"),
    [case[1:] for case in RULE_CASES],
    ids=[case[0] for case in RULE_CASES],
)
def test_rule_statuses_and_decision(
    changes: dict[str, Any], expected: dict[str, str], outcome: str
) -> None:
    decision = decide(answers_with(**changes))
    assert not_clear(decision) == expected
    assert decision.outcome.value == outcome


@pytest.mark.parametrize(
    "condition",
    ["migraine", "chronic_pain", "fibromyalgia", "nerve_pain", "cancer_pain", "depression"],
)
def test_each_listed_indication_clears_no_listed_indication(condition: str) -> None:
    decision = decide(answers_with(conditions=[condition]))
    assert decision.statuses["no_listed_indication"] is RuleStatus.clear
    assert decision.outcome is Outcome.candidate


def test_every_rule_is_fired_clear_and_unknown_somewhere_in_the_cases() -> None:
    seen: dict[str, set[str]] = {rule.id: {C} for rule in default_pack().rules}
    for _, _, expected, _ in RULE_CASES:
        for rule, status in expected.items():
            seen[rule].add(status)
    assert all(statuses == {F, C, U} for statuses in seen.values()), seen


class TestDates:
    @pytest.mark.parametrize(
        ("as_of", "concussion_date", "status"),
        [
            (date(2026, 1, 10), "2025-10-12", F),  # 90 days across a year end
            (date(2026, 1, 10), "2025-10-11", C),  # 91 days
            (date(2024, 5, 29), "2024-02-29", F),  # 90 days across a leap day
            (date(2024, 5, 30), "2024-02-29", C),
            (date(2026, 6, 15), "2026-06-14", F),
        ],
    )
    def test_concussion_window_counts_calendar_days_before_as_of(
        self, as_of: date, concussion_date: str, status: str
    ) -> None:
        raw = answers_with(concussion="yes", concussion_date=concussion_date)
        assert decide(raw, as_of=as_of).statuses["recent_concussion"].value == status

    @pytest.mark.parametrize(
        ("date_of_birth", "as_of", "status"),
        [
            ("2008-02-29", date(2026, 2, 27), F),
            ("2008-02-29", date(2026, 2, 28), F),  # no 29 February in 2026: 18 on 1 March
            ("2008-02-29", date(2026, 3, 1), C),
            ("2006-02-28", date(2024, 2, 29), C),  # as-of on a leap day
            ("2006-03-01", date(2024, 2, 29), F),
            ("2007-12-31", date(2025, 12, 31), C),
            ("2008-01-01", date(2025, 12, 31), F),
        ],
    )
    def test_age_counts_whole_years_on_the_as_of_date(
        self, date_of_birth: str, as_of: date, status: str
    ) -> None:
        raw = answers_with(date_of_birth=date_of_birth)
        assert decide(raw, as_of=as_of).statuses["under_18"].value == status

    def test_same_answers_give_different_results_on_different_as_of_dates(self) -> None:
        raw = answers_with(
            date_of_birth="2008-09-01", concussion="yes", concussion_date="2026-06-01"
        )
        early = decide(raw, as_of=date(2026, 6, 15))
        late = decide(raw, as_of=date(2026, 10, 1))
        assert not_clear(early) == {"under_18": F, "recent_concussion": F}
        assert not_clear(late) == {}
        assert (early.to_dict()["as_of"], late.to_dict()["as_of"]) == ("2026-06-15", "2026-10-01")


class TestDisabledVersusUnknown:
    def test_disabled_pregnancy_questions_are_clear_but_unanswered_are_unknown(self) -> None:
        male = decide({"sex_at_birth": "male"})
        missing = decide({})
        assert male.statuses["pregnancy_or_breastfeeding"] is RuleStatus.clear
        assert missing.statuses["pregnancy_or_breastfeeding"] is RuleStatus.unknown

    def test_disabled_bp_control_is_clear_but_unsure_hypertension_is_unknown(self) -> None:
        no = decide(answers_with(hypertension="no"))
        unsure = decide(answers_with(hypertension="unsure"))
        assert no.statuses["uncontrolled_blood_pressure"] is RuleStatus.clear
        assert unsure.statuses["uncontrolled_blood_pressure"] is RuleStatus.unknown

    def test_disabled_concussion_date_is_clear(self) -> None:
        assert decide({"concussion": "no"}).statuses["recent_concussion"] is RuleStatus.clear

    def test_disabled_ketamine_reaction_is_clear(self) -> None:
        decision = decide({"ketamine_before": "no"})
        assert decision.statuses["prior_ketamine_reaction"] is RuleStatus.clear


class TestDecisionPrecedence:
    def test_exclusion_wins_over_review_and_unknown(self) -> None:
        raw = answers_with(heart_failure="yes", prior_treatments_tried="no", schizophrenia=DROP)
        decision = decide(raw)
        assert not_clear(decision) == {
            "heart_failure": F,
            "conventional_treatment_not_tried": F,
            "schizophrenia": U,
        }
        assert decision.outcome is Outcome.not_candidate

    def test_unknown_exclusion_alone_needs_review_not_exclusion(self) -> None:
        decision = decide(answers_with(heart_failure="unsure"))
        assert decision.outcome is Outcome.needs_review

    def test_unknown_review_rule_alone_needs_review(self) -> None:
        decision = decide(answers_with(date_of_birth=DROP))
        assert decision.outcome is Outcome.needs_review

    def test_fired_review_rule_alone_needs_review(self) -> None:
        decision = decide(answers_with(conditions=["other"]))
        assert decision.outcome is Outcome.needs_review

    def test_fired_review_rule_never_excludes(self) -> None:
        raw = answers_with(
            conditions=["other"],
            prior_treatments_tried="no",
            date_of_birth="2015-01-01",
            systolic_bp=150,
        )
        decision = decide(raw)
        assert {flag.severity for flag in decision.flags} == {Severity.review}
        assert decision.outcome is Outcome.needs_review

    def test_empty_answers_need_review_with_every_rule_unknown(self) -> None:
        decision = decide({})
        assert decision.outcome is Outcome.needs_review
        assert set(decision.statuses.values()) == {RuleStatus.unknown}
        assert len(decision.flags) == 11

    def test_outcomes_are_ordered_least_to_most_cautious(self) -> None:
        assert [o.value for o in Outcome] == [CA, NR, NC]


class TestFlags:
    def test_flags_list_only_fired_and_unknown_rules(self) -> None:
        decision = decide(answers_with(pregnant="yes", heart_failure="unsure"))
        flags = decision.to_dict()["flags"]
        assert {(f["rule"], f["status"]) for f in flags} == {
            ("pregnancy_or_breastfeeding", "fired"),
            ("heart_failure", "unknown"),
        }

    def test_flag_has_exactly_the_contract_fields(self) -> None:
        flag = flag_of(decide(answers_with(heart_failure="yes")), "heart_failure")
        assert set(flag) == {"rule", "severity", "status", "reason", "evidence"}
        assert (flag["rule"], flag["severity"], flag["status"]) == (
            "heart_failure",
            "exclude",
            "fired",
        )
        assert flag["evidence"] == [{"item": "heart_failure", "answer": "yes"}]

    @pytest.mark.parametrize("rule", sorted(EXCLUDE_RULES))
    def test_flag_severity_is_exclude_for_exclusions(self, rule: str) -> None:
        assert flag_of(decide({}), rule)["severity"] == "exclude"

    @pytest.mark.parametrize(
        "rule",
        [
            "elevated_blood_pressure",
            "no_listed_indication",
            "conventional_treatment_not_tried",
            "under_18",
        ],
    )
    def test_flag_severity_is_review_for_review_rules(self, rule: str) -> None:
        assert flag_of(decide({}), rule)["severity"] == "review"

    def test_flags_are_exclusions_first_then_fired_before_unknown(self) -> None:
        raw = answers_with(
            conditions=["other"], heart_failure="unsure", schizophrenia="yes", date_of_birth=DROP
        )
        flags = [(f.rule, f.status.value) for f in decide(raw).flags]
        assert flags == [
            ("schizophrenia", F),
            ("heart_failure", U),
            ("no_listed_indication", F),
            ("under_18", U),
        ]

    def test_fired_reason_names_the_rule_and_the_deciding_answer(self) -> None:
        flag = flag_of(decide(answers_with(systolic_bp=172)), "uncontrolled_blood_pressure")
        assert flag["reason"].startswith("Uncontrolled blood pressure")
        assert "systolic_bp is 172 (160 or more)" in flag["reason"]

    def test_review_band_reason_shows_the_band(self) -> None:
        flag = flag_of(decide(answers_with(diastolic_bp=93)), "elevated_blood_pressure")
        assert "diastolic_bp is 93 (90 to 99)" in flag["reason"]

    def test_unknown_reason_names_missing_and_unsure_items(self) -> None:
        flag = flag_of(decide(answers_with(concussion="unsure")), "recent_concussion")
        assert "cannot be ruled out" in flag["reason"]
        assert "not answered: concussion_date" in flag["reason"]
        assert 'answered "unsure": concussion' in flag["reason"]

    def test_concussion_reason_gives_days_before_as_of(self) -> None:
        decision = decide(answers_with(concussion="yes", concussion_date="2026-05-16"))
        reason = flag_of(decision, "recent_concussion")["reason"]
        assert "30 days before 2026-06-15" in reason

    def test_age_reason_gives_the_age_on_the_as_of_date(self) -> None:
        reason = flag_of(decide(answers_with(date_of_birth="2010-01-01")), "under_18")["reason"]
        assert "age 16 on 2026-06-15" in reason

    def test_indication_reason_lists_what_was_looked_for(self) -> None:
        reason = flag_of(decide(answers_with(conditions=["other"])), "no_listed_indication")[
            "reason"
        ]
        assert "migraine" in reason
        assert "depression" in reason

    def test_flag_title_is_the_rule_title(self) -> None:
        (flag,) = decide(answers_with(schizophrenia="yes")).flags
        assert flag.title == "Schizophrenia"


class TestEvidence:
    @pytest.mark.parametrize(
        ("changes", "rule", "evidence"),
        [
            ({"pregnant": "yes"}, "pregnancy_or_breastfeeding", [("pregnant", "yes")]),
            (
                {"pregnant": "yes", "breastfeeding": "yes"},
                "pregnancy_or_breastfeeding",
                [("pregnant", "yes"), ("breastfeeding", "yes")],
            ),
            ({"breastfeeding": "yes"}, "pregnancy_or_breastfeeding", [("breastfeeding", "yes")]),
            ({"systolic_bp": 181}, "uncontrolled_blood_pressure", [("systolic_bp", 181)]),
            ({"diastolic_bp": 104}, "uncontrolled_blood_pressure", [("diastolic_bp", 104)]),
            (
                {"hypertension": "yes", "bp_controlled": "no"},
                "uncontrolled_blood_pressure",
                [("hypertension", "yes"), ("bp_controlled", "no")],
            ),
            ({"systolic_bp": 145}, "elevated_blood_pressure", [("systolic_bp", 145)]),
            (
                {"concussion": "yes", "concussion_date": "2026-05-01"},
                "recent_concussion",
                [("concussion", "yes"), ("concussion_date", "2026-05-01")],
            ),
            (
                {"intracranial_pressure": "yes"},
                "brain_injury_or_intracranial_pressure",
                [("intracranial_pressure", "yes")],
            ),
            ({"heart_failure": "yes"}, "heart_failure", [("heart_failure", "yes")]),
            ({"schizophrenia": "yes"}, "schizophrenia", [("schizophrenia", "yes")]),
            (
                {"ketamine_before": "yes", "ketamine_reaction": "yes"},
                "prior_ketamine_reaction",
                [("ketamine_before", "yes"), ("ketamine_reaction", "yes")],
            ),
            ({"conditions": ["other"]}, "no_listed_indication", [("conditions", ["other"])]),
            (
                {"prior_treatments_tried": "no"},
                "conventional_treatment_not_tried",
                [("prior_treatments_tried", "no")],
            ),
            ({"date_of_birth": "2009-03-04"}, "under_18", [("date_of_birth", "2009-03-04")]),
        ],
    )
    def test_fired_evidence_names_the_deciding_items_and_answers(
        self, changes: dict[str, Any], rule: str, evidence: list[tuple[str, Any]]
    ) -> None:
        decision = decide(answers_with(**changes))
        assert decision.statuses[rule] is RuleStatus.fired
        assert evidence_of(decision, rule) == evidence

    @pytest.mark.parametrize(
        ("changes", "rule", "evidence"),
        [
            ({"pregnant": "unsure"}, "pregnancy_or_breastfeeding", [("pregnant", "unsure")]),
            ({"breastfeeding": DROP}, "pregnancy_or_breastfeeding", [("breastfeeding", None)]),
            ({"systolic_bp": DROP}, "uncontrolled_blood_pressure", [("systolic_bp", None)]),
            (
                {"hypertension": "unsure"},
                "uncontrolled_blood_pressure",
                [("hypertension", "unsure"), ("bp_controlled", None)],
            ),
            (
                {"hypertension": "yes", "bp_controlled": "unsure"},
                "uncontrolled_blood_pressure",
                [("hypertension", "yes"), ("bp_controlled", "unsure")],
            ),
            ({"diastolic_bp": DROP}, "elevated_blood_pressure", [("diastolic_bp", None)]),
            (
                {"concussion": "yes"},
                "recent_concussion",
                [("concussion", "yes"), ("concussion_date", None)],
            ),
            (
                {"concussion": "unsure", "concussion_date": "2026-06-01"},
                "recent_concussion",
                [("concussion", "unsure"), ("concussion_date", "2026-06-01")],
            ),
            (
                {"brain_injury": "unsure", "intracranial_pressure": DROP},
                "brain_injury_or_intracranial_pressure",
                [("brain_injury", "unsure"), ("intracranial_pressure", None)],
            ),
            ({"heart_failure": DROP}, "heart_failure", [("heart_failure", None)]),
            ({"schizophrenia": "unsure"}, "schizophrenia", [("schizophrenia", "unsure")]),
            (
                {"ketamine_before": "unsure"},
                "prior_ketamine_reaction",
                [("ketamine_before", "unsure"), ("ketamine_reaction", None)],
            ),
            ({"conditions": DROP}, "no_listed_indication", [("conditions", None)]),
            (
                {"prior_treatments_tried": "unsure"},
                "conventional_treatment_not_tried",
                [("prior_treatments_tried", "unsure")],
            ),
            ({"date_of_birth": DROP}, "under_18", [("date_of_birth", None)]),
        ],
    )
    def test_unknown_evidence_names_the_missing_or_unsure_items(
        self, changes: dict[str, Any], rule: str, evidence: list[tuple[str, Any]]
    ) -> None:
        decision = decide(answers_with(**changes))
        assert decision.statuses[rule] is RuleStatus.unknown
        assert evidence_of(decision, rule) == evidence

    def test_evidence_never_names_a_disabled_item(self) -> None:
        decision = decide(
            {
                "sex_at_birth": "male",
                "hypertension": "no",
                "concussion": "no",
                "ketamine_before": "no",
            }
        )
        disabled = {
            "pregnant",
            "breastfeeding",
            "bp_controlled",
            "concussion_date",
            "ketamine_reaction",
        }
        named = {e.item for flag in decision.flags for e in flag.evidence}
        assert named
        assert not named & disabled

    def test_every_fired_or_unknown_flag_has_evidence(self) -> None:
        for raw in ({}, answers_with(pregnant="yes", systolic_bp=DROP, concussion="unsure")):
            for flag in decide(raw).flags:
                assert flag.evidence, flag.rule


class TestResultJson:
    def test_result_has_exactly_the_contract_shape(self) -> None:
        ruleset = default_pack()
        result = decide(answers_with(heart_failure="yes", date_of_birth=DROP)).to_dict()
        assert set(result) == {"decision", "flags", "ruleset", "as_of"}
        assert result["decision"] == "not_candidate"
        assert result["ruleset"] == {
            "id": "ketamine-infusion",
            "version": ruleset.version,
            "sha256": ruleset.sha256,
        }
        assert result["as_of"] == "2026-06-15"
        assert result["flags"] == [
            {
                "rule": "heart_failure",
                "severity": "exclude",
                "status": "fired",
                "reason": result["flags"][0]["reason"],
                "evidence": [{"item": "heart_failure", "answer": "yes"}],
            },
            {
                "rule": "under_18",
                "severity": "review",
                "status": "unknown",
                "reason": result["flags"][1]["reason"],
                "evidence": [{"item": "date_of_birth", "answer": None}],
            },
        ]
        assert all(isinstance(flag["reason"], str) and flag["reason"] for flag in result["flags"])

    def test_candidate_result_has_no_flags(self) -> None:
        assert decide(BASE).to_dict()["flags"] == []
        assert decide(BASE).to_dict()["decision"] == "candidate"

    def test_result_is_plain_json(self) -> None:
        result = decide({"conditions": ["other", "migraine"], "hypertension": "unsure"}).to_dict()
        assert json.loads(json.dumps(result)) == result

    def test_evaluation_is_deterministic(self) -> None:
        raw = answers_with(hypertension="unsure", conditions=["other"], concussion=DROP)
        assert decide(raw).to_dict() == decide(dict(reversed(raw.items()))).to_dict()

    def test_decision_records_ruleset_and_as_of(self) -> None:
        decision = decide(BASE, as_of=date(2030, 1, 2))
        assert decision.ruleset.sha256 == default_pack().sha256
        assert decision.as_of == date(2030, 1, 2)


# A pack that states the default policy with other condition forms (not, any, all, in,
# above, at_most, contains_any), and extra probe rules, must behave the same where it overlaps.
PROBE_RULES = {
    "probe_not_male": "when: {not: {item: sex_at_birth, in: [male]}}",
    "probe_contains_any": "when: {item: conditions, contains_any: [migraine, depression]}",
    "probe_not_contains_any": "when: {not: {item: conditions, contains_any: [migraine]}}",
    "probe_not_contains_none": "when: {not: {item: conditions, contains_none: [migraine]}}",
    "probe_above_at_most": "when: {item: systolic_bp, above: 129, at_most: 139}",
    "probe_at_most": "when: {item: diastolic_bp, at_most: 60}",
    "probe_in_integer": "when: {item: symptom_duration_months, in: [0, 1, 2]}",
    "probe_not_all": 'when: {not: {all: [{item: concussion, is: "yes"}, '
    "{item: concussion_date, within_days: 30}]}}",
}


@functools.cache
def probe_pack(root: Path) -> Ruleset:
    target = root / "probe"
    shutil.copytree(PACK_DIR, target)
    questionnaire = target / "questionnaire.yaml"
    text = (
        questionnaire.read_text(encoding="utf-8")
        .replace(
            "enable_when: {item: sex_at_birth, in: [female, intersex]}\n        required: true\n"
            "      - id: breastfeeding",
            "enable_when: {not: {item: sex_at_birth, is: male}}\n        required: true\n"
            "      - id: breastfeeding",
        )
        .replace(
            "enable_when: {item: sex_at_birth, in: [female, intersex]}",
            "enable_when: {any: [{item: sex_at_birth, is: female}, "
            "{item: sex_at_birth, is: intersex}]}",
        )
        .replace(
            'enable_when: {item: hypertension, is: "yes"}',
            'enable_when: {all: [{item: hypertension, in: ["yes"]}]}',
        )
    )
    assert text.count("enable_when: {any:") == 1
    assert text.count("enable_when: {not:") == 1
    assert text.count("enable_when: {all:") == 1
    questionnaire.write_text(text, encoding="utf-8")
    for rule_id, when in PROBE_RULES.items():
        (target / "rules" / f"{rule_id}.yaml").write_text(
            f"id: {rule_id}\ntitle: Probe {rule_id}\nseverity: review\nrationale: probe\n"
            f'references: ["none"]\n{when}\n'
            "tests: [{name: empty, answers: {}, expect: unknown}]\n",
            encoding="utf-8",
        )
    with (target / "pack.yaml").open("a", encoding="utf-8") as pack:
        pack.writelines(f"  - {rule_id}\n" for rule_id in PROBE_RULES)
    return load_ruleset(target)


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Ruleset:
    return probe_pack(tmp_path_factory.mktemp("packs"))


class TestConditionVocabulary:
    @pytest.mark.parametrize(
        "changes",
        [
            {},
            {"sex_at_birth": DROP, "pregnant": DROP, "breastfeeding": DROP},
            {"sex_at_birth": "male", "pregnant": DROP, "breastfeeding": DROP},
            {"sex_at_birth": "intersex", "breastfeeding": "yes"},
            {"hypertension": "yes", "bp_controlled": "no"},
            {"hypertension": "unsure"},
        ],
    )
    def test_equivalent_enable_when_forms_give_the_same_statuses(
        self, probe: Ruleset, changes: dict[str, Any]
    ) -> None:
        raw = answers_with(**changes)
        expected = decide(raw).statuses
        assert {k: v for k, v in decide(raw, ruleset=probe).statuses.items() if k in expected} == (
            expected
        )

    def test_not_enable_when_disables_for_male_naming_the_controller(self, probe: Ruleset) -> None:
        from app.engine import AnswerErrors

        with pytest.raises(AnswerErrors) as caught:
            validate_answers(
                probe,
                {
                    "sex_at_birth": "male",
                    "pregnant": "no",
                    "breastfeeding": "no",
                    "bp_controlled": "yes",
                    "hypertension": "no",
                },
                as_of=AS_OF,
            )
        errors = {e.item: e for e in caught.value.errors}
        assert set(errors) == {"pregnant", "breastfeeding", "bp_controlled"}
        assert "sex_at_birth" in errors["pregnant"].message
        assert "sex_at_birth" in errors["breastfeeding"].message
        assert "hypertension" in errors["bp_controlled"].message

    @pytest.mark.parametrize(
        ("changes", "expected"),
        [
            (
                {},
                {
                    "probe_not_male": F,
                    "probe_contains_any": F,
                    "probe_not_contains_none": F,
                    "probe_not_all": F,
                },
            ),
            (
                {
                    "sex_at_birth": "male",
                    "pregnant": DROP,
                    "breastfeeding": DROP,
                    "conditions": ["other"],
                },
                {"probe_not_contains_any": F, "probe_not_all": F, "no_listed_indication": F},
            ),
            (
                {
                    "sex_at_birth": DROP,
                    "pregnant": DROP,
                    "breastfeeding": DROP,
                    "conditions": DROP,
                    "concussion": "unsure",
                },
                {
                    "probe_not_male": U,
                    "probe_contains_any": U,
                    "probe_not_contains_any": U,
                    "probe_not_contains_none": U,
                    "probe_not_all": U,
                    "no_listed_indication": U,
                    "pregnancy_or_breastfeeding": U,
                    "recent_concussion": U,
                },
            ),
            (
                {"systolic_bp": 130, "diastolic_bp": 60, "symptom_duration_months": 2},
                {
                    "probe_not_male": F,
                    "probe_contains_any": F,
                    "probe_not_contains_none": F,
                    "probe_above_at_most": F,
                    "probe_at_most": F,
                    "probe_in_integer": F,
                    "probe_not_all": F,
                },
            ),
            (
                {"systolic_bp": 129, "diastolic_bp": 61, "symptom_duration_months": 3},
                {
                    "probe_not_male": F,
                    "probe_contains_any": F,
                    "probe_not_contains_none": F,
                    "probe_not_all": F,
                },
            ),
            (
                {"systolic_bp": 139},
                {
                    "probe_not_male": F,
                    "probe_contains_any": F,
                    "probe_not_contains_none": F,
                    "probe_above_at_most": F,
                    "probe_not_all": F,
                },
            ),
            (
                {"concussion": "yes", "concussion_date": "2026-06-01"},
                {
                    "probe_not_male": F,
                    "probe_contains_any": F,
                    "probe_not_contains_none": F,
                    "recent_concussion": F,
                },
            ),
        ],
    )
    def test_condition_forms_follow_their_definitions(
        self, probe: Ruleset, changes: dict[str, Any], expected: dict[str, str]
    ) -> None:
        assert not_clear(decide(answers_with(**changes), ruleset=probe)) == expected

    def test_probe_reasons_describe_each_form(self, probe: Ruleset) -> None:
        raw = answers_with(
            systolic_bp=135,
            diastolic_bp=55,
            sex_at_birth="male",
            pregnant=DROP,
            breastfeeding=DROP,
            conditions=["other"],
        )
        decision = decide(raw, ruleset=probe)
        assert (
            "systolic_bp is 135 (130 to 139)" in flag_of(decision, "probe_above_at_most")["reason"]
        )
        assert "diastolic_bp is 55 (60 or less)" in flag_of(decision, "probe_at_most")["reason"]
        assert (
            "not: conditions includes none of migraine"
            in flag_of(decision, "probe_not_contains_any")["reason"]
        )
        assert evidence_of(decision, "probe_not_contains_any") == [("conditions", ["other"])]

    def test_negated_reasons_show_the_false_comparison(self, probe: Ruleset) -> None:
        decision = decide(answers_with(conditions=["migraine", "other"]), ruleset=probe)
        assert "conditions includes migraine" in flag_of(decision, "probe_contains_any")["reason"]
        assert (
            "not: conditions includes migraine"
            in flag_of(decision, "probe_not_contains_none")["reason"]
        )


def test_leaf_base_class_has_no_predicate() -> None:
    from app.engine.conditions import Leaf

    with pytest.raises(NotImplementedError):
        Leaf("x").holds(1, AS_OF)
    with pytest.raises(NotImplementedError):
        Leaf("x").describe(1, AS_OF)


def test_answer_state_markers_have_readable_names() -> None:
    from app.engine.conditions import DISABLED, MISSING, UNSURE

    assert [repr(m) for m in (MISSING, UNSURE, DISABLED)] == ["MISSING", "UNSURE", "DISABLED"]


# enable_when of every form, on controllers that can themselves be disabled.
CHAIN_ENABLE_WHEN = {
    "systolic_bp": '{not: {item: heart_failure, is: "yes"}}',
    "diastolic_bp": "{item: systolic_bp, at_least: 100}",
    "brain_injury": "{not: {item: concussion_date, within_days: 0}}",
    "ketamine_before": '{item: schizophrenia, in: ["no"]}',
}


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Ruleset:
    target = tmp_path_factory.mktemp("packs") / "chain"
    shutil.copytree(PACK_DIR, target)
    path = target / "questionnaire.yaml"
    text = path.read_text(encoding="utf-8")
    for item, enable_when in CHAIN_ENABLE_WHEN.items():
        head = f"      - id: {item}\n"
        assert text.count(head) == 1
        text = text.replace(head, f"{head}        enable_when: {enable_when}\n")
    path.write_text(text, encoding="utf-8")
    return load_ruleset(target)


def rejected_items(ruleset: Ruleset, raw: dict[str, Any]) -> set[str]:
    from app.engine import AnswerErrors

    try:
        validate_answers(ruleset, raw, as_of=AS_OF)
    except AnswerErrors as error:
        errors = error.errors
    else:
        return set()
    assert {e.code for e in errors} == {"item_disabled"}
    return {e.item for e in errors}


class TestEnableWhenForms:
    @pytest.mark.parametrize(
        ("raw", "disabled"),
        [
            (
                {"heart_failure": "yes", "systolic_bp": 120, "diastolic_bp": 80},
                {"systolic_bp", "diastolic_bp"},
            ),
            ({"heart_failure": "unsure", "systolic_bp": 120, "diastolic_bp": 80}, set()),
            ({"systolic_bp": 99, "diastolic_bp": 80}, {"diastolic_bp"}),
            ({"systolic_bp": 100, "diastolic_bp": 80}, set()),
            ({"diastolic_bp": 80}, set()),
            ({"concussion": "no", "brain_injury": "no"}, set()),
            ({"concussion": "yes", "brain_injury": "no"}, set()),
            (
                {"concussion": "yes", "concussion_date": "2026-06-15", "brain_injury": "no"},
                {"brain_injury"},
            ),
            ({"concussion": "yes", "concussion_date": "2026-06-14", "brain_injury": "no"}, set()),
            (
                {"schizophrenia": "yes", "ketamine_before": "yes", "ketamine_reaction": "no"},
                {"ketamine_before", "ketamine_reaction"},
            ),
            ({"schizophrenia": "yes", "ketamine_reaction": "no"}, {"ketamine_reaction"}),
            (
                {"schizophrenia": "unsure", "ketamine_before": "yes", "ketamine_reaction": "no"},
                set(),
            ),
        ],
    )
    def test_item_is_disabled_only_when_enable_when_is_definitely_false(
        self, chain: Ruleset, raw: dict[str, Any], disabled: set[str]
    ) -> None:
        assert rejected_items(chain, raw) == disabled

    def test_rules_on_disabled_items_are_clear(self, chain: Ruleset) -> None:
        decision = decide(
            {"heart_failure": "yes", "hypertension": "no", "schizophrenia": "yes"}, ruleset=chain
        )
        assert decision.statuses["uncontrolled_blood_pressure"] is RuleStatus.clear
        assert decision.statuses["elevated_blood_pressure"] is RuleStatus.clear
        assert decision.statuses["prior_ketamine_reaction"] is RuleStatus.clear
        assert decision.outcome is Outcome.not_candidate

    def test_results_stay_correct_however_many_answer_sets_are_seen(self, tmp_path: Path) -> None:
        # Evaluate far more distinct leaf-state combinations than any cache would keep.
        items = [
            "heart_failure",
            "schizophrenia",
            "brain_injury",
            "intracranial_pressure",
            "prior_treatments_tried",
            "hypertension",
            "concussion",
        ]
        target = tmp_path / "wide"
        shutil.copytree(PACK_DIR, target)
        parts = ", ".join(f'{{item: {item}, is: "yes"}}' for item in items)
        (target / "rules" / "wide.yaml").write_text(
            f"id: wide\ntitle: Wide\nseverity: review\nrationale: probe\nreferences: [none]\n"
            f"when: {{any: [{parts}]}}\ntests: [{{name: e, answers: {{}}, expect: unknown}}]\n",
            encoding="utf-8",
        )
        with (target / "pack.yaml").open("a", encoding="utf-8") as pack:
            pack.write("  - wide\n")
        ruleset = load_ruleset(target)
        choices = [None, "no", "yes", "unsure"]
        for combination in range(len(choices) ** len(items)):
            raw, rest = {}, combination
            for item in items:
                rest, pick = divmod(rest, len(choices))
                if choices[pick] is not None:
                    raw[item] = choices[pick]
            expected = (
                F
                if "yes" in raw.values()
                else C
                if len(raw) == len(items) and set(raw.values()) == {"no"}
                else U
            )
            assert decide(raw, ruleset=ruleset).statuses["wide"].value == expected, raw


def test_fired_rule_on_a_question_that_does_not_apply_still_explains_itself(
    tmp_path: Path,
) -> None:
    # DESIGN.md "Decision": every flag carries a reason and the evidence that decided it. A rule
    # `not: {item: pregnant, is: "yes"}` fires for a male patient because `pregnant` is disabled;
    # the flag must still say why (at least the answer that disabled the question).
    target = tmp_path / "negated"
    shutil.copytree(PACK_DIR, target)
    (target / "rules" / "not_pregnant.yaml").write_text(
        "id: not_pregnant\ntitle: Not pregnant\nseverity: review\nrationale: probe\n"
        'references: [none]\nwhen: {not: {item: pregnant, is: "yes"}}\n'
        "tests: [{name: e, answers: {}, expect: unknown}]\n",
        encoding="utf-8",
    )
    with (target / "pack.yaml").open("a", encoding="utf-8") as pack:
        pack.write("  - not_pregnant\n")
    decision = decide({"sex_at_birth": "male"}, ruleset=load_ruleset(target))
    flag = flag_of(decision, "not_pregnant")
    assert flag["status"] == "fired"
    assert flag["evidence"] != []
    assert flag["reason"] != "Not pregnant: "
