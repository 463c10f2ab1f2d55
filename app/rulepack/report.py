"""The impact analysis as one self-contained HTML page a physician can open from a file.

No external assets: the styles are inline and the per-rule bar chart is inline SVG. Only ids
and counts appear (never answers or subject references); the changed screenings link to their
review pages on the service.
"""

from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from app.rulepack.impact import OUTCOMES, Impact

_LABELS = {
    "candidate": "Candidate",
    "needs_review": "Needs review",
    "not_candidate": "Not a candidate",
}
_environment = Environment(
    loader=FileSystemLoader(Path(__file__).resolve().parent / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


def render_html(impact: Impact, *, clinic: str, period: str, base_url: str) -> str:
    """Render the report; ``base_url`` is where the service's review pages are reached."""
    scale = max(
        [
            1,
            *(
                max(c.newly_fired, c.newly_unknown, c.no_longer_fired)
                for c in impact.rules.values()
            ),
        ]
    )
    return _environment.get_template("impact.html").render(
        impact=impact,
        clinic=clinic,
        period=period,
        outcomes=OUTCOMES,
        labels=_LABELS,
        rules=sorted(impact.rules.items()),
        scale=scale,
        base_url=base_url.rstrip("/"),
    )
