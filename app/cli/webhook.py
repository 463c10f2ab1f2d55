"""`screening webhook add|list|remove|log|replay|deliver`: signed webhooks of a clinic."""

import json
import signal
import threading
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from app.apikey import service as apikey_service
from app.audit.outbox import EVENT_TYPES
from app.cli.db import fail, settings_or_exit
from app.cli.options import ActorOption, database_session, operator
from app.crypto import KeyRing, KeySpecError
from app.db.engine import make_engine, make_sessionmaker
from app.errors import NotFound, ValidationFailed
from app.webhook import service as webhook_service
from app.webhook import worker

app = typer.Typer(
    help="Signed webhooks (Standard Webhooks) to clinic systems.", no_args_is_help=True
)
_EVENTS = ", ".join(EVENT_TYPES)


def _keyring() -> KeyRing:
    settings = settings_or_exit()
    if settings.data_keys is None:
        fail("SCREENING_DATA_KEY is not set: webhook secrets are encrypted with it")
    try:
        return KeyRing.parse(settings.data_keys.get_secret_value())
    except KeySpecError as error:
        fail(f"SCREENING_DATA_KEY is invalid: {error}")


def _echo(value: Any, as_json: bool, text: str) -> None:
    typer.echo(json.dumps(value, indent=2) if as_json else text)


@app.command("add")
def add(
    clinic: Annotated[str, typer.Option(help="Name of an existing clinic.")],
    url: Annotated[str, typer.Option(help="The receiver's http(s) URL.")],
    events: Annotated[list[str], typer.Option(help=f"Repeatable or comma-separated: {_EVENTS}.")],
    actor: ActorOption = None,
) -> None:
    """Add an endpoint; its signing secret is printed once, alone on the last line."""
    wanted = [part.strip() for value in events for part in value.split(",") if part.strip()]
    keyring = _keyring()
    try:
        with database_session() as session:
            found = apikey_service.find_clinic(session, name=clinic)
            if found is None:
                fail(f"no clinic called {clinic!r}")
            created = webhook_service.add(session, keyring=keyring, clinic_id=found.id, url=url,
                                          events=wanted, actor=operator(actor),
                                          now=datetime.now(UTC))  # fmt: skip
    except ValidationFailed as error:
        fail("; ".join(problem.message for problem in error.errors))
    typer.echo(f"Webhook endpoint {created.endpoint['id']} for {clinic!r}: {url}", err=True)
    typer.echo("Store the signing secret now: it is shown only once.", err=True)
    typer.echo(created.secret)


@app.command("list")
def list_(as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False) -> None:
    """Every active endpoint: id, clinic, URL and events."""
    with database_session() as session:
        rows = [
            webhook_service.endpoint_dict(endpoint) | {"clinic_id": str(endpoint.clinic_id)}
            for endpoint in webhook_service.list_endpoints(session, clinic_id=None)
        ]
    lines = [
        f"{r['id']}  {r['url']}  {','.join(r['events'])}  clinic {r['clinic_id']}" for r in rows
    ]
    _echo(rows, as_json, "\n".join(lines) or "no webhook endpoints")


@app.command("remove")
def remove(
    endpoint_id: Annotated[str, typer.Argument(help="The endpoint id.")],
    actor: ActorOption = None,
) -> None:
    """Stop sending to an endpoint (its delivery log is kept)."""
    try:
        with database_session() as session:
            webhook_service.remove(
                session,
                endpoint_id=_uuid(endpoint_id),
                clinic_id=None,
                actor=operator(actor),
                now=datetime.now(UTC),
            )
    except NotFound as error:
        fail(error.detail)
    typer.echo(f"Removed webhook endpoint {endpoint_id}.")


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        fail(f"{value!r} is not an id")


@app.command("log")
def log(
    endpoint: Annotated[str | None, typer.Option(help="Only this endpoint.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
) -> None:
    """The delivery log: status, attempts and last error of each delivery."""
    try:
        with database_session() as session:
            rows = webhook_service.delivery_log(
                session,
                clinic_id=None,
                endpoint_id=None if endpoint is None else _uuid(endpoint),
                limit=limit,
            )
    except NotFound as error:
        fail(error.detail)
    lines = [
        f"{r['id']}  {r['type']:<22} {r['status']:<9} attempts {r['attempts']}  "
        f"{r['last_error'] or r['last_status'] or ''}  event {r['event_id']}"
        for r in rows
    ]
    _echo(rows, as_json, "\n".join(lines) or "no deliveries")


@app.command("replay")
def replay(
    delivery_id: Annotated[str, typer.Argument(help="A delivery id, or an event id (msg_...).")],
) -> None:
    """Send a delivery (or every delivery of an event) again, with the same event id."""
    try:
        with database_session() as session:
            count = webhook_service.replay(session, delivery_or_event_id=delivery_id,
                                           clinic_id=None, actor=operator(None),
                                           now=datetime.now(UTC))  # fmt: skip
    except NotFound as error:
        fail(error.detail)
    typer.echo(f"Queued {count} delivery(ies) again.")


@app.command("deliver")
def deliver(
    once: Annotated[bool, typer.Option(help="One pass over what is due, then exit.")] = False,
) -> None:
    """Run the delivery worker (as `screening serve` does), until interrupted."""
    keyring = _keyring()
    engine = make_engine(settings_or_exit().database_url)
    deliverer = worker.Deliverer(make_sessionmaker(engine), keyring)
    try:
        if once:
            while deliverer.run_once():
                pass
            return
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            deliverer.run(stop)
        except KeyboardInterrupt:
            stop.set()
    finally:
        engine.dispose()
