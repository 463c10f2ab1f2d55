"""Run `screening` commands in a temporary directory with their own environment."""

from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from app.cli import app
from app.settings import get_settings

Invoke = Callable[..., Result]


@pytest.fixture
def invoke(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    """Invoke the CLI with ``SCREENING_*`` set only from ``env`` (settings cache cleared).

    ``stdin`` is what the command reads from standard input (``--password-stdin``).
    """
    monkeypatch.chdir(tmp_path)

    def run(*args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> Result:
        values = {
            "SCREENING_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
            "SCREENING_SECRETS_FILE": str(tmp_path / "secrets.env"),
        } | (env or {})
        get_settings.cache_clear()
        result = CliRunner().invoke(app, list(args), env=values, input=stdin)
        get_settings.cache_clear()
        return result

    return run
