"""CDS Hooks 2.0 cards from a screening result (pure: no I/O).

``critical`` when an exclusion fired, ``warning`` when a physician must look (a review rule
fired or an answer is unknown), ``info`` for a candidate. The detail lists every flagged rule
with its reason and its evidence in the questionnaire's words.
"""

from typing import Any

from app.engine import Ruleset
from app.review.service import OVERRIDE_REASONS
from app.review.wording import format_answer

OVERRIDE_SYSTEM = "urn:candidacy-screening:override-reason"
TOPIC = {
    "system": "urn:candidacy-screening:topic",
    "code": "ketamine-infusion-candidacy",
    "display": "Ketamine infusion candidacy screening",
}
_DECISION_WORDS = {
    "not_candidate": "not a candidate",
    "needs_review": "needs a physician's review",
    "candidate": "candidate",
}


def indicator_of(result: dict[str, Any]) -> str:
    """Critical (an exclusion fired), warning (needs review), info (candidate)."""
    if any(f["severity"] == "exclude" and f["status"] == "fired" for f in result["flags"]):
        return "critical"
    return "info" if result["decision"] == "candidate" else "warning"


def _summary(result: dict[str, Any], indicator: str, origin: str) -> str:
    if indicator == "critical":
        fired = sum(f["status"] == "fired" and f["severity"] == "exclude" for f in result["flags"])
        text = f"Ketamine infusion: contraindication found ({fired} exclusion rule(s))"
    elif indicator == "warning":
        unknown = sum(1 for f in result["flags"] if f["status"] == "unknown")
        text = "Ketamine infusion: physician review needed" + (
            f" ({unknown} rule(s) with unknown answers)" if unknown else ""
        )
    else:
        text = "Ketamine infusion screening: candidate, no rule flagged"
    return f"{text} [{origin}]"[:139]


def _evidence_words(ruleset: Ruleset, evidence: dict[str, Any]) -> str:
    compiled = ruleset.items.get(evidence["item"])
    if compiled is None:
        return str(evidence["item"])
    answer = evidence.get("answer")
    words: str = "not answered" if answer is None else format_answer(compiled.item, answer)
    return f"{compiled.item.text} {words}"


def _detail(ruleset: Ruleset, result: dict[str, Any]) -> str:
    titles = {rule.id: rule.title for rule in ruleset.rules}
    ruleset_ref = result["ruleset"]
    lines = [
        f"**Decision: {_DECISION_WORDS.get(result['decision'], result['decision'])}** "
        f"(as of {result['as_of']}; rule pack {ruleset_ref['id']} {ruleset_ref['version']}).",
        "",
    ]
    for flag in result["flags"]:
        status = "fired" if flag["status"] == "fired" else "unknown: answers missing or unsure"
        lines.append(
            f"- **{titles.get(flag['rule'], flag['rule'])}** ({flag['severity']}, {status}): "
            f"{flag['reason']}"
        )
        lines += [f"  - {_evidence_words(ruleset, one)}" for one in flag["evidence"]]
    if not result["flags"]:
        lines.append("No rule fired and no answer needed for a rule is missing.")
    return "\n".join(lines)


def card(
    ruleset: Ruleset,
    result: dict[str, Any],
    *,
    card_uuid: str,
    origin: str,
    review_url: str | None,
) -> dict[str, Any]:
    """The card of a result; ``origin`` says where the answers came from (shown in summary)."""
    indicator = indicator_of(result)
    built: dict[str, Any] = {
        "uuid": card_uuid,
        "summary": _summary(result, indicator, origin),
        "detail": _detail(ruleset, result),
        "indicator": indicator,
        "source": {"label": "Ketamine infusion candidacy screening", "topic": TOPIC},
    }
    if indicator != "info":
        built["overrideReasons"] = [
            {"code": code, "system": OVERRIDE_SYSTEM, "display": display}
            for code, display in OVERRIDE_REASONS.items()
        ]
    if review_url is not None:
        built["links"] = [
            {"label": "Open the physician review", "url": review_url, "type": "absolute"}
        ]
    return built


def no_screening_card(*, card_uuid: str, reason: str) -> dict[str, Any]:
    """The card when no screening can be shown: send the patient the questionnaire."""
    return {
        "uuid": card_uuid,
        "summary": "Ketamine infusion: no screening on file for this patient",
        "detail": f"{reason} Send the patient the screening questionnaire before booking.",
        "indicator": "warning",
        "source": {"label": "Ketamine infusion candidacy screening", "topic": TOPIC},
    }
