"""An impact worker process: decrypt and replay pages of stored screenings (``main``).

Slim on purpose (the engine, the impact totals and AES-GCM only: about 40 MB, not the
110 MB of the whole service), so that ``rules impact --workers N`` stays within its memory
budget. Protocol on standard input and output, pickled objects one after another: first
``(canonical_json, sha256, keep, data_key_spec)``, then pages of ``RawScreening``; for each
page one ``Totals`` back; ``None`` ends. The data key arrives on the pipe, never in argv or
the environment. Answers are decrypted here, only in memory.
"""

import json
import pickle
import sys
from collections.abc import Mapping
from datetime import date
from typing import BinaryIO, NamedTuple

from app.crypto import KeyRing, field_aad
from app.engine import Ruleset, ruleset_from_document
from app.rulepack.impact import ChangedScreening, Impact, StoredScreening


class RawScreening(NamedTuple):
    """A stored screening as read from the database: its answers still encrypted."""

    id: str
    as_of: date
    decision: str
    key_id: str
    answers_ct: bytes
    statuses: Mapping[str, str]


class Totals(NamedTuple):
    """An ``Impact``'s counts, to be merged into the command's own."""

    total: int
    matrix: dict[tuple[str, str], int]
    rules: dict[str, tuple[int, int, int]]
    changed: list[ChangedScreening]
    changed_total: int
    rejected: dict[str, int]


def decode(keyring: KeyRing, raw: RawScreening) -> StoredScreening:
    """Decrypt one stored screening's answers for the replay."""
    aad = field_aad("screening", "answers_ct", raw.id)
    answers = json.loads(keyring.decrypt(raw.key_id, raw.answers_ct, aad))
    return StoredScreening(raw.id, raw.as_of, answers, raw.decision, raw.statuses)


def totals_of(impact: Impact) -> Totals:
    """The counts of an ``Impact`` (without its pack, which does not pickle)."""
    rules = {
        r: (c.newly_fired, c.newly_unknown, c.no_longer_fired) for r, c in impact.rules.items()
    }
    return Totals(impact.total, dict(impact.matrix), rules, impact.changed,
                  impact.changed_total, dict(impact.rejected))  # fmt: skip


def candidate_of(canonical_json: bytes, sha256: str) -> Ruleset:
    """Rebuild the candidate pack and check its hash."""
    candidate = ruleset_from_document(json.loads(canonical_json))
    if candidate.sha256 != sha256:
        raise RuntimeError(f"candidate pack rebuilds to {candidate.sha256}, not {sha256}")
    return candidate


def serve(source: BinaryIO, sink: BinaryIO) -> None:
    """Answer pages until ``None`` or the end of ``source``."""
    canonical_json, sha256, keep, spec = pickle.load(source)
    candidate, keyring = candidate_of(canonical_json, sha256), KeyRing.parse(spec)
    while True:
        try:
            page: list[RawScreening] | None = pickle.load(source)
        except EOFError:
            return
        if page is None:
            return
        impact = Impact(candidate, keep=keep)
        for raw in page:
            impact.add(decode(keyring, raw))
        pickle.dump(totals_of(impact), sink, protocol=pickle.HIGHEST_PROTOCOL)
        sink.flush()


def main() -> None:
    """Serve standard input and output (the worker process's entry point).

    Started with ``-c`` importing this module by name, not with ``-m``: the pickled classes
    must be ``app.rulepack.worker``'s, not ``__main__``'s.
    """
    serve(sys.stdin.buffer, sys.stdout.buffer)
