"""Submit, read and list screenings; store and fetch rule packs.

Contracts: every function takes the caller's session and never commits. Every PHI read and
every write records an audit event in that same transaction. Reads are always filtered by the
caller's clinic: another clinic's screening is NotFound. Bodies are JSON-ready dicts whose
stored plaintext is exactly what the API returns, so an idempotent replay is byte-identical.
"""

import json
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.audit import canonical
from app.audit import service as audit_service
from app.crypto import KeyRing, field_aad
from app.db.models import (
    Decision,
    FlagSeverity,
    FlagStatus,
    Review,
    Screening,
    ScreeningFlag,
    Source,
)
from app.db.prepared import Prepared, pipeline_to_commit
from app.engine import AnswerErrors, Ruleset, evaluate, validate_answers
from app.errors import IdempotencyKeyReused, NotFound, ProblemItem, ValidationFailed
from app.screening import idempotency

_PHI_COLUMNS = ("subject_ct", "answers_ct", "result_ct")
# Statements built once: building and cache-keying them per call showed in profiles.
_SCREENING_TABLE = cast(Table, Screening.__table__)
_FLAG_TABLE = cast(Table, ScreeningFlag.__table__)
_INSERT_SCREENING = Prepared(insert(_SCREENING_TABLE), [c.name for c in _SCREENING_TABLE.c])
_INSERT_FLAG = Prepared(insert(_FLAG_TABLE), [c.name for c in _FLAG_TABLE.c])


@dataclass(frozen=True, slots=True)
class Submission:
    """A parsed screening request; ``raw`` is the body the idempotency fingerprint covers."""

    questionnaire: str
    answers: dict[str, Any]
    subject: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Created:
    """The stored screening's body, and whether it replays an earlier request."""

    body: dict[str, Any]
    is_replay: bool


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The result JSON of an evaluation and the validated answers it was made from."""

    result: dict[str, Any]
    answers: dict[str, Any]


def evaluate_answers(
    ruleset: Ruleset, *, questionnaire: str, answers: dict[str, Any], as_of: date
) -> Evaluation:
    """Validate and evaluate (nothing stored). Raises ValidationFailed naming each bad item."""
    if questionnaire != ruleset.questionnaire.id:
        raise ValidationFailed(
            "Unknown questionnaire.",
            errors=[
                ProblemItem(
                    "unknown_questionnaire",
                    f"This service serves the questionnaire {ruleset.questionnaire.id!r}.",
                    pointer="#/questionnaire",
                )
            ],
        )
    try:
        validated = validate_answers(ruleset, answers, as_of=as_of)
    except AnswerErrors as error:
        raise ValidationFailed(
            "Some answers are not valid; nothing was evaluated or stored.",
            errors=[_answer_problem(err.code, err.item, err.message) for err in error.errors],
        ) from None
    return Evaluation(evaluate(ruleset, validated, as_of=as_of).to_dict(), validated.values)


def _answer_problem(code: str, item: str, message: str) -> ProblemItem:
    pointer = f"#/answers/{item}" if item else "#/answers"
    return ProblemItem(code, message, pointer=pointer, item=item or None)


def submit(
    connection: Connection,
    *,
    ruleset: Ruleset,
    keyring: KeyRing,
    clinic_id: uuid.UUID,
    actor: audit_service.Actor,
    submission: Submission,
    idempotency_key: str | None,
    now: datetime,
    as_of: date,
    request_id: str | None = None,
    source: Source = Source.api,
) -> Created:
    """Evaluate and store a screening with its flags and audit event, honouring idempotency.

    Raises ValidationFailed on invalid answers and IdempotencyKeyReused when the key was used
    with another body. A retry with the same key and body returns the stored screening.

    Takes a Core connection in a transaction (the request's, or ``session.connection()``
    after a ``flush()``): the write is prepared statements only; the rare replay reads
    through an ORM session joined to that transaction.
    """
    key_row = idempotency.key_row(
        clinic_id,
        idempotency_key,
        {
            "questionnaire": submission.questionnaire,
            "answers": submission.answers,
            "subject": submission.subject,
        },
    )

    def replay_if_stored() -> Created | None:
        """The stored screening's replay if the key was used before (422 for another body)."""
        if key_row is None:
            return None
        earlier = idempotency.earlier_request(connection, clinic_id, key_row["key"])
        if earlier is None:
            return None
        return _replay(connection, keyring, earlier, key_row["request_sha256"], actor, request_id)

    # Rules, encryption and digests run before the first statement, so that the rows and the
    # audit chain head (locked until commit on PostgreSQL) are written in one short burst.
    try:
        evaluation = evaluate_answers(
            ruleset,
            questionnaire=submission.questionnaire,
            answers=submission.answers,
            as_of=as_of,
        )
    except ValidationFailed:
        # A retry of a stored request replays it even if its answers no longer validate
        # today, and a reused key wins over the new body's errors, as before evaluation.
        replayed = replay_if_stored()
        if replayed is not None:
            return replayed
        raise
    result, answers = evaluation.result, evaluation.answers
    screening_id = uuid.uuid4()
    body = {
        "id": str(screening_id),
        "created_at": canonical.format_datetime(now),
        "subject": submission.subject,
        "review": None,
        **result,
    }
    row = _encrypted_row(
        keyring,
        screening_id,
        clinic_id,
        now,
        as_of,
        ruleset.sha256,
        submission.subject,
        answers,
        body,
        source,
    )
    target_sha256 = _content_digest(row, submission.subject, answers, body)
    replayed = replay_if_stored()
    if replayed is not None:
        return replayed
    if key_row is None or connection.dialect.name == "sqlite":
        # SQLite: this transaction began with BEGIN IMMEDIATE, so no other writer can have
        # stored the key since `replay_if_stored` looked: no savepoint is needed.
        _insert_screening(connection, row, result["flags"], key_row)
    else:
        try:
            # A concurrent duplicate (PostgreSQL) blocks on the key's primary key until the
            # first commits, then fails here: undo our rows and replay the first one's.
            with connection.begin_nested():
                _insert_screening(connection, row, result["flags"], key_row)
        except IntegrityError:
            replayed = replay_if_stored()
            if replayed is None:
                raise
            return replayed
    audit_service.append(
        connection,
        action="screening.created",
        actor=actor,
        clinic_id=clinic_id,
        target_type="screening",
        target_id=screening_id,
        request_id=request_id,
        target_sha256=target_sha256,
        ruleset_sha256=ruleset.sha256,
        detail={
            "decision": result["decision"],
            "source": source.value,
            "flags": [flag["rule"] for flag in result["flags"]],
        },
    )
    return Created(body=body, is_replay=False)


