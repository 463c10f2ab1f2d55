"""JSON log lines (one object per line) and configure(), installed once per server process.

Log records carry only fields we choose: a fixed message plus ``extra`` values (request id,
route template, status, codes). Messages of third-party loggers are kept, but exception
*messages* never are: a traceback is rendered as ``file:line in function`` frames and the
exception type, because exception text (a KeyError, a driver error) may hold submitted values.
"""

import json
import logging
import sys
import traceback
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

_STANDARD_ATTRIBUTES = frozenset(
    logging.LogRecord("", 0, "", 0, "", (), None).__dict__.keys() | {"message", "asctime"}
)
_MARKER = "_screening_json_handler"
# Database drivers put a failed statement's server message in their warnings' arguments
# ("error ignored in rollback: duplicate key ... Key (name)=(...)"): their lines keep the
# message template and drop the arguments, as exception messages are dropped.
_QUOTES_VALUES = ("psycopg", "sqlalchemy")


def exception_fields(exc: BaseException) -> dict[str, Any]:
    """The type and code locations of an exception (and its causes), never its message."""
    frames: list[str] = []
    chain: list[str] = []
    current: BaseException | None = exc
    while current is not None and len(chain) < 5:
        chain.append(type(current).__qualname__)
        frames.extend(_frames(current.__traceback__))
        current = current.__cause__ or current.__context__
    return {"exc_type": chain[0], "exc_chain": chain, "exc_frames": frames[-30:]}


def _frames(tb: TracebackType | None) -> list[str]:
    return [f"{f.filename}:{f.lineno} in {f.name}" for f in traceback.extract_tb(tb)]


def log_fields(logger: logging.Logger, message: str, fields: dict[str, Any]) -> None:
    """Log ``message`` at INFO with ``fields`` as the record's extras (for per-request lines).

    What ``logger.info(message, extra=fields)`` does, without looking up the caller's source
    line (a stack walk the JSON line never shows). The caller checks the level first.
    """
    record = logger.makeRecord(logger.name, logging.INFO, "", 0, message, (), None)
    record.__dict__.update(fields)
    logger.handle(record)


class JsonFormatter(logging.Formatter):
    """Render a record as one JSON object: time (UTC), level, logger, pid, message, extras."""

    def format(self, record: logging.LogRecord) -> str:
        """Return the JSON line of ``record`` (newlines and control characters escaped)."""
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,
            "message": (
                str(record.msg) if record.name.startswith(_QUOTES_VALUES) else record.getMessage()
            ),
        }
        for key, value in record.__dict__.items():
            # uvicorn's `color_message` repeats the message with terminal colour codes.
            if key not in _STANDARD_ATTRIBUTES and key != "color_message" and key[0] != "_":
                line[key] = value
        if record.exc_info and record.exc_info[1] is not None:
            line |= exception_fields(record.exc_info[1])
        return json.dumps(line, default=str, ensure_ascii=True)


def configure(level: str) -> None:
    """Send every log record to stderr as JSON at ``level``; idempotent per process.

    uvicorn's own access log is switched off (the observability middleware logs each request
    by route template); its error log propagates here. SQLAlchemy stays at WARNING: at INFO
    it would echo SQL statements.
    """
    root = logging.getLogger()
    if not any(getattr(handler, _MARKER, False) for handler in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        setattr(handler, _MARKER, True)
        root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    access = logging.getLogger("uvicorn.access")
    access.handlers.clear()
    access.disabled = True
    logging.getLogger("sqlalchemy").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
