"""The dev first run of `screening serve`: a demo clinic with all three doors, written down.

On a database without clinics it creates the demo clinic (with a phone number, so the form
can say whom to call), an API key, a physician and a patient invitation, prints how to use
each, and writes the same text (mode 0600) next to the secrets file. Later runs print where
that file is: a lost key or one-time password can be found again.
"""

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import typer

from app.apikey import service as apikey_service
from app.cli import user as user_cli
from app.cli.options import operator
from app.crypto import KeyRing
from app.db.engine import make_engine, make_sessionmaker
from app.db.unit import session_scope
from app.invitation import service as invitation_service
from app.settings import Settings

DEMO_CLINIC = "Demo clinic"
DEMO_PHONE = "+1 555 0100"
DEMO_SUBJECT = "MRN-DEMO-1"
FIRST_RUN_FILE = "screening-first-run.txt"
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


@dataclass(frozen=True, slots=True)
class _Demo:
    key: str
    password: str
    form_path: str
    expires_at: datetime


def first_run_path(settings: Settings) -> Path:
    """Where the first run's instructions are kept: beside the secrets file."""
    return Path(settings.secrets_file).resolve().parent / FIRST_RUN_FILE


def base_url(host: str, port: int) -> str:
    """The URL to print for ``host``: loopback for a wildcard address, IPv6 in brackets."""
    shown = "127.0.0.1" if host in {"0.0.0.0", "::", ""} else host
    return f"http://[{shown}]:{port}" if ":" in shown else f"http://{shown}:{port}"


def bootstrap(settings: Settings, keyring: KeyRing, host: str, port: int) -> None:
    """Create the demo clinic on an empty database and print its doors; else say where they are."""
    demo = _create_demo(settings, keyring)
    path = first_run_path(settings)
    if demo is None:
        if path.is_file():
            typer.echo(f"The demo API key, curl, form link and sign-in are in {path}", err=True)
        return
    text = instructions(demo, settings.public_base_url or base_url(host, port))
    typer.echo(text)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(text)
    os.chmod(path, 0o600)
    typer.echo(f"Written to {path} (mode 0600): a later `make run` says where it is.", err=True)


def _create_demo(settings: Settings, keyring: KeyRing) -> _Demo | None:
    engine = make_engine(settings.database_url)
    actor, now = operator(None), datetime.now(UTC)  # the OS user running the first `serve`
    try:
        with session_scope(make_sessionmaker(engine)) as session:
            if apikey_service.has_clinics(session):
                return None
            created = apikey_service.create(session, clinic_name=DEMO_CLINIC, actor=actor, now=now)
            physician = user_cli.create_demo_physician(
                session, clinic_name=DEMO_CLINIC, actor=actor
            )
            invitation_service.configure_clinic(
                session, clinic_name=DEMO_CLINIC, phone=DEMO_PHONE, form_origins=None, actor=actor
            )
            invitation = invitation_service.create(
                session,
                keyring=keyring,
                clinic_id=created.clinic_id,
                subject={"reference": DEMO_SUBJECT},
                language="en",
                expires_at=None,
                now=now,
                actor=actor,
            )
    finally:
        engine.dispose()
    assert physician.password is not None  # generated: the demo physician has none given
    return _Demo(created.key, physician.password, invitation.path, invitation.expires_at)


def instructions(demo: _Demo, url: str) -> str:
    """The three doors of the demo clinic, as printed and written down."""
    body = json.dumps({"questionnaire": "ketamine-infusion-candidacy", "answers": DEMO_ANSWERS})
    return (
        f"\nCreated the demo clinic {DEMO_CLINIC!r} (phone {DEMO_PHONE}).\n"
        f"\nTry the patient form: {url}{demo.form_path}\n"
        f"  (one patient, {DEMO_SUBJECT}; the link works until "
        f"{demo.expires_at:%d %b %Y} or until the form is sent)\n"
        f"\nIts API key:\n\n  {demo.key}\n\nTry it:\n\n"
        f"  curl -s -X POST {url}/v1/evaluate \\\n"
        f"    -H 'Authorization: Bearer {demo.key}' \\\n"
        f"    -H 'Content-Type: application/json' \\\n"
        f"    -d '{body}'\n"
        f"\nReview flagged screenings at {url}/review\n"
        f"  email:    {user_cli.DEMO_PHYSICIAN}\n"
        f"  password: {demo.password} (one-time: you choose a new one at the first sign-in)\n"
        f"\nMore: {url}/ and {url}/docs. Commands: .venv/bin/screening --help\n"
    )
