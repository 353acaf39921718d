"""Request parameters as Binance reads them: from the query string and the form body, typed and
checked with Binance's errors, with every parameter required to be read (-1104 otherwise), and the
signature of SIGNED requests (HMAC, RSA or Ed25519: keys.py) verified over the exact bytes that
were sent."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from urllib.parse import parse_qsl

from . import errors

DECIMAL_RE = re.compile(r"^([0-9]{1,20})(\.[0-9]{1,20})?$")
DECIMAL_LEGAL = r"^([0-9]{1,20})(\.[0-9]{1,20})?$"
INT_RE = re.compile(r"^-?[0-9]{1,20}$")
INT_LEGAL = "^[0-9]{1,20}$"
CLIENT_ID_RE = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")
CLIENT_ID_LEGAL = r"^[\.A-Z\:/a-z0-9_-]{1,36}$"
# Symbols may hold non-ASCII characters since 2025-12 (UTF-8); ASCII ones stay upper case. The
# legal range Binance names in its -1100 message is still the ASCII one.
SYMBOL_RE = re.compile(r"^(?:[A-Z0-9\-_.]|[^\x00-\x7f]){1,20}$")
SYMBOL_LEGAL = "^[A-Z0-9-_.]{1,20}$"
MAX_RECV_WINDOW = 60_000
DEFAULT_RECV_WINDOW = 5_000
# `timestamp` may be sent in microseconds; no millisecond timestamp reaches 10**14 (year 5138).
MICROSECOND_TIMESTAMPS = 10**14


def valid_request_id(value, string_re: re.Pattern) -> bool:
    """A WebSocket request's `id`: absent, a signed 64-bit integer, or a string `string_re` accepts
    (the streams and the WebSocket API allow different characters)."""
    if value is None:
        return True
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return -(2**63) <= value < 2**63
    return isinstance(value, str) and bool(string_re.match(value))


class Params:
    """Parameters of one request. Query-string values win over body values, as on Binance."""

    def __init__(self, query: str, body: str):
        self.query, self.body = query, body
        self.values: dict[str, str] = {}
        for source in (body, query):  # query second: it overrides the body
            seen: set[str] = set()
            for key, value in parse_qsl(source, keep_blank_values=True):
                if key in seen:
                    raise errors.duplicate_parameter()
                seen.add(key)
                self.values[key] = value
        self.read: set[str] = set()

    def __contains__(self, name: str) -> bool:
        return name in self.values

    def raw(self, name: str) -> str | None:
        self.read.add(name)
        return self.values.get(name)

    def finish(self) -> None:
        """Binance refuses parameters it did not use (after all reads of an endpoint)."""
        if len(self.read & set(self.values)) != len(self.values):
            raise errors.unread_parameters(len(self.read & set(self.values)), len(self.values))

    # -- typed reads ----------------------------------------------------------------------------

    def string(self, name: str, required: bool = False) -> str | None:
        value = self.raw(name)
        if value is None:
            if required:
                raise errors.mandatory_missing(name)
            return None
        if value == "":
            if required:
                raise errors.mandatory_missing(name)
            raise errors.param_empty(name)
        return value

    def enum(self, name: str, choices, error, required: bool = False) -> str | None:
        value = self.string(name, required)
        if value is not None and value not in choices:
            raise error()
        return value

    def integer(self, name: str, required: bool = False, default: int | None = None) -> int | None:
        value = self.string(name, required)
        if value is None:
            return default
        if not INT_RE.match(value):
            raise errors.illegal_chars(name, INT_LEGAL)
        number = int(value)
        if abs(number) >= 2**63:
            raise errors.param_overflow(name)
        return number

    def decimal(self, name: str, required: bool = False, places: int = 8) -> Decimal | None:
        value = self.string(name, required)
        if value is None:
            return None
        if not DECIMAL_RE.match(value):
            raise errors.illegal_chars(name, DECIMAL_LEGAL)
        number = Decimal(value).normalize()
        if number.as_tuple().exponent < -places:  # type: ignore[operator]
            raise errors.bad_precision(name)
        return Decimal(value)

    def symbol(self, name: str = "symbol", required: bool = True) -> str | None:
        value = self.string(name, required)
        if value is None:
            return None
        if not SYMBOL_RE.match(value):
            raise errors.illegal_chars(name, SYMBOL_LEGAL)
        return value

    def symbol_list(self, name: str = "symbols") -> list[str] | None:
        value = self.string(name)
        if value is None:
            return None
        try:
            items = json.loads(value)
        except ValueError:
            raise errors.invalid_json(name) from None
        if not isinstance(items, list) or not items or not all(isinstance(s, str) for s in items):
            raise errors.invalid_json(name)
        if len(set(items)) != len(items):
            raise errors.duplicate_symbols()
        for item in items:
            if not SYMBOL_RE.match(item):
                raise errors.illegal_chars(name, SYMBOL_LEGAL)
        return items

    def client_order_id(self, name: str, empty_error) -> str | None:
        value = self.raw(name)
        if value is None:
            return None
        if value == "":
            raise empty_error()
        if not CLIENT_ID_RE.match(value):
            raise errors.illegal_chars(name, CLIENT_ID_LEGAL)
        return value

    def limit(self, default: int, maximum: int, clamp: bool = False) -> int:
        value = self.integer("limit", default=default)
        assert value is not None
        if value <= 0:
            raise errors.invalid_parameter("limit")
        if value > maximum:
            if not clamp:
                raise errors.invalid_parameter("limit")
            value = maximum
        return value

    # -- SIGNED security ------------------------------------------------------------------------

    def verify_signed(self, api_key, now: int) -> None:
        """timestamp + recvWindow + signature as Binance checks them (signature over query + body,
        by the key's kind: `keys.ApiKey.verify`)."""
        timestamp = self.integer("timestamp", required=True)
        # recvWindow is a DECIMAL with up to three places (microseconds) since 2025-08.
        recv_window = self.decimal("recvWindow", places=3)
        signature = self.string("signature", required=True)
        assert timestamp is not None and signature is not None
        if recv_window is None:
            recv_window = Decimal(DEFAULT_RECV_WINDOW)
        if recv_window <= 0:
            raise errors.invalid_parameter("recvWindow")
        if recv_window > MAX_RECV_WINDOW:
            raise errors.value_too_large("recvWindow", MAX_RECV_WINDOW)
        # Exactly the bytes sent: since 2026-01-15 Binance rejects signatures computed over a
        # payload that was not percent-encoded first, so a decoded-payload signature must fail here too.
        payload = _without_signature(self.query) + _without_signature(self.body)
        if not api_key.verify(payload.encode(), signature):
            raise errors.invalid_signature()
        if timestamp >= MICROSECOND_TIMESTAMPS:
            timestamp_ms = Decimal(timestamp) / 1000
        else:
            timestamp_ms = Decimal(timestamp)
        if timestamp_ms >= now + 1000:
            raise errors.timestamp_ahead()
        if now - timestamp_ms > recv_window:
            raise errors.timestamp_outside_window()


def _without_signature(source: str) -> str:
    return "&".join(part for part in source.split("&") if part and not part.startswith("signature="))