def _encrypted_row(
    keyring: KeyRing,
    screening_id: uuid.UUID,
    clinic_id: uuid.UUID,
    now: datetime,
    as_of: date,
    rule_pack_sha256: str,
    subject: dict[str, Any],
    answers: dict[str, Any],
    body: dict[str, Any],
    source: Source = Source.api,
) -> dict[str, Any]:
    """The ``screening`` row's column values, PHI encrypted."""
    ciphertexts = {}
    key_id = keyring.current_kid
    for column, value in zip(_PHI_COLUMNS, (subject, answers, body), strict=True):
        aad = field_aad("screening", column, screening_id)
        key_id, ciphertexts[column] = keyring.encrypt(json_bytes(value), aad)
    return {
        "id": screening_id,
        "clinic_id": clinic_id,
        "created_at": now,
        "as_of_date": as_of,
        "decision": Decision(body["decision"]),
        "rule_pack_sha256": rule_pack_sha256,
        "has_exclude": any(
            flag["severity"] == "exclude" and flag["status"] == "fired" for flag in body["flags"]
        ),
        "source": source,
        "key_id": key_id,
        **ciphertexts,
    }


def _insert_screening(
    connection: Connection,
    row: dict[str, Any],
    flags: list[dict[str, Any]],
    key_row: dict[str, Any] | None = None,
) -> None:
    """Insert the screening, its flags and its idempotency key (which references it).

    Prepared statements, not the unit of work: these rows are never changed afterwards, and
    the ORM flush cost more than the inserts (bench/README.md). Without a key, nothing is
    read from here to the commit: on PostgreSQL the rest of the write is pipelined.
    """
    if key_row is None:
        pipeline_to_commit(connection)
    _INSERT_SCREENING.execute(connection, row)
    if flags:
        flag_rows = [
            {
                "screening_id": row["id"],
                "rule": flag["rule"],
                "severity": FlagSeverity(flag["severity"]),
                "status": FlagStatus(flag["status"]),
            }
            for flag in flags
        ]
        _INSERT_FLAG.executemany(connection, flag_rows)
    if key_row is not None:
        key_row = key_row | {"screening_id": row["id"], "created_at": row["created_at"]}
        idempotency.insert_key(connection, key_row)


