"""Every question, hint and "why we ask" text of the v2 pack reads at US grade 8 or below.

POLICY-V2 section 8 and issue #12: patient wording stays at or below grade 8 on the
Flesch-Kincaid scale, scored with textstat (the version pinned in pyproject.toml, the one the
policy was scored with; later versions download a pronouncing dictionary at run time).

Readability formulas count syllables, so one unavoidable medical or drug name can push a plain
sentence over the limit. Each name in MEDICAL_NAMES is therefore scored as the one-syllable
placeholder word "term"; the plain-words gloss beside it (e.g. "cirrhosis (scarring of the
liver)") is still scored. Keep the list short: add a name only when no plain word exists and the
text explains it, never to pass a sentence that could be simpler.
"""

import re
from pathlib import Path

import pytest
import textstat  # type: ignore[import-untyped]

from app.engine import load_ruleset
from app.engine.translations import source_strings

MAX_GRADE = 8.0
PLACEHOLDER = "term"
MEDICAL_NAMES = (
    "atrial fibrillation",
    "esketamine",
    "fibromyalgia",
    "hyperthyroidism",
    "intracranial",
    "ketamine",
    "schizoaffective",
    "cirrhosis",
    "Spravato",
)
_NAMES = re.compile(
    r"\b(?:" + "|".join(re.escape(name) for name in MEDICAL_NAMES) + r")\b", re.IGNORECASE
)
_SCORED = re.compile(r"^items\.[a-z0-9_]+\.(?:text|help|why)$")

PACK = Path(__file__).resolve().parents[2] / "rules" / "ketamine-infusion"  # policy v2
STRINGS = {
    key: text
    for key, text in source_strings(load_ruleset(PACK).questionnaire).items()
    if _SCORED.match(key)
}


def plain(text: str) -> str:
    """Return the text with each allow-listed medical name replaced by the placeholder word."""
    return _NAMES.sub(PLACEHOLDER, text)


def grade(text: str) -> float:
    """Return the Flesch-Kincaid grade of the text, after replacing allow-listed names."""
    score: float = textstat.flesch_kincaid_grade(plain(text))
    return score


def test_the_default_pack_is_policy_v2_with_every_new_item_scored() -> None:
    for item in ("ketamine_allergy", "psychosis_or_mania", "substance_use", "thyroid_controlled"):
        assert {f"items.{item}.text", f"items.{item}.help", f"items.{item}.why"} <= set(STRINGS)
    for item in ("heart_brain_history", "heart_brain_recent", "other_medical_conditions"):
        assert f"items.{item}.text" in STRINGS
        assert f"items.{item}.why" in STRINGS


@pytest.mark.parametrize("key", sorted(STRINGS))
def test_patient_text_reads_at_grade_8_or_below(key: str) -> None:
    text = STRINGS[key]
    assert grade(text) <= MAX_GRADE, (
        f"{key} scores grade {grade(text)} (limit {MAX_GRADE}): {text!r}. Use shorter sentences "
        f"and shorter words; add to MEDICAL_NAMES only an unavoidable name that the text explains."
    )


def test_the_check_fails_on_text_above_grade_8() -> None:
    hard = (
        "Contraindications include uncontrolled hypertension, decompensated cardiovascular "
        "disease, and documented hypersensitivity reactions to anaesthetic medications."
    )
    assert grade(hard) > MAX_GRADE
    # The allow-list cannot rescue it: none of these words is a listed name.
    assert plain(hard) == hard


def test_allow_list_replaces_whole_names_only_and_ignores_case() -> None:
    assert plain("Ketamine or esketamine (Spravato)") == "term or term (term)"
    assert plain("such as atrial fibrillation or long QT") == "such as term or long QT"
    assert plain("ketamines and preketamine stay") == "ketamines and preketamine stay"


def test_a_name_lowers_the_grade_only_by_its_own_syllables() -> None:
    # Replacing a name with a one-syllable word never changes the sentence and word counts.
    text = "An overactive thyroid (hyperthyroidism), such as Graves' disease"
    assert textstat.lexicon_count(plain(text)) == textstat.lexicon_count(text)
    assert textstat.sentence_count(plain(text)) == textstat.sentence_count(text)


def test_every_allow_listed_name_is_used_by_the_questionnaire() -> None:
    every_string = " ".join(source_strings(load_ruleset(PACK).questionnaire).values()).lower()
    unused = [name for name in MEDICAL_NAMES if name.lower() not in every_string]
    assert unused == [], f"remove names no patient text uses any more: {unused}"
