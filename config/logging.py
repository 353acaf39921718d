"""Process-wide logging: one single-line format, with configured secrets redacted."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable

REDACTED = "***"

_FORMAT = "%(asctime)s level=%(levelname)s logger=%(name)s %(message)s"


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


class SingleLineFormatter(logging.Formatter):
    """`<UTC ISO timestamp> level=... logger=... message`, with newlines escaped.

    One record is one line, so log collectors never split a traceback into many events.
    """

    converter = time.gmtime

    def __init__(self) -> None:
        super().__init__(_FORMAT)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", self.converter(record.created))
        return f"{stamp}.{int(record.msecs):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        return super().format(record).replace("\r", "\\r").replace("\n", "\\n")


def setup_logging(level: str | int = "INFO", secrets: Iterable[str] = ()) -> None:
    """Configure the root logger once per process; later calls only adjust it.

    A later call sets the level and adds secrets to redact, but never adds a second
    handler, so calling it from every entry point is safe.
    """
    root = logging.getLogger()
    root.setLevel(level.upper() if isinstance(level, str) else level)
    for handler in root.handlers:
        for existing in handler.filters:
            if isinstance(existing, SecretRedactingFilter):
                existing.add_secrets(secrets)
                return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(SingleLineFormatter())
    handler.addFilter(SecretRedactingFilter(secrets))
    root.addHandler(handler)