def json_bytes(value: object) -> bytes:
    """The JSON bytes the API sends and the database stores (compact, UTF-8)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _decrypt(keyring: KeyRing, row: Screening, column: str) -> Any:
    ciphertext: bytes = getattr(row, column)
    aad = field_aad("screening", column, row.id)
    return json.loads(keyring.decrypt(row.key_id, ciphertext, aad))


def stored_content(keyring: KeyRing, row: Screening) -> dict[str, object]:
    """The decrypted content of a stored screening that its audit digest covers."""
    return canonical.screening_content(
        clinic_id=row.clinic_id,
        as_of=row.as_of_date,
        decision=row.decision,
        rule_pack_sha256=row.rule_pack_sha256,
        subject=_decrypt(keyring, row, "subject_ct"),
        answers=_decrypt(keyring, row, "answers_ct"),
        result=_decrypt(keyring, row, "result_ct"),
    )


def _content_digest(row: dict[str, Any], subject: object, answers: object, body: object) -> str:
    return canonical.screening_content_digest(
        clinic_id=row["clinic_id"],
        as_of=row["as_of_date"],
        decision=row["decision"],
        rule_pack_sha256=row["rule_pack_sha256"],
        subject=subject,
        answers=answers,
        result=body,
        checked=False,  # parsed from JSON or built by the rules core: str keys only
    )


def _replay(
    connection: Connection,
    keyring: KeyRing,
    earlier: idempotency.EarlierRequest,
    digest: str,
    actor: audit_service.Actor,
    request_id: str | None,
) -> Created:
    if earlier.request_sha256 != digest:
        raise IdempotencyKeyReused(
            "This Idempotency-Key was already used with a different request body.",
            errors=[
                ProblemItem(
                    "idempotency_key_reused",
                    "Use a new key for a new request.",
                    parameter="Idempotency-Key",
                )
            ],
        )
    # An ORM session joined to the caller's transaction: it neither commits nor ends it.
    with Session(bind=connection, join_transaction_mode="rollback_only") as session:
        row = session.get_one(Screening, earlier.screening_id)
        body = _read_body(session, keyring, [row])[0]
        _audit_read(session, keyring, row, actor, request_id, via="idempotent_replay")
    return Created(body=body, is_replay=True)


def _read_body(session: Session, keyring: KeyRing, rows: list[Screening]) -> list[dict[str, Any]]:
    reviews = latest_reviews(session, [row.id for row in rows])
    bodies = []
    for row in rows:
        body: dict[str, Any] = _decrypt(keyring, row, "result_ct")
        body["review"] = reviews.get(row.id)
        bodies.append(body)
    return bodies


def latest_reviews(session: Session, ids: list[uuid.UUID]) -> dict[uuid.UUID, dict[str, str]]:
    """The latest review of each screening that has one: ``{"disposition", "created_at"}``."""
    if not ids:
        return {}
    rows = session.execute(
        select(Review.screening_id, Review.disposition, Review.created_at)
        .where(Review.screening_id.in_(ids))
        .order_by(Review.created_at)
    )
    return {
        screening_id: {
            "disposition": disposition,
            "created_at": canonical.format_datetime(created_at),
        }
        for screening_id, disposition, created_at in rows
    }


def _audit_read(
    session: Session,
    keyring: KeyRing,
    row: Screening,
    actor: audit_service.Actor,
    request_id: str | None,
    via: str = "api",
) -> None:
    audit_service.record_screening_event(
        session,
        row=row,
        content=stored_content(keyring, row),
        action="screening.read",
        actor=actor,
        request_id=request_id,
        detail={"via": via},
    )


def get(
    session: Session,
    *,
    keyring: KeyRing,
    clinic_id: uuid.UUID,
    screening_id: uuid.UUID,
    actor: audit_service.Actor,
    request_id: str | None = None,
) -> dict[str, Any]:
    """Return one of the clinic's screenings and audit the read; NotFound for any other."""
    row = session.scalars(
        select(Screening).where(Screening.id == screening_id, Screening.clinic_id == clinic_id)
    ).one_or_none()
    if row is None:
        raise NotFound("No screening with this id.")
    body = _read_body(session, keyring, [row])[0]
    _audit_read(session, keyring, row, actor, request_id)
    return body


def get_questionnaire(ruleset: Ruleset, *, questionnaire_id: str) -> dict[str, Any]:
    """Return the questionnaire definition; NotFound unless it is the loaded one."""
    if questionnaire_id != ruleset.questionnaire.id:
        raise NotFound("No questionnaire with this id.")
    document = ruleset.questionnaire.model_dump(mode="json", exclude_none=True)
    return document | {"ruleset": ruleset.ref.to_dict()}
