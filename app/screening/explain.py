"""Explain a stored screening: re-evaluate its answers with the rule pack it was made with.

The stored answers are validated and evaluated again with the *stored* rule pack version
(rebuilt from the ``rule_pack`` row by its sha256, never the pack loaded today) and the
stored as-of date, so the explanation of a screening made years ago under an older pack is
exactly the one it was decided with. The re-computed result is compared with the stored
one; ``matches_stored`` is false only if the stored record or the engine changed.
"""

import uuid
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from app.audit import service as audit_service
from app.crypto import KeyRing
from app.engine import AnswerErrors, Decision, Ruleset, evaluate, validate_answers
from app.rulepack import service as rulepack_service
from app.screening import store

RESULT_KEYS = ("decision", "flags", "ruleset", "as_of")


def explain(
    session: Session,
    *,
    keyring: KeyRing,
    clinic_id: uuid.UUID,
    screening_id: uuid.UUID,
    actor: audit_service.Actor,
    request_id: str | None = None,
) -> dict[str, Any]:
    """Return the full trace of one of the clinic's screenings; audit it as explained.

    Raises:
        NotFound: For another clinic's screening or an unknown id.
    """
    row = store.screening_row(session, clinic_id=clinic_id, screening_id=screening_id)
    content = store.ScreeningContent.decrypt(keyring, row)
    stored = {key: content.result[key] for key in RESULT_KEYS}
    ruleset = rulepack_service.stored_ruleset(session, sha256=row.rule_pack_sha256)
    body = trace(ruleset, content.answers, as_of=row.as_of_date, stored=stored)
    audit_service.record_screening_event(
        session,
        row=row,
        target_sha256=content.digest(),
        action="screening.explained",
        actor=actor,
        request_id=request_id,
        detail={"matches_stored": body["matches_stored"]},
    )
    return {"id": str(row.id)} | body


def trace(ruleset: Ruleset, answers: Any, *, as_of: date, stored: dict[str, Any]) -> dict[str, Any]:
    """Validate and evaluate ``answers`` again and describe every rule (pure).

    Answers that no longer validate (an altered record) give ``result: null``, the error
    codes in ``answer_errors`` and ``matches_stored: false``; nothing is raised, so an auditor
    still sees the stored result.
    """
    try:
        validated = validate_answers(ruleset, answers, as_of=as_of)
    except AnswerErrors as error:
        codes = [{"code": err.code, "item": err.item} for err in error.errors]
        return _body(None, stored, [], codes, ruleset, as_of)
    decision = evaluate(ruleset, validated, as_of=as_of)
    return _body(decision.to_dict(), stored, _rules(ruleset, decision), [], ruleset, as_of)


def _body(
    result: dict[str, Any] | None,
    stored: dict[str, Any],
    rules: list[dict[str, Any]],
    answer_errors: list[dict[str, str]],
    ruleset: Ruleset,
    as_of: date,
) -> dict[str, Any]:
    return {
        "matches_stored": result == stored,
        "result": result,
        "stored": stored,
        "as_of": as_of.isoformat(),
        "ruleset": ruleset.ref.to_dict(),
        "rules": rules,
        "answer_errors": answer_errors,
    }


def _rules(ruleset: Ruleset, decision: Decision) -> list[dict[str, Any]]:
    flags = {flag.rule: flag for flag in decision.flags}
    rules = []
    for compiled in ruleset.rules:
        rule, flag = compiled.rule, flags.get(compiled.id)
        evidence = [] if flag is None else flag.evidence
        rules.append(
            {
                "rule": rule.id,
                "title": rule.title,
                "severity": rule.severity,
                "status": decision.statuses[rule.id].value,
                "rationale": rule.rationale,
                "references": list(rule.references),
                "reason": None if flag is None else flag.reason,
                "evidence": [
                    {
                        "item": item.item,
                        "question": ruleset.items[item.item].item.text,
                        "answer": item.answer,
                    }
                    for item in evidence
                ],
            }
        )
    return rules
