"""CDS Hooks services: discovery, advice for patient-view and appointment-book, feedback.

Advice reads the patient's latest QuestionnaireResponse for our questionnaire from the
prefetch (evaluated, never stored), or else the latest stored screening of that subject in
the caller's clinic. Each call is an audit event (``cds.advised``) whose target is the card,
so that feedback on a card finds the call it answers (``cds.feedback_recorded``).
Contracts: never commits; Unauthorized, NotFound and ValidationFailed as documented.
"""

import json
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.account.service import principal_of
from app.audit import service as audit_service
from app.cds import cards
from app.cds.auth import Caller
from app.cds.schemas import FeedbackItem, FeedbackRequest, HookRequest
from app.crypto import KeyRing, field_aad
from app.db.models import AuditEvent, CdsClient, Screening, UserAccount
from app.engine import Ruleset
from app.errors import NotFound, ProblemItem, ValidationFailed
from app.fhir import response as fhir_response
from app.fhir.questionnaire import canonical_url
from app.review import service as review_service
from app.rulepack.service import stored_ruleset
from app.screening import service as screening_service
from app.screening import store

SUBJECT_SCAN_LIMIT = 1000
"""Stored screenings searched for a patient (subjects are encrypted, so they are decrypted)."""


@dataclass(frozen=True, slots=True)
class Service:
    """One CDS service of the discovery document."""

    id: str
    hook: str
    title: str
    description: str


SERVICES = {
    service.id: service
    for service in (
        Service(
            "ketamine-screening-patient-view",
            "patient-view",
            "Ketamine infusion candidacy",
            "Shows the patient's latest ketamine infusion candidacy screening: "
            "contraindications, what needs a physician's review, or a clean result.",
        ),
        Service(
            "ketamine-screening-appointment-book",
            "appointment-book",
            "Ketamine infusion candidacy at booking",
            "When an appointment is booked, shows the latest candidacy screening of the "
            "patient, or that none is on file.",
        ),
    )
}


def discovery(*, base_url: str, questionnaire_id: str) -> dict[str, Any]:
    """The discovery document: both services, each prefetching the latest response."""
    url = canonical_url(base_url, questionnaire_id)
    query = (
        "QuestionnaireResponse?subject={{context.patientId}}"
        f"&questionnaire={url}&status=completed&_sort=-authored&_count=1"
    )
    return {
        "services": [
            {
                "hook": service.hook,
                "id": service.id,
                "title": service.title,
                "description": service.description,
                "prefetch": {"questionnaireResponse": query},
                "usageRequirements": "Configure the EHR's JWT issuer and JWKS URL with "
                "`screening cds configure`.",
            }
            for service in SERVICES.values()
        ]
    }


def find_service(service_id: str) -> Service:
    """The service with this id; NotFound otherwise."""
    service = SERVICES.get(service_id)
    if service is None:
        raise NotFound("No CDS service with this id.")
    return service


def _invalid(message: str, pointer: str) -> ValidationFailed:
    return ValidationFailed(
        "The hook request is not valid.", errors=[ProblemItem("invalid_hook", message, pointer)]
    )


@dataclass(frozen=True, slots=True)
class Advice:
    """The request's context for building a card."""

    ruleset: Ruleset
    keyring: KeyRing
    base_url: str
    as_of: date
    request_id: str | None


def advise(
    session: Session, *, caller: Caller, service_id: str, hook: HookRequest, advice: Advice
) -> dict[str, Any]:
    """The cards for one hook call (always exactly one card); audited as ``cds.advised``."""
    service = find_service(service_id)
    if hook.hook != service.hook:
        raise _invalid(f"This service answers the {service.hook} hook.", "#/hook")
    patient_id = hook.context.get("patientId")
    if not isinstance(patient_id, str) or not 1 <= len(patient_id) <= 200:
        raise _invalid("context.patientId is required.", "#/context/patientId")
    card_uuid = str(uuid.uuid4())
    screening_id, origin, card = _prefetched(hook, patient_id, advice, card_uuid)
    ruleset_sha256 = advice.ruleset.sha256
    if card is None:
        screening_id, origin, card, ruleset_sha256 = _stored(
            session, caller, patient_id, advice, card_uuid
        )
    audit_service.append(
        session,
        action="cds.advised",
        actor=caller.actor,
        clinic_id=caller.clinic_id,
        target_type="cds_card",
        target_id=card_uuid,
        request_id=advice.request_id,
        ruleset_sha256=ruleset_sha256,
        detail={
            "service": service.id,
            "hook_instance": hook.hookInstance,
            "indicator": card["indicator"],
            "origin": origin,
            "screening_id": screening_id,
            "user": _user_of(hook),
        },
    )
    return {"cards": [card]}


