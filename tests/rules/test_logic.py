"""Kleene three-valued logic (DESIGN.md "Three-valued logic"): truth tables and laws."""

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.engine import Truth
from app.engine.logic import FALSE, TRUE, UNKNOWN, all_of, any_of, not_

T, F, U = TRUE, FALSE, UNKNOWN
truths = st.sampled_from([T, F, U])
truth_lists = st.lists(truths, max_size=6)


def or2(a: Truth, b: Truth) -> Truth:
    return any_of([a, b])


def and2(a: Truth, b: Truth) -> Truth:
    return all_of([a, b])


ANY_TABLE = [
    (T, T, T), (T, F, T), (T, U, T),
    (F, T, T), (F, F, F), (F, U, U),
    (U, T, T), (U, F, U), (U, U, U),
]  # fmt: skip
ALL_TABLE = [
    (T, T, T), (T, F, F), (T, U, U),
    (F, T, F), (F, F, F), (F, U, F),
    (U, T, U), (U, F, F), (U, U, U),
]  # fmt: skip


@pytest.mark.parametrize(("a", "b", "expected"), ANY_TABLE)
def test_any_of_follows_the_kleene_or_table(a: Truth, b: Truth, expected: Truth) -> None:
    assert any_of([a, b]) is expected


@pytest.mark.parametrize(("a", "b", "expected"), ALL_TABLE)
def test_all_of_follows_the_kleene_and_table(a: Truth, b: Truth, expected: Truth) -> None:
    assert all_of([a, b]) is expected


@pytest.mark.parametrize(("value", "expected"), [(T, F), (F, T), (U, U)])
def test_not_swaps_true_and_false_and_keeps_unknown(value: Truth, expected: Truth) -> None:
    assert not_(value) is expected


def test_any_of_nothing_is_false() -> None:
    assert any_of([]) is F


def test_all_of_nothing_is_true() -> None:
    assert all_of([]) is T


def test_any_of_is_true_when_any_part_is_true_even_after_unknowns() -> None:
    assert any_of([U, U, F, T]) is T


def test_all_of_is_false_when_any_part_is_false_even_after_unknowns() -> None:
    assert all_of([U, T, U, F]) is F


def test_truth_values_are_three_distinct_members() -> None:
    assert [t.value for t in Truth] == ["true", "false", "unknown"]


@given(truth_lists)
def test_any_of_matches_its_definition_for_any_length(values: list[Truth]) -> None:
    expected = T if T in values else F if all(v is F for v in values) else U
    assert any_of(values) is expected


@given(truth_lists)
def test_all_of_matches_its_definition_for_any_length(values: list[Truth]) -> None:
    expected = F if F in values else T if all(v is T for v in values) else U
    assert all_of(values) is expected


@given(truth_lists)
def test_any_of_and_all_of_ignore_order(values: list[Truth]) -> None:
    assert any_of(values) is any_of(reversed(values))
    assert all_of(values) is all_of(reversed(values))


@pytest.mark.parametrize("op", [or2, and2], ids=["any", "all"])
@given(a=truths, b=truths)
def test_binary_operators_are_commutative(
    op: Callable[[Truth, Truth], Truth], a: Truth, b: Truth
) -> None:
    assert op(a, b) is op(b, a)


@pytest.mark.parametrize("op", [or2, and2], ids=["any", "all"])
@given(a=truths, b=truths, c=truths)
def test_binary_operators_are_associative(
    op: Callable[[Truth, Truth], Truth], a: Truth, b: Truth, c: Truth
) -> None:
    assert op(op(a, b), c) is op(a, op(b, c))


@given(a=truths, b=truths)
def test_de_morgan_not_any_is_all_not(a: Truth, b: Truth) -> None:
    assert not_(any_of([a, b])) is all_of([not_(a), not_(b)])


@given(a=truths, b=truths)
def test_de_morgan_not_all_is_any_not(a: Truth, b: Truth) -> None:
    assert not_(all_of([a, b])) is any_of([not_(a), not_(b)])


@given(truth_lists)
def test_de_morgan_holds_for_any_number_of_parts(values: list[Truth]) -> None:
    assert not_(any_of(values)) is all_of(not_(v) for v in values)
    assert not_(all_of(values)) is any_of(not_(v) for v in values)


@given(truths)
def test_false_is_the_identity_of_any_and_true_of_all(a: Truth) -> None:
    assert any_of([a, F]) is a
    assert all_of([a, T]) is a


@given(truths)
def test_true_dominates_any_and_false_dominates_all(a: Truth) -> None:
    assert any_of([a, T]) is T
    assert all_of([a, F]) is F


@given(truths)
def test_double_negation_is_identity(a: Truth) -> None:
    assert not_(not_(a)) is a


@given(truths)
def test_operators_are_idempotent(a: Truth) -> None:
    assert any_of([a, a]) is a
    assert all_of([a, a]) is a


@given(a=truths, b=truths, c=truths)
def test_and_distributes_over_or(a: Truth, b: Truth, c: Truth) -> None:
    assert and2(a, or2(b, c)) is or2(and2(a, b), and2(a, c))


def test_excluded_middle_does_not_hold_for_unknown() -> None:
    # Unknown stays unknown: "X or not X" cannot resolve a missing answer.
    assert any_of([U, not_(U)]) is U
    assert all_of([U, not_(U)]) is U


def _information_order(a: Truth, b: Truth) -> bool:
    """a <= b in the information order: unknown is below both true and false."""
    return a is U or a is b


@given(a=truths, b=truths, a2=truths, b2=truths)
def test_operators_are_monotone_in_information(a: Truth, b: Truth, a2: Truth, b2: Truth) -> None:
    # Learning an answer can only resolve unknown; it never flips a known result.
    if _information_order(a, a2) and _information_order(b, b2):
        assert _information_order(or2(a, b), or2(a2, b2))
        assert _information_order(and2(a, b), and2(a2, b2))
        assert _information_order(not_(a), not_(a2))
