"""The /ws protocol with no I/O: channel names, message kinds and their schemas, frames.

    client → server   subscribe {channels, lastEventId?} · unsubscribe {channels} · ping · auth {token}
    server → client   welcome · authenticated · subscribed · unsubscribed · pong · error {code, message, channel?}
                      data: {type: ticker|trade|kline|depth.snapshot|depth.diff|status|user|order, channel, data, id?}

One client's state machine over this protocol is app/ws_session.py; app/hub.py and app/ws.py are the
I/O around it.
"""

from __future__ import annotations

import re
import string
import struct
import time
from dataclasses import dataclass
from enum import StrEnum

import orjson

from services.contract.channels import INTERVALS, Channel, ChannelKind, DataType
from services.symbols import fold_symbol

from .errors import BadRequest

# A client's spelling of a symbol: ASCII letters (folded to upper case) and digits, and non-ASCII
# characters (Binance lists UTF-8 symbol names since 2025-12-15)
SYMBOL_RE = re.compile(r"^(?:[A-Za-z0-9]|[^\x00-\x7f]){1,20}$")
EVENT_ID_RE = re.compile(r"^(\d{1,20})-(\d{1,20})$")
MAX_CHANNEL_LENGTH = 64
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
MAX_TOKEN_LENGTH = 8192


class ClientKind(StrEnum):
    SUBSCRIBE = "subscribe"
    UNSUBSCRIBE = "unsubscribe"
    PING = "ping"
    AUTH = "auth"


class ServerKind(StrEnum):
    WELCOME = "welcome"
    AUTHENTICATED = "authenticated"
    SUBSCRIBED = "subscribed"
    UNSUBSCRIBED = "unsubscribed"
    PONG = "pong"
    ERROR = "error"
    # data messages are services.contract.channels.DataType: the relay's own, forwarded as they are


# Which data messages a channel carries (anything else published on it is dropped).
CHANNEL_MESSAGES = {
    ChannelKind.TICKER: {DataType.TICKER, DataType.STATUS},
    ChannelKind.DEPTH: {DataType.DEPTH_SNAPSHOT, DataType.DEPTH_DIFF, DataType.STATUS},
    ChannelKind.TRADES: {DataType.TRADE, DataType.STATUS},
    ChannelKind.KLINE: {DataType.KLINE, DataType.STATUS},
    ChannelKind.USER: {DataType.USER, DataType.STATUS},
    ChannelKind.ORDERS: {DataType.ORDER, DataType.STATUS},
}


# -- channels ------------------------------------------------------------------------------------------


def parse_channel(raw: object) -> Channel:
    """A client's spelling of a channel (services/contract/channels.py's Channel). Syntax only: the
    symbol is upper-cased here and checked against exchangeInfo by the caller."""
    if not isinstance(raw, str) or not raw or len(raw) > MAX_CHANNEL_LENGTH:
        raise _bad_channel(raw, "A channel is a string like 'ticker:BTCUSDT'")
    parts = raw.strip().split(":")
    try:
        kind = ChannelKind(parts[0].translate(_ASCII_LOWER))  # never str.lower(): "K" (U+212A) → "k"
    except ValueError:
        raise _bad_channel(
            raw,
            f"Unknown channel '{raw}'; channels are "
            + ", ".join(
                ("ticker:<SYMBOL>", "depth:<SYMBOL>", "trades:<SYMBOL>", "kline:<SYMBOL>:<interval>", "user", "orders")
            ),
        ) from None
    if kind in (ChannelKind.USER, ChannelKind.ORDERS):
        if len(parts) != 1:
            raise _bad_channel(raw, f"The '{kind}' channel takes no symbol")
        return Channel(kind)
    expected = 3 if kind == ChannelKind.KLINE else 2
    if len(parts) != expected:
        shape = "kline:<SYMBOL>:<interval>" if kind == ChannelKind.KLINE else f"{kind}:<SYMBOL>"
        raise _bad_channel(raw, f"'{raw}' must look like {shape}")
    symbol = parts[1]
    if not SYMBOL_RE.match(symbol):
        raise BadRequest(f"Unknown symbol '{symbol}'", code="INVALID_SYMBOL")
    interval = None
    if kind == ChannelKind.KLINE:
        interval = parts[2]  # case matters: 1m is a minute, 1M a month
        if interval not in INTERVALS:
            raise BadRequest(
                f"Unknown kline interval '{interval}'; one of {', '.join(INTERVALS)}", code="INVALID_INTERVAL"
            )
    return Channel(kind, fold_symbol(symbol), interval)