def _user_of(hook: HookRequest) -> str | None:
    """The EHR user who triggered the hook (a practitioner reference), if given."""
    user = hook.context.get("userId")
    return user[:200] if isinstance(user, str) else None


def _latest_response(
    prefetched: object, questionnaire_id: str, patient_id: str
) -> dict[str, Any] | None:
    """The newest QuestionnaireResponse of this patient for our questionnaire.

    From a resource or a searchset Bundle; a response about another patient is ignored.
    """
    if not isinstance(prefetched, dict):
        return None
    candidates: list[object] = [prefetched]
    if prefetched.get("resourceType") == "Bundle":
        entries = prefetched.get("entry") or []
        candidates = [entry.get("resource") for entry in entries if isinstance(entry, dict)]
    marker = f"Questionnaire/{questionnaire_id}"
    responses = [
        one
        for one in candidates
        if isinstance(one, dict)
        and one.get("resourceType") == "QuestionnaireResponse"
        and marker in str(one.get("questionnaire", ""))
        and _subject_of(one) in (patient_id, f"Patient/{patient_id}")
    ]
    return max(responses, key=lambda one: str(one.get("authored", "")), default=None)


def _subject_of(resource: dict[str, Any]) -> object:
    subject = resource.get("subject")
    return subject.get("reference") if isinstance(subject, dict) else None


def _prefetched(
    hook: HookRequest, patient_id: str, advice: Advice, card_uuid: str
) -> tuple[str | None, str, dict[str, Any] | None]:
    resource = _latest_response((hook.prefetch or {}).get("questionnaireResponse"),
                                advice.ruleset.questionnaire.id, patient_id)  # fmt: skip
    if resource is None:
        return None, "none", None
    try:
        parsed = fhir_response.read(advice.ruleset, resource)
        evaluation = screening_service.evaluate_answers(
            advice.ruleset,
            questionnaire=parsed.questionnaire,
            answers=parsed.answers,
            as_of=advice.as_of,
        )
    except ValidationFailed:
        reason = "The patient's latest questionnaire response could not be evaluated."
        return None, "prefetch", cards.no_screening_card(card_uuid=card_uuid, reason=reason)
    card = cards.card(
        advice.ruleset, evaluation.result, card_uuid=card_uuid, origin="EHR form", review_url=None
    )
    return None, "prefetch", card


def _stored(
    session: Session, caller: Caller, patient_id: str, advice: Advice, card_uuid: str
) -> tuple[str | None, str, dict[str, Any], str]:
    """The card of the latest stored screening, worded by the pack it was decided with."""
    row = _latest_screening(session, advice.keyring, caller.clinic_id, patient_id)
    if row is None:
        reason = "No screening is stored for this patient at this clinic."
        card = cards.no_screening_card(card_uuid=card_uuid, reason=reason)
        return None, "none", card, advice.ruleset.sha256
    body = screening_service.get(
        session,
        keyring=advice.keyring,
        clinic_id=caller.clinic_id,
        screening_id=row.id,
        actor=caller.actor,
        request_id=advice.request_id,
    )
    review_url = f"{advice.base_url.rstrip('/')}/review/screenings/{row.id}"
    decided_with = stored_ruleset(session, sha256=row.rule_pack_sha256)
    card = cards.card(
        decided_with, body, card_uuid=card_uuid, origin="stored screening", review_url=review_url
    )
    return str(row.id), "stored", card, decided_with.sha256


