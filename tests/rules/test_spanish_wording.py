"""The Spanish fixes of issue 12 stay fixed in both packs and in the form's own messages."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FILES = [
    ROOT / "rules" / "ketamine-infusion" / "translations" / "es.yaml",
    ROOT / "rules" / "ketamine-infusion-v1" / "translations" / "es.yaml",
    ROOT / "app" / "form" / "messages.yaml",
]
# Everyday Spanish for high blood pressure is «presión alta»: a hypertensive patient would
# answer the raised intracranial pressure question "yes" and be excluded.
BANNED = {
    r"presión alta dentro": "raised intracranial pressure must not read as high blood pressure",
    r"\binflamaci[oó]n": "swelling is «hinchazón»",
    r"dormirle": "use a Latin-American form",
    r"\blecturas?\b": "a blood pressure reading is a «medición»",
    r"\w/a\b": "use a neutral wording, not a «/a» slash form",
    r"“|”": "quotation marks are «…» throughout",
}


@pytest.mark.parametrize("path", FILES, ids=lambda path: str(path.relative_to(ROOT)))
def test_spanish_text_avoids_the_wordings_the_issue_fixed(path: Path) -> None:
    spanish = [
        line
        for line in path.read_text(encoding="utf-8").splitlines()
        if "text:" in line or "es:" in line
    ]
    for pattern, why in BANNED.items():
        hits = [line.strip() for line in spanish if re.search(pattern, line.split("es:")[-1])]
        assert not hits, f"{why}: {hits}"
