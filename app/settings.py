"""Settings (pydantic-settings, ``SCREENING_*``) and get_settings()."""

import base64
import binascii
import functools
import sys
import sysconfig
from enum import StrEnum
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

_DATA_DIR_NAME = "candidacy-screening"


class Environment(StrEnum):
    """Where the service runs; ``prod`` refuses to start without real secrets."""

    dev = "dev"
    test = "test"
    prod = "prod"


def resource_dir(name: str, marker: str) -> Path:
    """Return the directory of a resource shipped beside the package (``rules``, ``migrations``).

    A checkout or an editable install has it at the repository root, next to ``app/``; a
    regular ``pip install .`` puts it under ``<prefix>/share/candidacy-screening/`` through
    setuptools data-files. ``marker`` is a file inside the directory that proves it is ours.
    """
    candidates = [Path(__file__).resolve().parent.parent / name]
    for prefix in (sysconfig.get_path("data"), sys.prefix):
        candidates.append(Path(prefix) / "share" / _DATA_DIR_NAME / name)
    for candidate in candidates:
        if (candidate / marker).is_file():
            return candidate
    return candidates[0]


def default_rules_path() -> Path:
    """Return the directory of the default rule pack, found from any working directory."""
    return resource_dir("rules", "ketamine-infusion/pack.yaml") / "ketamine-infusion"


class Settings(BaseSettings):
    """Service configuration; each field is read from ``SCREENING_<FIELD>`` (see README)."""

    model_config = SettingsConfigDict(
        env_prefix="SCREENING_",
        env_file=".env",
        extra="forbid",
        populate_by_name=True,
        validate_default=True,
    )

    environment: Environment = Environment.dev
    database_url: str = "sqlite:///./screening.db"
    rules_path: Path = Field(
        default_factory=default_rules_path,
        validation_alias=AliasChoices("SCREENING_RULES_DIR", "rules_path"),
    )
    clinic_timezone: str = "UTC"
    data_keys: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("SCREENING_DATA_KEY", "data_keys")
    )
    audit_key: SecretStr | None = None
    secrets_file: Path = Path("screening-secrets.env")
    form_frame_ancestors: str = "'none'"
    log_level: str = "INFO"
    max_body_bytes: int = Field(default=65536, ge=1024, le=16 * 1024 * 1024)
    # Where patients reach the service (behind a proxy, the request's own host is internal).
    public_base_url: str | None = Field(default=None, pattern=r"^https?://[^/?#\s]+(/[^?#\s]*)?$")
    # /docs, /redoc and /openapi.json: on in dev and test, off in prod unless set to true.
    docs_enabled: bool | None = None
    # RFC 9116 /.well-known/security.txt Contact (mailto: or https:); without it, a 404.
    security_contact: str | None = Field(
        default=None, pattern=r"^(mailto:[^\s@]+@[^\s@]+|https://\S+)$"
    )
    # Per-credential token bucket on /v1 (app/apikey/ratelimit.py): sustained rate and burst.
    rate_limit_per_second: float = Field(default=50.0, gt=0, le=100_000)
    rate_limit_burst: int = Field(default=100, ge=1, le=1_000_000)

    @field_validator("clinic_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {value!r}") from None
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str) -> str:
        if not value.startswith(("sqlite:", "postgresql:", "postgresql+psycopg:")):
            raise ValueError("must start with sqlite:// or postgresql+psycopg://")
        return value.replace("postgresql://", "postgresql+psycopg://", 1)

    @field_validator("audit_key")
    @classmethod
    def _audit_key_is_base64(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            try:
                raw = base64.b64decode(value.get_secret_value(), validate=True)
            except (binascii.Error, ValueError):
                raise ValueError("must be base64 (the value is not shown)") from None
            if len(raw) < 32:
                raise ValueError("must decode to at least 32 bytes")
        return value

    @model_validator(mode="after")
    def _prod_needs_secrets(self) -> "Settings":
        # The template's "changethis" guard: production never runs on generated dev keys or
        # without keys at all; dev generates them on first `screening serve`.
        if self.environment is Environment.prod:
            missing = [
                name
                for name, value in (
                    ("SCREENING_DATA_KEY", self.data_keys),
                    ("SCREENING_AUDIT_KEY", self.audit_key),
                )
                if value is None
            ]
            base = self.public_base_url
            if base is None:
                missing.append("SCREENING_PUBLIC_BASE_URL")
            if missing:
                raise ValueError(f"production requires {' and '.join(missing)} to be set")
            if base is not None and not base.startswith("https://"):
                raise ValueError(
                    "production requires SCREENING_PUBLIC_BASE_URL to be an https:// URL "
                    "(patients' invitation links are built from it)"
                )
        return self

    @property
    def is_prod(self) -> bool:
        """Whether this is production (HSTS, Secure cookies, docs off by default)."""
        return self.environment is Environment.prod

    @property
    def are_docs_on(self) -> bool:
        """Whether /docs, /redoc and /openapi.json are served (``SCREENING_DOCS_ENABLED``)."""
        return self.docs_enabled if self.docs_enabled is not None else not self.is_prod

    @property
    def is_sqlite(self) -> bool:
        """Whether the configured database is SQLite."""
        return self.database_url.startswith("sqlite")

    @property
    def timezone(self) -> ZoneInfo:
        """The clinic's time zone: "today" (the as-of date) is computed in it."""
        return ZoneInfo(self.clinic_timezone)


def load_settings() -> Settings:
    """Read settings from the environment, ``.env`` and the secrets file (uncached)."""
    settings = Settings()
    if settings.secrets_file.is_file():
        # Later files win over earlier ones; real environment variables win over both.
        settings = Settings(_env_file=(".env", settings.secrets_file))
    return settings


def describe_error(error: ValidationError) -> str:
    """Render a settings error as one line per problem, never echoing a value (secrets)."""
    lines = []
    for problem in error.errors(include_input=False, include_url=False):
        where = ".".join(str(part) for part in problem["loc"]) or "settings"
        lines.append(f"  {where}: {problem['msg']}")
    return "invalid configuration (SCREENING_* environment variables):\n" + "\n".join(lines)


@functools.cache
def get_settings() -> Settings:
    """Return the process settings; called only by ``create_app`` and the CLI root."""
    return load_settings()