def _latest_screening(
    session: Session, keyring: KeyRing, clinic_id: uuid.UUID, patient_id: str
) -> Screening | None:
    """The clinic's newest screening whose subject is ``Patient/<id>`` or ``<id>``."""
    wanted = {patient_id, f"Patient/{patient_id}"}
    rows = session.scalars(
        select(Screening)
        .where(Screening.clinic_id == clinic_id)
        .order_by(Screening.created_at.desc(), Screening.id.desc())
        .limit(SUBJECT_SCAN_LIMIT)
    )
    for row in rows:
        aad = field_aad("screening", "subject_ct", row.id)
        subject = json.loads(keyring.decrypt(row.key_id, row.subject_ct, aad))
        if subject.get("reference") in wanted:
            return row
    return None


@dataclass(frozen=True, slots=True)
class FeedbackContext:
    """What recording feedback needs besides the request: keys, time, request id."""

    keyring: KeyRing
    now: datetime
    request_id: str | None


def record_feedback(
    session: Session,
    *,
    caller: Caller,
    service_id: str,
    feedback: FeedbackRequest,
    context: FeedbackContext,
) -> int:
    """Audit each card outcome as ``cds.feedback_recorded``; NotFound for an unknown card.

    An override with one of our coded reasons, of a card about a stored screening, by an EHR
    user linked to a physician (``screening cds link-user``) is also recorded as that
    physician's review: cleared with that override reason, the comment as its (encrypted)
    note. The audit event keeps the coded reason, never the comment (it may hold PHI).
    """
    find_service(service_id)
    for item in feedback.feedback:
        advised = session.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "cds.advised",
                AuditEvent.target_type == "cds_card",
                AuditEvent.target_id == item.card,
                AuditEvent.clinic_id == caller.clinic_id,
            )
        ).first()
        if advised is None:
            raise NotFound("No card with this uuid was issued to this clinic.")
        reason = item.overrideReason.reason if item.overrideReason is not None else None
        review_id = _override_review(session, caller, item, advised.detail or {}, context)
        audit_service.append(
            session,
            action="cds.feedback_recorded",
            actor=caller.actor,
            clinic_id=caller.clinic_id,
            target_type="cds_card",
            target_id=item.card,
            request_id=context.request_id,
            detail={
                "service": service_id,
                "outcome": item.outcome,
                "override_reason": None if reason is None else reason.code[:100],
                "has_comment": bool(item.overrideReason and item.overrideReason.userComment),
                "screening_id": (advised.detail or {}).get("screening_id"),
                "review_id": review_id,
                "outcome_timestamp": item.outcomeTimestamp,
            },
        )
    return len(feedback.feedback)


def _override_review(
    session: Session,
    caller: Caller,
    item: FeedbackItem,
    advised: dict[str, Any],
    context: FeedbackContext,
) -> str | None:
    """Record an override as the linked physician's review; None when it does not apply."""
    override = item.overrideReason
    reason = None if override is None else override.reason
    screening_id, user = advised.get("screening_id"), advised.get("user")
    if item.outcome != "overridden" or reason is None or screening_id is None or user is None:
        return None
    if (
        reason.system not in (None, cards.OVERRIDE_SYSTEM)
        or reason.code not in review_service.OVERRIDE_REASONS
    ):
        return None
    client = session.get_one(CdsClient, caller.client_id)
    user_id = (client.practitioners or {}).get(user)
    account = None if user_id is None else session.get(UserAccount, uuid.UUID(user_id))
    if account is None or account.clinic_id != caller.clinic_id:
        return None
    target = uuid.UUID(screening_id)
    note = (override.userComment or "") if override is not None else ""
    recorded = review_service.record(
        session,
        keyring=context.keyring,
        reviewer=principal_of(account),
        screening_id=target,
        review=review_service.ReviewInput(
            review_service.Disposition.cleared, note[: review_service.MAX_NOTE], reason.code
        ),
        if_match=store.current_etag(session, clinic_id=caller.clinic_id, screening_id=target),
        now=context.now,
        request_id=context.request_id,
    )
    return str(recorded.review.id)
