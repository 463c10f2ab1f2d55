"""`screening serve`: run the API with uvicorn (never migrates; dev first-run bootstrap)."""

import base64
import os
from pathlib import Path
from typing import Annotated, Any

import typer
import uvicorn
from pydantic import ValidationError

from app import logs
from app.cli import firstrun
from app.cli.db import fail, settings_or_exit
from app.context import app_context
from app.crypto import generate_key_spec
from app.db import migrate
from app.db.engine import make_engine
from app.main import StartupError, create_app, load_checked_ruleset
from app.settings import Environment, Settings, describe_error, load_settings


def write_dev_secrets(settings: Settings) -> Settings:
    """Generate missing dev keys into the secrets file (mode 0600); return fresh settings."""
    lines = []
    if settings.data_keys is None:
        lines.append(f"SCREENING_DATA_KEY={generate_key_spec('k1')}")
    if settings.audit_key is None:
        lines.append(f"SCREENING_AUDIT_KEY={base64.b64encode(os.urandom(32)).decode()}")
    if not lines:
        return settings
    path = settings.secrets_file
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(descriptor, "a", encoding="utf-8") as file:
        file.write("\n".join(lines) + "\n")
    os.chmod(path, 0o600)
    typer.echo(f"Generated development keys into {Path(path).resolve()} (mode 0600).", err=True)
    typer.echo("Keep that file: without it, stored screenings cannot be decrypted.", err=True)
    try:
        return load_settings()
    except ValidationError as error:
        fail(describe_error(error))


def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port to listen on.")] = 8000,
    workers: Annotated[
        int, typer.Option(min=1, max=64, help="Worker processes (each loads the app).")
    ] = 1,
) -> None:
    """Run the service. Refuses to start on an outdated database or an invalid rule pack."""
    settings = settings_or_exit()
    logs.configure(settings.log_level)
    engine = make_engine(settings.database_url)
    is_current = migrate.is_at_head(migrate.make_config(settings.database_url), engine)
    engine.dispose()
    if not is_current:
        fail(
            f"the database {migrate.redact_url(settings.database_url)} is behind the code: "
            "run `screening db upgrade` first"
        )
    if settings.environment is Environment.dev:
        settings = write_dev_secrets(settings)
    try:
        ruleset = load_checked_ruleset(settings.rules_path)
        application = create_app(settings, ruleset=ruleset)
    except StartupError as error:
        fail(str(error))
    if settings.environment is Environment.dev:
        firstrun.bootstrap(settings, app_context(application).keyring, host, port)
    # uvicorn's access log is off: ObservabilityMiddleware writes a PHI-free JSON line instead.
    options: dict[str, Any] = {"host": host, "port": port, "access_log": False, "log_config": None}
    if workers == 1:
        uvicorn.run(application, **options)
    else:
        # Workers re-read the settings (environment and the secrets file just written) and
        # build their own app; the one built above only proved that startup succeeds.
        uvicorn.run("app.main:create_worker_app", factory=True, workers=workers, **options)
