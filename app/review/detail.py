"""The review detail of one screening: flags with their evidence, every answer, the history.

Everything a physician reads comes from the rule pack the screening was evaluated with (its
stored content, by sha256), not from today's pack: the question wording the patient saw,
the rule titles, rationales and references.
"""

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit import service as audit_service
from app.crypto import KeyRing
from app.db.models import AuditEvent
from app.engine import AnswerErrors, Ruleset, validate_answers
from app.engine.conditions import DISABLED
from app.engine.model import DateItem, Item, MultiChoiceItem
from app.engine.ruleset import CompiledRule
from app.review import context, wording
from app.review import service as review_service
from app.screening import store

SOURCES = {"api": "Clinic software (API)", "form": "Patient form", "fhir": "FHIR"}

READING_CONFIRMED_ACTION = "form.reading_confirmed"
"""The audit action the patient form records when a patient confirms an unusual reading."""


@dataclass(frozen=True, slots=True)
class EvidenceView:
    """An answer that decided a flag, or one that is missing or unsure.

    For a checklist (``is_list``) of a fired flag, ``answer`` names the ticked options that
    fired it; of an unknown flag, every ticked option, and ``open_options`` the options the
    rule lists that the patient, being unsure, neither ticked nor ruled out.
    """

    item: str
    question: str
    answer: str
    is_unknown: bool
    is_list: bool = False
    open_options: tuple[str, ...] = ()


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
    """One question and the patient's answer; ``flagged_by`` names the rules it triggered.

    A checklist answer also comes as ``choices``: the ticked options in words, each marked
    with the rules it fired (or, for "I'm not sure", the rules it left open).
    """

    item: str
    question: str
    answer: str
    state: str  # answered | missing | unsure | disabled
    flagged_by: tuple[str, ...]
    choices: tuple[wording.ChoiceView, ...] = ()


@dataclass(frozen=True, slots=True)
class UnsureView:
    """A question the patient was not sure about and the unknown rules that uncertainty leaves.

    ``rules`` are the titles of those rules; for a checklist, ``open_options`` says which of
    its listed conditions are not ruled out, each with the rules it leaves open.
    """

    item: str
    question: str
    answer: str
    rules: tuple[str, ...]
    open_options: tuple[wording.OpenOption, ...]


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
    age: str
    form_reference: str
    source: str
    created_at: datetime
    as_of: date
    decision: str
    has_exclude: bool
    ruleset: dict[str, str]
    fired: tuple[FlagView, ...]
    unknown: tuple[FlagView, ...]
    unsure: tuple[UnsureView, ...]
    groups: tuple[GroupView, ...]
    history: tuple[review_service.ReviewView, ...]
    etag: str

    @property
    def is_open(self) -> bool:
        """Whether nobody has signed this screening off yet."""
        return not self.history


def _states(pack: Ruleset, answers: dict[str, Any], as_of: date) -> dict[str, object]:
    try:
        return validate_answers(pack, answers, as_of=as_of).state
    except AnswerErrors:  # stored answers were valid when stored; be lenient, never fail
        return {}


@dataclass(frozen=True, slots=True)
class _Facts:
    """What every flag and answer is worded from: the pack, the answers and the as-of date."""

    pack: Ruleset
    answers: dict[str, Any]
    as_of: date
    firing: dict[str, dict[str, tuple[str, ...]]]
    not_asked: dict[str, str]
    readings: tuple[str, ...]
    is_reading_confirmed: bool = False

    def say(self, item: Item, value: Any) -> str:
        """An answer in words: dates in context, "Not asked" for a question never shown."""
        if value is None and item.id in self.not_asked:
            return self.not_asked[item.id]
        if isinstance(item, DateItem) and value is not None:
            return context.date_answer(item.id, value, self.as_of)
        return wording.format_answer(item, value)


def _flag(facts: _Facts, flag: dict[str, Any]) -> FlagView:
    pack, answers = facts.pack, facts.answers
    rule = _rule(pack, flag["rule"])
    by_id = {item.id: item for item in pack.questionnaire.items}
    evidence: list[EvidenceView] = []
    for e in flag["evidence"]:
        item = by_id[e["item"]]
        value = answers.get(item.id, e["answer"]) if e["answer"] is not None else None
        if item.id in facts.readings:  # both numbers as one reading, once per flag
            if not any(v.item == "reading" for v in evidence):
                evidence.append(_reading(facts, flag))
        elif not isinstance(item, MultiChoiceItem) or not isinstance(value, list):
            is_unknown = e["answer"] is None or wording.is_unsure(e["answer"])
            evidence.append(
                EvidenceView(item.id, item.text, facts.say(item, e["answer"]), is_unknown)
            )
        else:
            evidence.append(_checklist_evidence(facts, rule, flag, item, value))
    titles = {r.id: r.title for r in pack.rules}
    return FlagView(
        flag["rule"],
        rule.title,
        flag["severity"],
        flag["status"],
        flag["reason"],
        context.titles_for_ids(rule.rule.rationale, titles),
        rule.rule.references,
        tuple(evidence),
    )


def _reading(facts: _Facts, flag: dict[str, Any]) -> EvidenceView:
    values = {e["item"]: e["answer"] for e in flag["evidence"]}
    is_unknown = any(values.get(i, facts.answers.get(i)) is None for i in facts.readings)
    shown = {i: facts.answers.get(i) for i in facts.readings}
    text = context.reading(shown, facts.readings)
    if facts.is_reading_confirmed:
        text += f" ({context.READING_CONFIRMED})"
    return EvidenceView("reading", context.READING_QUESTION, text, is_unknown)


