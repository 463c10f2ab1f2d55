"""Pages, enablement, pruning and what comes next (pure, using the real rule pack)."""

from datetime import date

from app.engine import Ruleset
from app.form.fields import Parsed
from app.form.pages import Draft, apply_page, build_pages, first_unfinished, next_page, prune
from tests.form.support import FEMALE_ANSWERS

AS_OF = date(2026, 6, 15)


def test_groups_split_where_a_question_depends_on_one_on_the_same_page(ruleset: Ruleset) -> None:
    pages = {page.id: [item.id for item in page.items] for page in build_pages(ruleset)}
    assert pages["blood_pressure"] == ["hypertension"]
    assert pages["blood_pressure-2"] == ["bp_controlled", "systolic_bp", "diastolic_bp"]
    assert pages["pregnancy"] == ["pregnant", "breastfeeding"]
    assert pages["ketamine-2"] == ["ketamine_reaction"]


def test_changing_sex_at_birth_prunes_pregnancy_answers(ruleset: Ruleset) -> None:
    draft = Draft(dict(FEMALE_ANSWERS), set(FEMALE_ANSWERS), set())
    pruned, state = prune(
        ruleset, Draft(draft.answers | {"sex_at_birth": "male"}, draft.seen), as_of=AS_OF
    )
    assert "pregnant" not in pruned.answers
    assert "pregnant" not in pruned.seen
    pages = build_pages(ruleset)
    about, condition = pages[0], pages[1]
    assert next_page(pages, condition, state) == pages[3]  # blood pressure, not pregnancy
    assert next_page(pages, about, state) == condition


def test_a_newly_enabled_question_is_unfinished(ruleset: Ruleset) -> None:
    answers = FEMALE_ANSWERS | {"ketamine_before": "yes"}
    draft, state = prune(ruleset, Draft(answers, set(FEMALE_ANSWERS), set()), as_of=AS_OF)
    unfinished = first_unfinished(build_pages(ruleset), draft, state)
    assert unfinished is not None
    assert unfinished.id == "ketamine-2"


def test_a_date_of_birth_after_the_concussion_date_is_an_error_on_the_page(
    ruleset: Ruleset,
) -> None:
    answers = FEMALE_ANSWERS | {"concussion": "yes", "concussion_date": "2000-01-01"}
    draft = Draft(answers, set(answers), set())
    about = build_pages(ruleset)[0]
    parsed = Parsed(values={"date_of_birth": "2001-01-01", "sex_at_birth": "female"})
    kept, errors = apply_page(ruleset, draft, about.items, parsed, as_of=AS_OF)
    assert kept is draft
    assert [(e.item, e.key) for e in errors] == [("date_of_birth", "error.birth_after_other")]
