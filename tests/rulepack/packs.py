"""Candidate rule packs for policy tests: the default pack with one threshold moved."""

import shutil
from pathlib import Path

RULES = Path(__file__).resolve().parents[2] / "rules"
DEFAULT, V1 = RULES / "ketamine-infusion", RULES / "ketamine-infusion-v1"


def stricter_pack(root: Path) -> Path:
    """The default pack with the systolic exclusion at 150 instead of 160, its tests updated."""
    pack = root / "stricter"
    shutil.copytree(DEFAULT, pack)
    rule = pack / "rules" / "uncontrolled_blood_pressure.yaml"
    text = rule.read_text(encoding="utf-8").replace("at_least: 160", "at_least: 150")
    text = text.replace("systolic_bp: 159, diastolic_bp: 99", "systolic_bp: 149, diastolic_bp: 99")
    rule.write_text(text, encoding="utf-8")
    return pack
