"""Fixed vectors for canonical JSON and the audit chain hash."""

import json
import uuid
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.audit import canonical

VECTOR_1 = {
    "c": {"y": date(2026, 6, 15), "x": datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)},
    "b": (True, None, "é"),
    "a": 1,
}
VECTOR_1_BYTES = (
    '{"a":1,"b":[true,null,"é"],"c":{"x":"2026-01-02T03:04:05.000006Z","y":"2026-06-15"}}'
).encode()
VECTOR_1_SHA256 = "9e6a93d918eac209fd8df8773e604692919f4a09744921756410178c2099dfb5"


class TestDumps:
    def test_dumps_fixed_vector(self) -> None:
        assert canonical.dumps(VECTOR_1) == VECTOR_1_BYTES

    def test_digest_fixed_vector(self) -> None:
        assert canonical.digest(VECTOR_1) == VECTOR_1_SHA256
        assert (
            canonical.digest({})
            == "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        )

    def test_dumps_converts_offsets_to_utc_z(self) -> None:
        plus_two = timezone(timedelta(hours=2))
        value = datetime(2026, 1, 2, 5, 4, 5, tzinfo=plus_two)
        assert canonical.dumps(value) == b'"2026-01-02T03:04:05.000000Z"'

    def test_dumps_renders_uuid_lowercase_hyphenated(self) -> None:
        value = uuid.UUID("A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11")
        assert canonical.dumps({"id": value}) == b'{"id":"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"}'

    def test_dumps_keeps_non_ascii_as_utf8(self) -> None:
        assert canonical.dumps("naïve ✓") == '"naïve ✓"'.encode()

    def test_dumps_refuses_naive_datetime(self) -> None:
        with pytest.raises(ValueError, match="naive"):
            canonical.dumps({"t": datetime(2026, 1, 1)})  # noqa: DTZ001

    @pytest.mark.parametrize("value", [float("nan"), float("inf")])
    def test_dumps_refuses_non_finite(self, value: float) -> None:
        with pytest.raises(ValueError, match="not JSON compliant"):
            canonical.dumps({"x": value})

    @pytest.mark.parametrize("value", [{1: "a"}, {"a": [{2: "b"}]}, {"s": {1, 2}}, {"b": b"x"}])
    def test_dumps_refuses_values_without_canonical_form(self, value: object) -> None:
        with pytest.raises(TypeError):
            canonical.dumps(value)

    @given(
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(),
            lambda inner: (
                st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4)
            ),
            max_leaves=20,
        )
    )
    def test_dumps_is_stable_under_key_order_and_reload(self, value: object) -> None:
        reloaded = json.loads(canonical.dumps(value))
        assert canonical.dumps(reloaded) == canonical.dumps(value)


class TestChainHash:
    def test_chain_hash_fixed_vectors(self) -> None:
        first = canonical.chain_hash(
            canonical.GENESIS_HASH, {"seq": 1, "action": "screening.created", "actor_id": "cli"}
        )
        assert first == "d8602d32950455d3935d057aaa5ed1ad94a8c412276e6d617edd1bd509c8b6d0"
        second = canonical.chain_hash(
            first, {"seq": 2, "action": "screening.read", "actor_id": "cli"}
        )
        assert second == "f44ddb9e03e3c2d934c4b8d689103cc740835fd2804ed367b2d8193441c3f344"

    def test_chain_hash_depends_on_prev_hash(self) -> None:
        fields = {"seq": 1}
        assert canonical.chain_hash("0" * 64, fields) != canonical.chain_hash("1" * 64, fields)

    def test_chain_hash_rejects_short_prev_hash(self) -> None:
        with pytest.raises(ValueError, match="64 hex"):
            canonical.chain_hash("abc", {"seq": 1})


class TestScreeningContentDigest:
    def test_screening_content_digest_fixed_vector(self) -> None:
        value = canonical.screening_content_digest(
            clinic_id=uuid.UUID(int=1),
            as_of=date(2026, 6, 15),
            decision="candidate",
            rule_pack_sha256="ab" * 32,
            subject={"reference": "MRN-1"},
            answers={"pregnant": "no"},
            result={"decision": "candidate"},
        )
        assert value == "60629b202514e683eb75d23ec15b5d7eff6b868008582becffe8903866b670c2"

    def test_screening_content_digest_changes_with_answers(self) -> None:
        def digest_of(answers: object) -> str:
            return canonical.screening_content_digest(
                clinic_id="00000000-0000-0000-0000-000000000001",
                as_of=date(2026, 6, 15),
                decision="candidate",
                rule_pack_sha256="ab" * 32,
                subject={"reference": "MRN-1"},
                answers=answers,
                result={"decision": "candidate"},
            )

        assert digest_of({"pregnant": "no"}) != digest_of({"pregnant": "yes"})
        assert digest_of({"pregnant": "no"}) == digest_of({"pregnant": "no"})
