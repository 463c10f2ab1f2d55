"""create_app(settings, …) factory; the lifespan loads the rule pack; mounts the routers."""

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from app import __version__, html, logs
from app.account import ui as account_ui
from app.apikey.auth import KeyCache
from app.audit import denials
from app.auditlog import router as audit_router
from app.cds import router as cds_router
from app.context import AppContext, Clock, SystemClock, app_context
from app.crypto import KeyRing, KeySpecError
from app.db import migrate
from app.db.engine import WalCheckpointer, make_engine, make_sessionmaker
from app.db.unit import UnitOfWork
from app.engine import Ruleset, RulesetError, load_ruleset, run_tests
from app.errors import AppError, install_handlers
from app.fhir import router as fhir_router
from app.form import router as form_router
from app.form import service as form_service
from app.health import router as health_router
from app.home import docs as home_docs
from app.home import router as home_router
from app.invitation import router as invitation_router
from app.jsonbody import body_schemas
from app.metrics import Metrics
from app.observability import HttpMiddleware
from app.responses import declare_shared_errors, declare_unavailable
from app.review import policy_ui
from app.review import router as review_router
from app.review import ui as review_ui
from app.rulepack import integrity as rulepack_integrity
from app.rulepack import policy as rulepack_policy
from app.rulepack import router as rulepack_router
from app.rulepack import service as rulepack_service
from app.rulepack import translation as rulepack_translation
from app.rulepack.policy import ActivePackCache
from app.rulepack.service import RulePackIntegrityError, RulesetCache
from app.screening import router as screening_router
from app.settings import Settings, get_settings
from app.webhook import router as webhook_router
from app.webhook import worker as webhook_worker

logger = logging.getLogger(__name__)

DESCRIPTION = """Screens prospective patients for low-dose ketamine infusion candidacy.

Authenticate with `Authorization: Bearer <api key>`. Errors are RFC 9457
`application/problem+json` with an `errors` list naming each offending field. Unknown JSON
fields are rejected; a missing, null or "unsure" answer is *unknown*, never *no*.
"""


class StartupError(RuntimeError):
    """The service cannot start: invalid configuration or an invalid or failing rule pack."""


def load_checked_ruleset(path: Path) -> Ruleset:
    """Load the rule pack and run its embedded tests; StartupError if either fails."""
    try:
        ruleset = load_ruleset(path)
    except RulesetError as error:
        raise StartupError(f"rule pack {path} is invalid:\n" + "\n".join(error.problems)) from None
    report = run_tests(ruleset)
    if not report.ok:
        lines = [
            f"{f.rule}: {f.name}: expected {f.expected}, got {f.actual or f.error}"
            for f in report.failures
        ]
        lines += [
            f"{rule}: no test expects {', '.join(lacking)}"
            for rule, lacking in report.missing.items()
        ]
        raise StartupError(f"rule pack {path} fails its own tests:\n" + "\n".join(lines))
    return ruleset


def load_keyring(settings: Settings) -> KeyRing:
    """Parse ``SCREENING_DATA_KEY``; StartupError (without key material) if absent or bad."""
    if settings.data_keys is None:
        raise StartupError(
            "SCREENING_DATA_KEY is not set. In development, `screening serve` generates it "
            f"into {settings.secrets_file}; in production, provide it (see README)."
        )
    try:
        return KeyRing.parse(settings.data_keys.get_secret_value())
    except KeySpecError as error:
        raise StartupError(f"SCREENING_DATA_KEY is invalid: {error}") from None