def _bad_channel(raw: object, message: str) -> BadRequest:
    return BadRequest(message, code="INVALID_CHANNEL")


# -- client messages: one schema each --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Subscribe:
    channels: tuple[str, ...]
    last_event_id: EventId | None = None


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    channels: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Ping:
    pass


@dataclass(frozen=True, slots=True)
class Auth:
    token: str


ClientMessage = Subscribe | Unsubscribe | Ping | Auth


def parse_client_message(raw: str | bytes, max_channels: int) -> ClientMessage:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadRequest("Messages must be JSON objects", code="INVALID_JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("Messages must be JSON objects", code="INVALID_JSON")
    try:
        kind = ClientKind(body.get("type"))
    except ValueError:
        raise BadRequest("'type' must be one of " + ", ".join(ClientKind), code="UNKNOWN_TYPE") from None
    if kind == ClientKind.PING:
        return Ping()
    if kind == ClientKind.AUTH:
        token = body.get("token")
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
            raise BadRequest("'token' must be a non-empty string", code="INVALID_MESSAGE")
        return Auth(token)
    channels = body.get("channels")
    if not isinstance(channels, list) or not channels:
        raise BadRequest("'channels' must be a non-empty list", code="INVALID_MESSAGE")
    if len(channels) > max_channels:
        raise BadRequest(f"At most {max_channels} channels per connection", code="SUBSCRIPTION_LIMIT")
    if kind == ClientKind.UNSUBSCRIBE:
        return Unsubscribe(tuple(channels))
    last = body.get("lastEventId")
    return Subscribe(tuple(channels), None if last is None else EventId.parse(last))


# -- user event ids (Redis Stream entry ids) ----------------------------------------------------------


@dataclass(frozen=True, slots=True, order=True)
class EventId:
    ms: int
    seq: int

    @classmethod
    def parse(cls, raw: object) -> EventId:
        match = EVENT_ID_RE.match(raw) if isinstance(raw, str) else None
        if match is None:
            raise BadRequest("'lastEventId' must be an event id like '1717000000000-0'", code="INVALID_EVENT_ID")
        return cls(int(match.group(1)), int(match.group(2)))

    def __str__(self) -> str:
        return f"{self.ms}-{self.seq}"


# -- server messages ------------------------------------------------------------------------------------


def now_ms() -> int:
    return int(time.time() * 1000)


def welcome(connection_id: str, principal, *, public_market_data: bool, heartbeat: float, limits: dict) -> dict:
    return {
        "type": ServerKind.WELCOME,
        "connectionId": connection_id,
        "authenticated": principal is not None,
        "role": None if principal is None else str(principal.role),
        "publicMarketData": public_market_data,
        "heartbeat": heartbeat,
        "limits": limits,
        "timestamp": now_ms(),
    }


def authenticated(principal) -> dict:
    return {"type": ServerKind.AUTHENTICATED, "sub": principal.sub, "role": str(principal.role), "exp": principal.exp}


def subscribed(channels: list[str]) -> dict:
    return {"type": ServerKind.SUBSCRIBED, "channels": channels}


def unsubscribed(channels: list[str]) -> dict:
    return {"type": ServerKind.UNSUBSCRIBED, "channels": channels}


def pong() -> dict:
    return {"type": ServerKind.PONG, "timestamp": now_ms()}


def data_message(kind: DataType, channel: str, data, event_id: str | None = None) -> dict:
    message = {"type": kind, "channel": channel, "data": data}
    if event_id is not None:
        message["id"] = event_id
    return message


def text_frame(payload: bytes) -> bytes:
    """A complete unmasked server text frame (RFC 6455 §5.2): built once, written to every client.
    Valid only without per-connection extensions, and the server negotiates none."""
    length = len(payload)
    if length < 126:
        return bytes((0x81, length)) + payload
    if length < 1 << 16:
        return struct.pack("!BBH", 0x81, 126, length) + payload
    return struct.pack("!BBQ", 0x81, 127, length) + payload


def encode(message: dict) -> bytes:
    return text_frame(orjson.dumps(message))
