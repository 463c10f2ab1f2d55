"""`screening serve`: run the API with uvicorn (never migrates; dev first-run bootstrap)."""

import base64
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
import uvicorn
from pydantic import ValidationError

from app import logs
from app.apikey import service as apikey_service
from app.audit import service as audit_service
from app.cli import user as user_cli
from app.cli.db import fail, settings_or_exit
from app.crypto import generate_key_spec
from app.db import migrate
from app.db.engine import make_engine, make_sessionmaker
from app.db.unit import session_scope
from app.main import StartupError, create_app, load_checked_ruleset
from app.settings import Environment, Settings, describe_error, load_settings

DEMO_CLINIC = "Demo clinic"
DEMO_ANSWERS = {
    "date_of_birth": "1984-03-27",
    "sex_at_birth": "female",
    "conditions": ["migraine"],
    "symptom_duration_months": 48,
    "prior_treatments_tried": "yes",
    "pregnant": "no",
    "breastfeeding": "no",
    "hypertension": "no",
    "systolic_bp": 148,
    "diastolic_bp": 88,
    "concussion": "no",
    "brain_injury": "no",
    "intracranial_pressure": "no",
    "heart_failure": "no",
    "schizophrenia": "no",
    "ketamine_before": "no",
}


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


def create_demo_key(settings: Settings, host: str, port: int) -> None:
    """On a database without clinics, create the demo clinic and print its key and a curl."""
    engine = make_engine(settings.database_url)
    with session_scope(make_sessionmaker(engine)) as session:
        created = None
        if not apikey_service.has_clinics(session):
            created = apikey_service.create(
                session,
                clinic_name=DEMO_CLINIC,
                actor=audit_service.Actor.cli(),
                now=datetime.now(UTC),
            )
            physician = user_cli.create_demo_physician(session, clinic_name=DEMO_CLINIC)
    engine.dispose()
    if created is None:
        return
    shown_host = "127.0.0.1" if host in {"0.0.0.0", "::", ""} else host
    shown_host = f"[{shown_host}]" if ":" in shown_host else shown_host
    body = json.dumps({"questionnaire": "ketamine-infusion-candidacy", "answers": DEMO_ANSWERS})
    typer.echo(
        f"\nCreated the demo clinic {DEMO_CLINIC!r}. Its API key (shown only this once):\n\n"
        f"  {created.key}\n\nTry it:\n\n"
        f"  curl -s -X POST http://{shown_host}:{port}/v1/evaluate \\\n"
        f"    -H 'Authorization: Bearer {created.key}' \\\n"
        f"    -H 'Content-Type: application/json' \\\n"
        f"    -d '{body}'\n"
    )
    typer.echo(user_cli.sign_in_instructions(physician, f"http://{shown_host}:{port}"))


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
        create_demo_key(settings, host, port)
    # uvicorn's access log is off: ObservabilityMiddleware writes a PHI-free JSON line instead.
    options: dict[str, Any] = {"host": host, "port": port, "access_log": False, "log_config": None}
    if workers == 1:
        uvicorn.run(application, **options)
    else:
        # Workers re-read the settings (environment and the secrets file just written) and
        # build their own app; the one built above only proved that startup succeeds.
        uvicorn.run("app.main:create_worker_app", factory=True, workers=workers, **options)
