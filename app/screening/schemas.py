"""Request and response bodies of the screening API, with their OpenAPI examples."""

import uuid
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.audit.canonical import Timestamp
from app.text import Line

QUESTIONNAIRE_ID = "ketamine-infusion-candidacy"
RULESET_EXAMPLE: dict[str, Any] = {
    "id": "ketamine-infusion",
    "version": "1.0.0",
    "sha256": "3f0c5b1e9d2a4c6b8e7f1a2d3c4b5a69788796a5b4c3d2e1f0a9b8c7d6e5f4a3",
}
ANSWERS_EXAMPLE: dict[str, Any] = {
    "date_of_birth": "1984-03-27",
    "sex_at_birth": "female",
    "conditions": ["migraine"],
    "symptom_duration_months": 48,
    "prior_treatments_tried": "yes",
    "pregnant": "no",
    "breastfeeding": "no",
    "hypertension": "yes",
    "bp_controlled": "yes",
    "systolic_bp": 148,
    "diastolic_bp": 88,
    "concussion": "no",
    "brain_injury": "no",
    "intracranial_pressure": "no",
    "heart_failure": "no",
    "schizophrenia": "no",
    "ketamine_before": "no",
}
FLAG_EXAMPLE: dict[str, Any] = {
    "rule": "elevated_blood_pressure",
    "severity": "review",
    "status": "fired",
    "reason": "Blood pressure is raised (140-159 systolic or 90-99 diastolic).",
    "evidence": [{"item": "systolic_bp", "answer": 148}, {"item": "diastolic_bp", "answer": 88}],
}
RESULT_EXAMPLE: dict[str, Any] = {
    "decision": "needs_review",
    "flags": [FLAG_EXAMPLE],
    "ruleset": RULESET_EXAMPLE,
    "as_of": "2026-06-15",
}
SCREENING_EXAMPLE: dict[str, Any] = {
    "id": "0b8f9d3e-5c1a-4e2b-9f7d-6a3c2b1e0d4f",
    "created_at": "2026-06-15T14:03:27.512000Z",
    "subject": {"reference": "MRN-0042-7781"},
    "review": None,
    **RESULT_EXAMPLE,
}


class ApiModel(BaseModel):
    """Base of every API body: inputs reject unknown fields."""

    model_config = ConfigDict(extra="forbid")


class Subject(ApiModel):
    """Who was screened, as the clinic's own reference (an MRN or intake id). Stored encrypted."""

    reference: Line = Field(min_length=1, max_length=200, examples=["MRN-0042-7781"])


class EvaluateCreate(ApiModel):
    """Answers to evaluate; a missing or null answer is unknown, never "no"."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"questionnaire": QUESTIONNAIRE_ID, "answers": ANSWERS_EXAMPLE}]
        }
    )

    questionnaire: str = Field(min_length=1, max_length=100, examples=[QUESTIONNAIRE_ID])
    answers: dict[str, Any] = Field(description="Item id to answer; see the questionnaire.")


class ScreeningCreate(EvaluateCreate):
    """Answers to evaluate and store for a subject."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "questionnaire": QUESTIONNAIRE_ID,
                    "subject": {"reference": "MRN-0042-7781"},
                    "answers": ANSWERS_EXAMPLE,
                }
            ]
        }
    )

    subject: Subject


class EvidenceRead(ApiModel):
    """An answer that decided a rule, or a missing/unsure item that left it unknown."""

    item: str
    answer: Any = Field(description='The submitted value, "unsure", or null when unanswered.')


class FlagRead(ApiModel):
    """A rule that fired or could not be ruled out."""

    model_config = ConfigDict(json_schema_extra={"examples": [FLAG_EXAMPLE]})

    rule: str
    severity: Literal["exclude", "review"]
    status: Literal["fired", "unknown"]
    reason: str
    evidence: list[EvidenceRead]


class RulesetRef(ApiModel):
    """The exact rule pack a decision was made with; fetch it at /v1/rulesets/{sha256}."""

    model_config = ConfigDict(json_schema_extra={"examples": [RULESET_EXAMPLE]})

    id: str
    version: str
    sha256: str


