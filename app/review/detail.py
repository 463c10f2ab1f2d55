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
from app.engine.model import MultiChoiceItem
from app.engine.ruleset import CompiledRule
from app.review import service as review_service
from app.review import wording
from app.screening import service as screening_service


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


def _disabled(pack: Ruleset, answers: dict[str, Any], as_of: date) -> set[str]:
    try:
        validated = validate_answers(pack, answers, as_of=as_of)
    except AnswerErrors:  # stored answers were valid when stored; be lenient, never fail
        return set()
    return {item.id for item in pack.questionnaire.items if not validated.applies(item.id)}


def _flag(
    pack: Ruleset,
    flag: dict[str, Any],
    answers: dict[str, Any],
    firing: dict[str, dict[str, tuple[str, ...]]],
) -> FlagView:
    rule = _rule(pack, flag["rule"])
    by_id = {item.id: item for item in pack.questionnaire.items}
    evidence = []
    for e in flag["evidence"]:
        item = by_id[e["item"]]
        value = answers.get(item.id, e["answer"]) if e["answer"] is not None else None
        if not isinstance(item, MultiChoiceItem) or not isinstance(value, list):
            answer = wording.format_answer(item, e["answer"])
            is_unknown = e["answer"] is None or wording.is_unsure(e["answer"])
            evidence.append(EvidenceView(item.id, item.text, answer, is_unknown))
            continue
        ticked = list(value)
        if flag["status"] == "fired":  # name the options that fired this rule
            ticked = [v for v in value if rule.title in firing.get(item.id, {}).get(v, ())]
        open_values = wording.open_options(rule, item, value) if wording.is_unsure(value) else ()
        evidence.append(
            EvidenceView(
                item.id,
                item.text,
                wording.format_answer(item, ticked or value),
                flag["status"] != "fired" and wording.is_unsure(value),
                True,
                tuple(wording.option_text(item, v) for v in open_values),
            )
        )
    return FlagView(
        flag["rule"],
        rule.title,
        flag["severity"],
        flag["status"],
        flag["reason"],
        rule.rule.rationale,
        rule.rule.references,
        tuple(evidence),
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


def _groups(
    pack: Ruleset,
    answers: dict[str, Any],
    flags: list[FlagView],
    disabled: set[str],
    firing: dict[str, dict[str, tuple[str, ...]]],
) -> tuple[GroupView, ...]:
    flagged: dict[str, list[str]] = {}
    left_open: dict[str, list[str]] = {}
    for flag in flags:
        for e in flag.evidence:
            if flag.status == "fired" or e.is_unknown:
                flagged.setdefault(e.item, []).append(flag.title)
            if flag.status == "unknown" and wording.is_unsure(answers.get(e.item)):
                left_open.setdefault(e.item, []).append(flag.title)
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
            text = "Does not apply" if state == "disabled" else wording.format_answer(item, value)
            ticked: tuple[wording.ChoiceView, ...] = ()
            if (
                isinstance(item, MultiChoiceItem)
                and isinstance(value, list)
                and state != "disabled"
            ):
                ticked = wording.choices(
                    item, value, firing.get(item.id, {}), tuple(left_open.get(item.id, ()))
                )
            views.append(
                AnswerView(item.id, item.text, text, state, tuple(flagged.get(item.id, ())), ticked)
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
    content = screening_service.stored_content(keyring, row)
    result: dict[str, Any] = content["result"]  # type: ignore[assignment]
    answers: dict[str, Any] = content["answers"]  # type: ignore[assignment]
    pack = review_service.rule_pack(session, sha256=row.rule_pack_sha256)
    ordered = review_service.ordered_flags(result["flags"])
    fired = [_rule(pack, flag["rule"]) for flag in ordered if flag["status"] == "fired"]
    firing = wording.firing_options(fired, answers)
    flags = [_flag(pack, flag, answers, firing) for flag in ordered]
    audit_service.record_screening_event(
        session,
        row=row,
        content=content,
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
        _unsure(pack, answers, flags),
        _groups(pack, answers, flags, _disabled(pack, answers, row.as_of_date), firing),
        tuple(history),
        review_service.etag(row.id, history[0].id if history else None),
    )
