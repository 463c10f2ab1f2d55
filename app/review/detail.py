"""The review detail of one screening: flags with their evidence, every answer, the history.

Everything a physician reads comes from the rule pack the screening was evaluated with (its
stored content, by sha256), not from today's pack: the question wording the patient saw,
the rule titles, rationales and references.
"""

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy.orm import Session

from app.audit import service as audit_service
from app.crypto import KeyRing
from app.engine import AnswerErrors, Ruleset, validate_answers
from app.engine.model import Item
from app.review import service as review_service
from app.screening import store

_YES_NO = {"yes": "Yes", "no": "No", "unsure": "I'm not sure"}


@dataclass(frozen=True, slots=True)
class EvidenceView:
    """An answer that decided a flag, or one that is missing or unsure."""

    item: str
    question: str
    answer: str
    is_unknown: bool


@dataclass(frozen=True, slots=True)
class FlagView:
    """A fired or unknown rule, with what a physician needs to judge it."""

    rule: str
    title: str
    severity: str
    status: str
    reason: str
    rationale: str
    references: tuple[str, ...]
    evidence: tuple[EvidenceView, ...]


@dataclass(frozen=True, slots=True)
class AnswerView:
    """One question and the patient's answer; ``flagged_by`` names the rules it triggered."""

    item: str
    question: str
    answer: str
    state: str  # answered | missing | unsure | disabled
    flagged_by: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class GroupView:
    """A questionnaire group (a form page) and its answers."""

    title: str
    answers: tuple[AnswerView, ...]


@dataclass(frozen=True, slots=True)
class DetailView:
    """Everything the detail page shows."""

    screening_id: uuid.UUID
    reference: str
    date_of_birth: str | None
    created_at: datetime
    as_of: date
    decision: str
    has_exclude: bool
    ruleset: dict[str, str]
    fired: tuple[FlagView, ...]
    unknown: tuple[FlagView, ...]
    groups: tuple[GroupView, ...]
    history: tuple[review_service.ReviewView, ...]
    etag: str

    @property
    def is_open(self) -> bool:
        """Whether nobody has signed this screening off yet."""
        return not self.history


def format_answer(item: Item, value: Any) -> str:
    """The patient's answer as the form showed it (option texts, units)."""
    if value is None:
        return "Not answered"
    if item.type in {"yes_no", "yes_no_unsure"}:
        return _YES_NO.get(str(value), str(value))
    if item.type == "choice":
        return next((o.text for o in item.options if o.value == value), str(value))
    if item.type == "multi_choice":
        texts = {o.value: o.text for o in item.options}
        return "; ".join(texts.get(v, str(v)) for v in value)
    if item.type == "integer" and item.unit:
        return f"{value} {item.unit}"
    return str(value)


def _disabled(pack: Ruleset, answers: dict[str, Any], as_of: date) -> set[str]:
    try:
        validated = validate_answers(pack, answers, as_of=as_of)
    except AnswerErrors:  # stored answers were valid when stored; be lenient, never fail
        return set()
    return {item.id for item in pack.questionnaire.items if not validated.applies(item.id)}


def _flag(pack: Ruleset, flag: dict[str, Any]) -> FlagView:
    rule = next(r.rule for r in pack.rules if r.id == flag["rule"])
    items = pack.questionnaire.items
    by_id = {item.id: item for item in items}
    evidence = tuple(
        EvidenceView(
            e["item"],
            by_id[e["item"]].text,
            format_answer(by_id[e["item"]], e["answer"]),
            e["answer"] is None or e["answer"] == "unsure",
        )
        for e in flag["evidence"]
    )
    return FlagView(
        flag["rule"],
        rule.title,
        flag["severity"],
        flag["status"],
        flag["reason"],
        rule.rationale,
        rule.references,
        evidence,
    )


def _groups(
    pack: Ruleset, answers: dict[str, Any], flags: list[FlagView], disabled: set[str]
) -> tuple[GroupView, ...]:
    flagged: dict[str, list[str]] = {}
    for flag in flags:
        for e in flag.evidence:
            if flag.status == "fired" or e.is_unknown:
                flagged.setdefault(e.item, []).append(flag.title)
    groups = []
    for group in pack.questionnaire.groups:
        views = []
        for item in group.items:
            value = answers.get(item.id)
            state = (
                "disabled"
                if item.id in disabled
                else "missing"
                if value is None
                else ("unsure" if value == "unsure" else "answered")
            )
            text = "Does not apply" if state == "disabled" else format_answer(item, value)
            views.append(
                AnswerView(item.id, item.text, text, state, tuple(flagged.get(item.id, ())))
            )
        groups.append(GroupView(group.title, tuple(views)))
    return tuple(groups)


def build(
    session: Session,
    *,
    keyring: KeyRing,
    clinic_id: uuid.UUID,
    screening_id: uuid.UUID,
    actor: audit_service.Actor,
    request_id: str | None = None,
) -> DetailView:
    """The detail of one of the clinic's screenings; the read is audited. NotFound otherwise."""
    history = review_service.history(
        session, keyring=keyring, clinic_id=clinic_id, screening_id=screening_id
    )
    row = review_service.screening_row(session, clinic_id=clinic_id, screening_id=screening_id)
    content = store.ScreeningContent.decrypt(keyring, row)
    result, answers = content.result, content.answers
    pack = review_service.rule_pack(session, sha256=row.rule_pack_sha256)
    flags = [_flag(pack, flag) for flag in review_service.ordered_flags(result["flags"])]
    audit_service.record_screening_event(
        session,
        row=row,
        target_sha256=content.digest(),
        action="screening.read",
        actor=actor,
        request_id=request_id,
        detail={"via": "review_detail"},
    )
    return DetailView(
        row.id,
        str(result.get("subject", {}).get("reference", "")),
        answers.get("date_of_birth"),
        row.created_at,
        row.as_of_date,
        row.decision.value,
        row.has_exclude,
        dict(result["ruleset"]),
        tuple(f for f in flags if f.status == "fired"),
        tuple(f for f in flags if f.status == "unknown"),
        _groups(pack, answers, flags, _disabled(pack, answers, row.as_of_date)),
        tuple(history),
        review_service.etag(row.id, history[0].id if history else None),
    )
