"""An impact run over 100,000 generated stored screenings, on both backends (issue 13)."""

from pathlib import Path

from sqlalchemy.orm import Session

from app.engine import load_ruleset
from app.rulepack import replay
from app.rulepack import service as rulepack_service
from tests.factories import DATA_KEY, KEYRING, NOW, make_key
from tests.rulepack.bulk import Expected, generate, load
from tests.rulepack.packs import DEFAULT, stricter_pack

ROWS = 100_000


def test_a_160_to_150_cut_off_moves_exactly_the_150_to_159_not_yet_excluded(
    session: Session, tmp_path: Path
) -> None:
    ruleset, candidate = load_ruleset(DEFAULT), load_ruleset(stricter_pack(tmp_path))
    clinic_id = make_key(session).clinic_id
    rulepack_service.store_rule_pack(session, ruleset=ruleset, now=NOW)
    session.flush()
    expected = Expected()
    chunks = generate(
        ROWS, clinic_id=clinic_id, ruleset=ruleset, keyring=KEYRING, expected=expected
    )
    load(session.connection(), chunks)
    impact = replay.replay(
        session, keyring=KEYRING, clinic_id=clinic_id, candidate=candidate,
        period=replay.Period(), keep=ROWS,
    )  # fmt: skip
    assert impact.total == expected.total == ROWS
    assert 5_000 < expected.moved_total < 15_000  # about 10 % read 150-159
    assert impact.changed_total == expected.moved_total
    assert {change.id for change in impact.changed} == expected.moved
    assert all(change.after == "not_candidate" for change in impact.changed)
    assert impact.rejected_total == 0
    moved_in = impact.matrix[("needs_review", "not_candidate")]
    moved_in += impact.matrix[("candidate", "not_candidate")]
    assert moved_in == expected.moved_total
    assert set(impact.rules) == {"uncontrolled_blood_pressure"}


def test_worker_processes_give_the_same_report(session: Session, tmp_path: Path) -> None:
    ruleset, candidate = load_ruleset(DEFAULT), load_ruleset(stricter_pack(tmp_path))
    clinic_id = make_key(session).clinic_id
    rulepack_service.store_rule_pack(session, ruleset=ruleset, now=NOW)
    session.flush()
    chunks = generate(5_000, clinic_id=clinic_id, ruleset=ruleset, keyring=KEYRING,
                      expected=Expected())  # fmt: skip
    load(session.connection(), chunks)
    reports = [
        replay.replay(session, keyring=KEYRING, clinic_id=clinic_id, candidate=candidate,
                      period=replay.Period(), keep=100, workers=workers,
                      key_spec=DATA_KEY).to_dict()
        for workers in (1, 2)
    ]  # fmt: skip
    assert reports[0] == reports[1]
    assert reports[0]["changed"] > 100  # the kept list is cut the same way
