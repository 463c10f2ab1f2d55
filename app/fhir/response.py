"""QuestionnaireResponse ↔ our answers object, and the OperationOutcome of rejected input.

Reading a response only reshapes it: every answer is passed on as the JSON value it carries
(a Coding's code, an integer, a date string), so the screening service's own validator judges
it exactly as it judges ``POST /v1/screenings``. Problems name the item's ``linkId`` in a
FHIRPath ``expression`` and never repeat a submitted value.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from app import text
from app.engine import Ruleset
from app.engine.model import DateItem, IntegerItem, Item, MultiChoiceItem
from app.errors import AppError, ProblemItem, ValidationFailed
from app.fhir.questionnaire import ANSWER_SYSTEM, canonical_url

_ROOT = "QuestionnaireResponse"
_VALUE_KEYS = ("valueCoding", "valueInteger", "valueDate", "valueString", "valueBoolean",
               "valueDecimal", "valueDateTime", "valueTime", "valueQuantity", "valueUri",
               "valueAttachment", "valueReference")  # fmt: skip
_ISSUE_CODES = {401: "login", 403: "forbidden", 404: "not-found", 413: "too-long", 409: "conflict"}


@dataclass(frozen=True, slots=True)
class Parsed:
    """A QuestionnaireResponse read into the v1 submission shape, and where each linkId was."""

    questionnaire: str
    answers: dict[str, Any]
    subject: dict[str, Any]
    paths: dict[str, str] = field(default_factory=dict)


def _problem(code: str, message: str, where: str) -> ProblemItem:
    return ProblemItem(code, message, pointer=where)


def _fail(code: str, message: str, where: str = _ROOT) -> ValidationFailed:
    return ValidationFailed(
        "The QuestionnaireResponse is not valid; nothing was evaluated or stored.",
        errors=[_problem(code, message, where)],
    )


def read(ruleset: Ruleset, resource: object) -> Parsed:
    """Read a QuestionnaireResponse; ValidationFailed if its envelope is unusable.

    The answers themselves are checked later by the screening service.
    """
    if not isinstance(resource, dict) or resource.get("resourceType") != _ROOT:
        raise _fail("not_a_questionnaire_response", "The body must be a QuestionnaireResponse.")
    if resource.get("status") not in ("completed", "amended"):
        raise _fail("not_completed", "status must be completed or amended.", f"{_ROOT}.status")
    reference = (resource.get("subject") or {}).get("reference")
    if not isinstance(reference, str) or not 1 <= len(reference) <= 200:
        message = "subject.reference must be a string of 1 to 200 characters."
        raise _fail("missing_subject", message, f"{_ROOT}.subject")
    try:
        reference = text.clean_line(reference)
    except text.TextError as error:
        raise _fail(error.code, f"subject.reference {error.message}", f"{_ROOT}.subject") from None
    questionnaire = _questionnaire_id(ruleset, resource.get("questionnaire"))
    answers: dict[str, Any] = {}
    paths: dict[str, str] = {}
    problems: list[ProblemItem] = []
    for link_id, where, entries in _answered(resource.get("item"), _ROOT, problems):
        if link_id in answers:
            problems.append(_problem("duplicate_item", f"{_name(link_id)} appears twice.", where))
            continue
        paths[link_id] = where
        answers[link_id] = _value_of(ruleset, link_id, entries, where, problems)
    if problems:
        raise ValidationFailed(
            "The QuestionnaireResponse is not valid; nothing was evaluated or stored.",
            errors=problems,
        )
    return Parsed(questionnaire, answers, {"reference": reference}, paths)


def _name(link_id: str) -> str:
    return f"linkId {link_id[:64]!r}"


def _questionnaire_id(ruleset: Ruleset, canonical: object) -> str:
    where = f"{_ROOT}.questionnaire"
    if not isinstance(canonical, str) or "Questionnaire/" not in canonical:
        raise _fail("unknown_questionnaire", "questionnaire must be our Questionnaire.", where)
    url, _, version = canonical.partition("|")
    questionnaire = url.rsplit("Questionnaire/", 1)[1]
    if version and version not in (ruleset.sha256, ruleset.version):
        message = "This version of the questionnaire is not the one this service evaluates."
        raise _fail("unknown_questionnaire_version", message, where)
    return questionnaire


def _answered(
    items: object, parent: str, problems: list[ProblemItem]
) -> Iterator[tuple[str, str, list[Any]]]:
    """Every (linkId, FHIRPath, answers) of items with answers, groups walked depth first."""
    if items is None:
        return
    if not isinstance(items, list):
        problems.append(_problem("wrong_type", "item must be a list.", parent))
        return
    for entry in items:
        link_id = entry.get("linkId") if isinstance(entry, dict) else None
        if not isinstance(link_id, str) or not link_id:
            problems.append(_problem("wrong_type", "Every item needs a linkId.", f"{parent}.item"))
            continue
        where = f"{parent}.item.where(linkId='{_quoted(link_id)}')"
        answers = entry.get("answer")
        if answers:
            if not isinstance(answers, list):
                problems.append(_problem("wrong_type", "answer must be a list.", where))
                continue
            yield link_id, where, answers
        yield from _answered(entry.get("item"), where, problems)


def _quoted(link_id: str) -> str:
    return link_id[:64].replace("\\", "\\\\").replace("'", "\\'")


def _value_of(
    ruleset: Ruleset, link_id: str, entries: list[Any], where: str, problems: list[ProblemItem]
) -> Any:
    values = []
    for entry in entries:
        keys = [key for key in _VALUE_KEYS if isinstance(entry, dict) and key in entry]
        if len(keys) != 1:
            problems.append(_problem("wrong_type", "Each answer needs exactly one value.", where))
            return None
        value = entry[keys[0]]
        if keys[0] == "valueCoding":
            system = value.get("system") if isinstance(value, dict) else None
            if not isinstance(value, dict) or system not in (None, ANSWER_SYSTEM):
                message = f"{_name(link_id)}: answer codes must be from {ANSWER_SYSTEM}."
                problems.append(_problem("bad_choice", message, where))
                return None
            value = value.get("code")
        values.append(value)
    compiled = ruleset.items.get(link_id)
    if compiled is not None and isinstance(compiled.item, MultiChoiceItem):
        return values
    if len(values) > 1:
        problems.append(_problem("wrong_type", f"{_name(link_id)} takes one answer.", where))
        return None
    return values[0]


def locate(error: AppError, paths: dict[str, str]) -> AppError:
    """Point the service's answer problems (``item``) at the response's items (``linkId``)."""
    moved = {"#/questionnaire": f"{_ROOT}.questionnaire"}
    error.errors = [
        replace(problem, pointer=paths[problem.item])
        if problem.item is not None and problem.item in paths
        else replace(problem, pointer=moved.get(problem.pointer or "", problem.pointer))
        for problem in error.errors
    ]
    return error


def outcome(error: AppError) -> dict[str, Any]:
    """The OperationOutcome of an error: one issue per problem; never a submitted value."""
    severity = "error"
    code = "invalid" if error.status in (400, 422) else _ISSUE_CODES.get(error.status, "exception")
    problems = error.errors or [ProblemItem(error.slug, error.detail)]
    return {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": severity,
                "code": code,
                "details": {
                    "coding": [{"system": "urn:candidacy-screening:problem", "code": p.code}],
                    "text": p.message,
                },
                "diagnostics": error.detail,
                **({"expression": [_expression(p)]} if _expression(p) else {}),
            }
            for p in problems
        ],
    }


def _expression(problem: ProblemItem) -> str | None:
    if problem.pointer is not None and problem.pointer.startswith(_ROOT):
        return problem.pointer
    if problem.item is not None:
        return f"{_ROOT}.repeat(item).where(linkId='{_quoted(problem.item)}')"
    return None


def build(
    ruleset: Ruleset, *, base_url: str, screening: dict[str, Any], answers: dict[str, Any]
) -> dict[str, Any]:
    """The stored screening as a QuestionnaireResponse (answers in questionnaire order)."""
    groups = []
    for group in ruleset.questionnaire.groups:
        items = [
            {
                "linkId": item.id,
                "answer": [_answer(item, one) for one in _as_list(answers[item.id])],
            }
            for item in group.items
            if answers.get(item.id) is not None
        ]
        if items:
            groups.append({"linkId": group.id, "item": items})
    url = canonical_url(base_url, ruleset.questionnaire.id)
    return {
        "resourceType": _ROOT,
        "id": screening["id"],
        "questionnaire": f"{url}|{screening['ruleset']['sha256']}",
        "status": "completed",
        "subject": {"reference": screening["subject"]["reference"]},
        "authored": screening["created_at"],
        "item": groups,
    }


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _answer(item: Item, value: Any) -> dict[str, Any]:
    if isinstance(item, IntegerItem):
        return {"valueInteger": value}
    if isinstance(item, DateItem):
        return {"valueDate": value}
    return {"valueCoding": {"system": ANSWER_SYSTEM, "code": value}}


def malformed() -> ValidationFailed:
    """The error for a body that is not JSON."""
    return _fail("malformed_json", "The body must be a JSON QuestionnaireResponse.")