def create_app(
    settings: Settings | None = None,
    *,
    sessionmaker: sessionmaker[Session] | None = None,
    clock: Clock | None = None,
    ruleset: Ruleset | None = None,
) -> FastAPI:
    """Build the application.

    Args:
        settings: Configuration; ``get_settings()`` when omitted.
        sessionmaker: Sessions to use (tests pass one bound to a rolled-back transaction);
            by default an engine is created from ``settings.database_url`` and disposed on
            shutdown.
        clock: The time source (tests pass a fixed one).
        ruleset: An already loaded and checked rule pack; loaded in the lifespan otherwise.

    Raises:
        StartupError: If the data keys are missing or invalid.
    """
    settings = settings or get_settings()
    keyring = load_keyring(settings)
    engine = None
    if sessionmaker is None:
        engine = make_engine(settings.database_url)
        sessionmaker = make_sessionmaker(engine)
    context = AppContext(
        settings=settings,
        unit=UnitOfWork(sessionmaker),
        keyring=keyring,
        clock=clock or SystemClock(settings.timezone),
        metrics=Metrics(),
        schema_heads=migrate.head_revisions(migrate.make_config()),
        components={
            KeyCache: KeyCache(),
            ActivePackCache: ActivePackCache(),
            RulesetCache: rulepack_service.stored_rulesets(),
        },
    )
    app = FastAPI(
        title="Candidacy screening API",
        version=__version__,
        description=DESCRIPTION,
        lifespan=_lifespan(ruleset, engine),
        **home_docs.fastapi_options(settings),
        # FastAPI's native OpenTelemetry support looks up the global providers on every
        # request (~3 µs); this service exports Prometheus metrics and JSON logs instead.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.context = context
    install_handlers(app, observe=denials.record)
    _mount(app)
    home_docs.install(app, settings)
    app.add_middleware(
        HttpMiddleware,
        metrics=context.metrics,
        max_bytes=settings.max_body_bytes,
        is_hsts=settings.is_prod,
    )
    return app


def _lifespan(
    ruleset: Ruleset | None, engine: Engine | None
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Load and store the rule pack; own the engine (if the app made it) and the writers."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        context = app_context(app)
        loaded = ruleset or load_checked_ruleset(context.settings.rules_path)
        with context.unit.session() as session:
            now = context.clock.now()
            rulepack_service.store_rule_pack(session, ruleset=loaded, now=now)
            rulepack_translation.store(
                session,
                sha256=loaded.sha256,
                catalogues=form_service.load_catalogues(context.settings.rules_path),
                now=now,
            )
            rulepack_policy.adopt_unpinned(session, default=loaded, now=now)
        context.ruleset = loaded
        # The app's own SQLite engine leaves WAL checkpoints to a background thread.
        is_sqlite = engine is not None and engine.dialect.name == "sqlite"
        checkpointer = WalCheckpointer(engine) if engine is not None and is_sqlite else None
        if checkpointer is not None:
            checkpointer.start()
        # The webhook worker runs only on the app's own engine (not on a test's transaction).
        deliveries = webhook_worker.start(
            context.unit.factory, context.keyring, enabled=engine is not None
        )
        logger.info("rule pack %s %s loaded (sha256 %s)", loaded.id, loaded.version, loaded.sha256)
        yield
        denials.flush(context)  # the last minute's counted denials (app/audit/denials.py)
        deliveries.stop()
        context.unit.close()
        if checkpointer is not None:
            checkpointer.stop()
        if engine is not None:
            engine.dispose()

    return lifespan


def _mount(app: FastAPI) -> None:
    """Include every router and page, and document the hot routes' request bodies."""
    app.include_router(screening_router.router)
    app.include_router(rulepack_router.router)
    app.include_router(audit_router.router)
    app.include_router(health_router.router)
    app.include_router(invitation_router.router)
    app.include_router(fhir_router.router)
    app.include_router(cds_router.router)
    app.include_router(webhook_router.router)
    form_router.install(app)
    app.include_router(review_router.router)
    app.include_router(account_ui.router)
    app.include_router(review_ui.router)
    app.include_router(policy_ui.router)
    app.include_router(home_router.router)
    html.install(app)
    integrity = rulepack_integrity.handler(app.exception_handlers[AppError])
    app.add_exception_handler(RulePackIntegrityError, integrity)  # audited, then as any 500
    schemas = body_schemas(screening_router.BODY_MODELS)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = FastAPI.openapi(app)
            declare_shared_errors(document)
            declare_unavailable(document)
            document.setdefault("components", {}).setdefault("schemas", {}).update(schemas)
            document["components"]["schemas"] = dict(
                sorted(document["components"]["schemas"].items())
            )
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]


def create_worker_app() -> FastAPI:
    """The factory of each uvicorn worker process (``screening serve --workers N``).

    Settings come from the environment and the secrets file; logging is configured here
    because a spawned worker does not inherit the parent's handlers.
    """
    settings = get_settings()
    logs.configure(settings.log_level)
    return create_app(settings)