def _checklist_evidence(
    facts: _Facts, rule: CompiledRule, flag: dict[str, Any], item: MultiChoiceItem, value: list[str]
) -> EvidenceView:
    ticked = list(value)
    if flag["status"] == "fired":  # name the options that fired this rule
        ticked = [v for v in value if rule.title in facts.firing.get(item.id, {}).get(v, ())]
    open_values = wording.open_options(rule, item, value) if wording.is_unsure(value) else ()
    return EvidenceView(
        item.id,
        item.text,
        wording.format_answer(item, ticked or value),
        flag["status"] != "fired" and wording.is_unsure(value),
        True,
        tuple(wording.option_text(item, v) for v in open_values),
    )


def _rule(pack: Ruleset, rule_id: str) -> CompiledRule:
    return next(r for r in pack.rules if r.id == rule_id)


def _unsure(
    pack: Ruleset, answers: dict[str, Any], flags: list[FlagView]
) -> tuple[UnsureView, ...]:
    """Per question the patient was unsure about, the unknown rules it leaves open."""
    rules: dict[str, list[CompiledRule]] = {}
    for flag in flags:
        for e in flag.evidence:
            if flag.status == "unknown" and wording.is_unsure(answers.get(e.item)):
                rules.setdefault(e.item, []).append(_rule(pack, flag.rule))
    views = []
    for item in pack.questionnaire.items:
        if item.id not in rules:
            continue
        value = answers[item.id]
        opened: tuple[wording.OpenOption, ...] = ()
        if isinstance(item, MultiChoiceItem) and isinstance(value, list):
            titles: dict[str, list[str]] = {}
            for rule in rules[item.id]:
                for option in wording.open_options(rule, item, value):
                    titles.setdefault(option, []).append(rule.title)
            opened = tuple(
                wording.OpenOption(option.text, tuple(titles[option.value]))
                for option in item.options
                if option.value in titles
            )
        views.append(
            UnsureView(
                item.id,
                item.text,
                wording.format_answer(item, value),
                tuple(rule.title for rule in rules[item.id]),
                opened,
            )
        )
    return tuple(views)


def _state(facts: _Facts, states: dict[str, object], item: Item) -> str:
    value = facts.answers.get(item.id)
    if states.get(item.id) is DISABLED:
        return "disabled"
    if value is None:
        return "not_asked" if item.id in facts.not_asked else "missing"
    return "unsure" if value == "unsure" else "answered"


def _groups(
    facts: _Facts, flags: list[FlagView], states: dict[str, object]
) -> tuple[GroupView, ...]:
    flagged: dict[str, list[str]] = {}
    left_open: dict[str, list[str]] = {}
    for flag in flags:
        for e in flag.evidence:
            items = facts.readings if e.item == "reading" else (e.item,)
            for item_id in items:
                if flag.status == "fired" or e.is_unknown:
                    flagged.setdefault(item_id, []).append(flag.title)
                if flag.status == "unknown" and wording.is_unsure(facts.answers.get(item_id)):
                    left_open.setdefault(item_id, []).append(flag.title)
    groups = []
    for group in facts.pack.questionnaire.groups:
        views = []
        for item in group.items:
            value = facts.answers.get(item.id)
            state = _state(facts, states, item)
            text = "Does not apply" if state == "disabled" else facts.say(item, value)
            ticked: tuple[wording.ChoiceView, ...] = ()
            if isinstance(item, MultiChoiceItem) and isinstance(value, list):
                ticked = wording.choices(
                    item, value, facts.firing.get(item.id, {}), tuple(left_open.get(item.id, ()))
                )
            flagged_by = tuple(flagged.get(item.id, ()))
            views.append(AnswerView(item.id, item.text, text, state, flagged_by, ticked))
        groups.append(GroupView(group.title, tuple(views)))
    return tuple(groups)


def _is_reading_confirmed(session: Session, screening_id: uuid.UUID) -> bool:
    """Whether the patient confirmed an unusual reading when the form asked them to check."""
    found = session.scalars(
        select(AuditEvent.seq).where(
            AuditEvent.target_type == "screening",
            AuditEvent.target_id == str(screening_id),
            AuditEvent.action == READING_CONFIRMED_ACTION,
        )
    ).first()
    return found is not None


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
    ordered = review_service.ordered_flags(result["flags"])
    fired = [_rule(pack, flag["rule"]) for flag in ordered if flag["status"] == "fired"]
    states = _states(pack, answers, row.as_of_date)
    facts = _Facts(
        pack,
        answers,
        row.as_of_date,
        wording.firing_options(fired, answers),
        context.not_asked(pack, states, row.as_of_date) if states else {},
        context.reading_ids(pack),
        _is_reading_confirmed(session, row.id),
    )
    flags = [_flag(facts, flag) for flag in ordered]
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
        answers.get(context.DATE_OF_BIRTH),
        context.age_line(answers.get(context.DATE_OF_BIRTH), row.as_of_date),
        store.reference_number(row.id),
        SOURCES.get(row.source.value, row.source.value),
        row.created_at,
        row.as_of_date,
        row.decision.value,
        row.has_exclude,
        dict(result["ruleset"]),
        tuple(f for f in flags if f.status == "fired"),
        tuple(f for f in flags if f.status == "unknown"),
        _unsure(pack, answers, flags),
        _groups(facts, flags, states),
        tuple(history),
        review_service.etag(row.id, history[0].id if history else None),
    )
