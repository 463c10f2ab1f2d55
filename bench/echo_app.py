"""The bench's ceiling: a bare FastAPI app that validates the screening body and echoes it.

No auth, no rules, no database: the same JSON body as ``POST /v1/screenings`` parsed into a
typed pydantic model (the 19 questionnaire items, the subject and the questionnaire id) and
serialised back. ``bench/api.py`` runs it with the same uvicorn settings as the service:

    python -m uvicorn bench.echo_app:app --host 127.0.0.1 --port 8101 --no-access-log
"""

from datetime import date
from typing import Literal

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field

YesNoUnsure = Literal["yes", "no", "unsure"] | None


class Strict(BaseModel):
    """Unknown fields are rejected, as in the service's input models."""

    model_config = ConfigDict(extra="forbid")


class Answers(Strict):
    """The questionnaire's items, typed."""

    date_of_birth: date | None = None
    sex_at_birth: Literal["female", "male", "intersex", "unsure"] | None = None
    conditions: list[str] | None = None
    symptom_duration_months: int | None = Field(default=None, ge=0, le=1200)
    prior_treatments_tried: YesNoUnsure = None
    pregnant: YesNoUnsure = None
    breastfeeding: Literal["yes", "no"] | None = None
    hypertension: YesNoUnsure = None
    bp_controlled: YesNoUnsure = None
    systolic_bp: int | None = Field(default=None, ge=50, le=300)
    diastolic_bp: int | None = Field(default=None, ge=20, le=200)
    concussion: YesNoUnsure = None
    concussion_date: date | None = None
    brain_injury: YesNoUnsure = None
    intracranial_pressure: YesNoUnsure = None
    heart_failure: YesNoUnsure = None
    schizophrenia: YesNoUnsure = None
    ketamine_before: YesNoUnsure = None
    ketamine_reaction: YesNoUnsure = None


class Subject(Strict):
    """The clinic's reference for the person screened."""

    reference: str = Field(min_length=1, max_length=200)


class Body(Strict):
    """The body of ``POST /v1/screenings``."""

    questionnaire: str = Field(min_length=1, max_length=100)
    subject: Subject
    answers: Answers


app = FastAPI(title="echo")


@app.post("/echo", response_model=Body, response_model_exclude_unset=True)
async def echo(body: Body) -> Body:
    """Return the validated body (the fastest shape FastAPI offers: no threadpool hop)."""
    return body
