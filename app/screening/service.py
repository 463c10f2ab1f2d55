"""Submit, read and list screenings; store and fetch rule packs.

Contracts: every function takes the caller's session and never commits. Every PHI read and
every write records an audit event in that same transaction. Reads are always filtered by the
caller's clinic: another clinic's screening is NotFound. Bodies are JSON-ready dicts whose
stored plaintext is the API's body (sent through the same response model), so an idempotent
replay is byte-identical.
"""

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from functools import partial
from typing import Any, cast

from sqlalchemy import Connection, Table, insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.audit import canonical
from app.audit import service as audit_service
from app.crypto import KeyRing, field_aad
from app.db.models import (
    Decision,
    FlagSeverity,
    FlagStatus,
    Screening,
    ScreeningFlag,
    Source,
)
from app.db.prepared import Prepared
from app.db.unit import pipeline_to_commit, savepoint
from app.engine import AnswerErrors, Ruleset, evaluate, validate_answers
from app.errors import IdempotencyKeyReused, NotFound, ProblemItem, ValidationFailed
from app.screening import idempotency, store

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

    Takes a Core connection in the unit of work's transaction (or ``session.connection()``
    after a ``flush()``): the write is prepared statements only; the rare replay reads
    through an ORM session joined to that transaction.
    """
    fingerprinted = {
        "questionnaire": submission.questionnaire,
        "answers": submission.answers,
        "subject": submission.subject,
    }
    key_row = idempotency.key_row(clinic_id, idempotency_key, fingerprinted)
    replay = partial(_replay_if_stored, connection, keyring, clinic_id, key_row, actor, request_id)
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
        replayed = replay()
        if replayed is None:
            raise
        return replayed
    new = _new_screening(
        keyring, clinic_id, now, as_of, ruleset, submission.subject, evaluation, source
    )
    replayed = replay() or _insert_or_replay(connection, new, key_row, replay)
    if replayed is not None:
        return replayed
    _audit_created(connection, new, actor, request_id)
    return Created(body=new.body, is_replay=False)


def _audit_created(
    connection: Connection,
    new: "_NewScreening",
    actor: audit_service.Actor,
    request_id: str | None,
) -> None:
    row = new.row
    audit_service.append(
        connection,
        action="screening.created",
        actor=actor,
        clinic_id=row["clinic_id"],
        target_type="screening",
        target_id=row["id"],
        request_id=request_id,
        target_sha256=new.digest,
        ruleset_sha256=row["rule_pack_sha256"],
        detail={
            "decision": new.body["decision"],
            "source": row["source"].value,
            "flags": [flag["rule"] for flag in new.body["flags"]],
        },
    )


@dataclass(frozen=True, slots=True)
class _NewScreening:
    """A screening ready to insert: the API body, the encrypted row and the content digest."""

    body: dict[str, Any]
    row: dict[str, Any]
    digest: str


def _new_screening(
    keyring: KeyRing,
    clinic_id: uuid.UUID,
    now: datetime,
    as_of: date,
    ruleset: Ruleset,
    subject: dict[str, Any],
    evaluation: Evaluation,
    source: Source,
) -> _NewScreening:
    result, screening_id = evaluation.result, uuid.uuid4()
    body = {
        "id": str(screening_id),
        "created_at": canonical.format_datetime(now),
        "subject": subject,
        "review": None,
        **result,
    }
    row = _encrypted_row(
        keyring, screening_id, clinic_id, now, as_of, ruleset.sha256, subject,
        evaluation.answers, body, source,
    )  # fmt: skip
    content = store.ScreeningContent(
        clinic_id, as_of, row["decision"], ruleset.sha256, subject, evaluation.answers, body
    )
    # Unchecked: parsed from JSON or built by the rules core, so str keys only.
    return _NewScreening(body, row, content.digest(checked=False))


def _replay_if_stored(
    connection: Connection,
    keyring: KeyRing,
    clinic_id: uuid.UUID,
    key_row: dict[str, Any] | None,
    actor: audit_service.Actor,
    request_id: str | None,
) -> Created | None:
    """The stored screening's replay if the key was used before (422 for another body)."""
    if key_row is None:
        return None
    earlier = idempotency.earlier_request(connection, clinic_id, key_row["key"])
    if earlier is None:
        return None
    return _replay(connection, keyring, earlier, key_row["request_sha256"], actor, request_id)


def _insert_or_replay(
    connection: Connection,
    new: _NewScreening,
    key_row: dict[str, Any] | None,
    replay: Callable[[], Created | None],
) -> Created | None:
    """Insert the rows; the first request's replay if a concurrent duplicate won the key."""
    flags = new.body["flags"]
    if key_row is None or connection.dialect.name == "sqlite":
        # SQLite: this transaction began with BEGIN IMMEDIATE, so no other writer can have
        # stored the key since the replay check looked: no savepoint is needed.
        _insert_screening(connection, new.row, flags, key_row)
        return None
    try:
        # A concurrent duplicate (PostgreSQL) blocks on the key's primary key until the
        # first commits, then fails here: undo our rows and replay the first one's.
        with savepoint(connection):
            _insert_screening(connection, new.row, flags, key_row)
    except IntegrityError:
        replayed = replay()
        if replayed is None:
            raise
        return replayed
    return None


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
    for column, value in zip(store.PHI_COLUMNS, (subject, answers, body), strict=True):
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
        body = store.bodies(session, keyring, [row])[0]
        _audit_read(session, keyring, row, actor, request_id, via="idempotent_replay")
    return Created(body=body, is_replay=True)


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
        target_sha256=store.ScreeningContent.decrypt(keyring, row).digest(),
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
    row = store.screening_row(session, clinic_id=clinic_id, screening_id=screening_id)
    body = store.bodies(session, keyring, [row])[0]
    _audit_read(session, keyring, row, actor, request_id)
    return body


def get_questionnaire(ruleset: Ruleset, *, questionnaire_id: str) -> dict[str, Any]:
    """Return the questionnaire definition; NotFound unless it is the loaded one."""
    if questionnaire_id != ruleset.questionnaire.id:
        raise NotFound("No questionnaire with this id.")
    document = ruleset.questionnaire.model_dump(mode="json", exclude_none=True)
    return document | {"ruleset": ruleset.ref.to_dict()}