class EvaluationRead(ApiModel):
    """The result JSON: decision, flags with reasons and evidence, rule pack, as-of date."""

    model_config = ConfigDict(json_schema_extra={"examples": [RESULT_EXAMPLE]})

    decision: Literal["candidate", "needs_review", "not_candidate"]
    flags: list[FlagRead]
    ruleset: RulesetRef
    as_of: date


class ReviewSummary(ApiModel):
    """The latest physician sign-off of a screening."""

    disposition: str
    created_at: Timestamp


class ScreeningRead(EvaluationRead):
    """A stored screening: the result plus id, creation time, subject and review state."""

    model_config = ConfigDict(json_schema_extra={"examples": [SCREENING_EXAMPLE]})

    id: uuid.UUID
    created_at: Timestamp
    subject: Subject
    review: ReviewSummary | None


class ScreeningPage(ApiModel):
    """One page of screenings, newest first; pass ``next_cursor`` back as ``cursor``."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"items": [SCREENING_EXAMPLE], "next_cursor": "eyJ0IjoiMjAy..."}]
        }
    )

    items: list[ScreeningRead]
    next_cursor: str | None


class QuestionnaireRead(ApiModel):
    """The form definition: groups of items in display order, with types and conditions."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": QUESTIONNAIRE_ID,
                    "title": "Ketamine infusion screening",
                    "ruleset": RULESET_EXAMPLE,
                    "groups": [
                        {
                            "id": "about_you",
                            "title": "About you",
                            "items": [
                                {
                                    "id": "sex_at_birth",
                                    "type": "choice",
                                    "text": "What sex were you given at birth?",
                                    "required": True,
                                    "options": [{"value": "female", "text": "Female"}],
                                }
                            ],
                        }
                    ],
                }
            ]
        }
    )

    id: str
    title: str
    ruleset: RulesetRef
    groups: list[dict[str, Any]]


class TracedEvidence(ApiModel):
    """An answer that decided a rule, with the question as the patient read it."""

    item: str
    question: str
    answer: Any = Field(description='The stored value, "unsure", or null when unanswered.')


class RuleTrace(ApiModel):
    """One rule of the stored pack: what it checks, why, and its status for these answers."""

    rule: str
    title: str
    severity: Literal["exclude", "review"]
    status: Literal["fired", "unknown", "clear"]
    rationale: str
    references: list[str]
    reason: str | None = Field(description="For fired and unknown rules; null when clear.")
    evidence: list[TracedEvidence]


class AnswerErrorRead(ApiModel):
    """A stored answer that no longer validates (only for an altered record)."""

    code: str
    item: str


class ExplanationRead(ApiModel):
    """A stored screening re-evaluated with its own rule pack and as-of date: the full trace."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": SCREENING_EXAMPLE["id"],
                    "matches_stored": True,
                    "result": RESULT_EXAMPLE,
                    "stored": RESULT_EXAMPLE,
                    "as_of": "2026-06-15",
                    "ruleset": RULESET_EXAMPLE,
                    "rules": [
                        {
                            "rule": "elevated_blood_pressure",
                            "title": "Elevated blood pressure",
                            "severity": "review",
                            "status": "fired",
                            "rationale": "A most recent reading of 140-159 mmHg systolic ...",
                            "references": ["Cohen SP et al. Reg Anesth Pain Med 2018"],
                            "reason": FLAG_EXAMPLE["reason"],
                            "evidence": [
                                {
                                    "item": "systolic_bp",
                                    "question": "Your most recent systolic blood pressure",
                                    "answer": 148,
                                }
                            ],
                        }
                    ],
                    "answer_errors": [],
                }
            ]
        }
    )

    id: uuid.UUID
    matches_stored: bool = Field(description="The re-computed result equals the stored one.")
    result: EvaluationRead | None = Field(description="Re-computed now; null if invalid.")
    stored: EvaluationRead = Field(description="The result stored when it was screened.")
    as_of: date
    ruleset: RulesetRef
    rules: list[RuleTrace] = Field(description="Every rule of the stored pack, in pack order.")
    answer_errors: list[AnswerErrorRead]
