"""Process-wide logging: one line per record (text or JSON), the request id carried along, secrets redacted.

setup_logging(level, secrets, fmt="text"|"json", demote=...)   once per process, idempotent
log_context(request_id=...)                                    the ids every line logged meanwhile carries
SecretRedactingFilter   configured secret values → "***" in messages and tracebacks
ContextFilter           copies the current log context (request id) onto each record
Demote                  records an operator does not need (per-task chatter) → DEBUG
SingleLineFormatter     `<UTC time> level=... logger=... [request_id=... ]message`, newlines escaped
JsonFormatter           one JSON object a line: time, level, logger, process, pid, message, request_id, ...
"""

from __future__ import annotations

import contextvars
import logging
import sys
import time
from collections.abc import Callable, Iterable
from contextlib import contextmanager

import orjson

REDACTED = "***"
FORMATS = ("text", "json")

_FORMAT = "%(asctime)s level=%(levelname)s logger=%(name)s %(context)s%(message)s"

# The ids of the work in progress (a web request, a Celery task), for every line logged meanwhile.
# A ContextVar follows asyncio tasks (each Sanic request) and threads; Celery sets it per task.
_context: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar("spotgate_log_context", default=None)
# LogRecord attributes that are not "extra" fields (JSON lines carry extras as fields of their own).
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "context"}


def set_log_context(**ids: str | None) -> contextvars.Token:
    """Make `ids` (e.g. request_id=...) part of every line logged from here in this context."""
    return _context.set({k: v for k, v in ids.items() if v})


def reset_log_context(token: contextvars.Token) -> None:
    _context.reset(token)


@contextmanager
def log_context(**ids: str | None):
    token = set_log_context(**ids)
    try:
        yield
    finally:
        reset_log_context(token)


def current_request_id() -> str | None:
    ids = _context.get()
    return ids.get("request_id") if ids else None


class SecretRedactingFilter(logging.Filter):
    """Replaces every configured secret value in a record's message and traceback.

    Attach it to handlers, not loggers: a handler's filters see records propagated from
    every logger, a logger's filters only the records logged on it directly.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._secrets: tuple[str, ...] = ()
        self.add_secrets(secrets)

    def add_secrets(self, secrets: Iterable[str]) -> None:
        # Longest first, so a secret that contains another is replaced whole.
        merged = set(self._secrets) | {s for s in secrets if s}
        self._secrets = tuple(sorted(merged, key=len, reverse=True))

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        message = record.getMessage()
        redacted = self.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            # Formatters reuse exc_text when set, so the traceback is redacted once, here.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


class ContextFilter(logging.Filter):
    """Puts the current log context (request id, ...) on each record as `record.context_ids`."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "context_ids"):
            record.context_ids = _context.get()
        return True


class Demote(logging.Filter):
    """Lowers records `rule(record)` picks to DEBUG, and drops them unless the root logger shows DEBUG.

    Libraries log some routine events at INFO that are not an operator's business (Celery: every task
    received and succeeded, every periodic task beat sends — three lines a second with a one-second
    schedule); the rule names them, they stay visible with LOG_LEVEL=DEBUG."""

    def __init__(self, rule: Callable[[logging.LogRecord], bool]) -> None:
        super().__init__()
        self.rule = rule

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.INFO and self.rule(record):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger().isEnabledFor(logging.DEBUG)
        return True


def _utc(record: logging.LogRecord) -> str:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    return f"{stamp}.{int(record.msecs):03d}Z"


class SingleLineFormatter(logging.Formatter):
    """`<UTC ISO timestamp> level=... logger=... [request_id=... ]message`, with newlines escaped.

    One record is one line, so log collectors never split a traceback into many events.
    """

    def __init__(self) -> None:
        super().__init__(_FORMAT)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return _utc(record)

    def format(self, record: logging.LogRecord) -> str:
        ids = getattr(record, "context_ids", None)
        record.context = "".join(f"{k}={v} " for k, v in ids.items()) if ids else ""
        return super().format(record).replace("\r", "\\r").replace("\n", "\\n")


class JsonFormatter(logging.Formatter):
    """One JSON object per record and line: `time`, `level`, `logger`, `process`, `pid`, `message`, the
    log context's ids (`request_id`), `exception` when there is one, and any `extra=` fields."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": _utc(record),
            "level": record.levelname,
            "logger": record.name,
            "process": record.processName,
            "pid": record.process,
            "message": record.getMessage(),
        }
        ids = getattr(record, "context_ids", None)
        if ids:
            line.update(ids)
        for key, value in record.__dict__.items():
            if key not in _RECORD_FIELDS and key != "context_ids" and key not in line:
                line[key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        return orjson.dumps(line, default=str).decode()


def setup_logging(
    level: str | int = "INFO",
    secrets: Iterable[str] = (),
    fmt: str = "text",
    demote: Callable[[logging.LogRecord], bool] | None = None,
) -> None:
    """Configure the root logger once per process; later calls only adjust it.

    A later call sets the level, adds secrets to redact and a demotion rule, but never adds a
    second handler, so calling it from every entry point is safe. Every logger propagates to this
    one handler: libraries that bring their own (Sanic) must be told not to (see app.create_app).
    """
    root = logging.getLogger()
    root.setLevel(level.upper() if isinstance(level, str) else level)
    for handler in root.handlers:
        for existing in handler.filters:
            if isinstance(existing, SecretRedactingFilter):
                existing.add_secrets(secrets)
                if demote is not None and not any(isinstance(f, Demote) and f.rule is demote for f in handler.filters):
                    handler.addFilter(Demote(demote))
                return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else SingleLineFormatter())
    handler.addFilter(SecretRedactingFilter(secrets))
    handler.addFilter(ContextFilter())
    if demote is not None:
        handler.addFilter(Demote(demote))
    root.addHandler(handler)
