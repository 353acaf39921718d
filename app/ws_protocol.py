"""The /ws protocol with no I/O: channel names, message kinds and their schemas, frames, send queues.

    client → server   subscribe {channels, lastEventId?} · unsubscribe {channels} · ping · auth {token}
    server → client   welcome · authenticated · subscribed · unsubscribed · pong · error {code, message, channel?}
                      data: {type: ticker|trade|kline|depth.snapshot|depth.diff|status|user|order, channel, data, id?}

`Subscriber` is one client's side of the fan-out: a bounded `Outbox` and the per-channel cursors that
decide, for every message the hub offers, whether it is queued, conflated, skipped, answered with a
fresh depth snapshot, or means the client is too slow. app/hub.py and app/ws.py are the I/O around it.
"""

from __future__ import annotations

import asyncio
import re
import string
import struct
import time
from collections import deque
from dataclasses import dataclass
from enum import IntEnum, StrEnum

import orjson

from services.symbols import fold_symbol

from .errors import BadRequest
from .market import INTERVALS

# ASCII letters and digits, and non-ASCII characters (Binance lists UTF-8 symbol names since 2025-12-15)
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
    # data messages, as the stream relay publishes them (docs/streams-protocol.md)
    TICKER = "ticker"
    TRADE = "trade"
    KLINE = "kline"
    DEPTH_SNAPSHOT = "depth.snapshot"
    DEPTH_DIFF = "depth.diff"
    STATUS = "status"
    USER = "user"
    ORDER = "order"


class ChannelKind(StrEnum):
    TICKER = "ticker"
    DEPTH = "depth"
    TRADES = "trades"
    KLINE = "kline"
    USER = "user"
    ORDERS = "orders"


# Which data messages a channel carries (anything else published on it is dropped).
CHANNEL_MESSAGES = {
    ChannelKind.TICKER: {ServerKind.TICKER, ServerKind.STATUS},
    ChannelKind.DEPTH: {ServerKind.DEPTH_SNAPSHOT, ServerKind.DEPTH_DIFF, ServerKind.STATUS},
    ChannelKind.TRADES: {ServerKind.TRADE, ServerKind.STATUS},
    ChannelKind.KLINE: {ServerKind.KLINE, ServerKind.STATUS},
    ChannelKind.USER: {ServerKind.USER, ServerKind.STATUS},
    ChannelKind.ORDERS: {ServerKind.ORDER, ServerKind.STATUS},
}


# -- channels ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Channel:
    """`ticker:BTCUSDT`, `depth:BTCUSDT`, `trades:BTCUSDT`, `kline:BTCUSDT:1m`, `user`, `orders`."""

    kind: ChannelKind
    symbol: str | None = None
    interval: str | None = None

    @property
    def name(self) -> str:
        if self.symbol is None:
            return str(self.kind)
        if self.interval is None:
            return f"{self.kind}:{self.symbol}"
        return f"{self.kind}:{self.symbol}:{self.interval}"

    @property
    def private(self) -> bool:
        """User data: needs a token whatever WS_PUBLIC_MARKET_DATA says."""
        return self.symbol is None

    def with_symbol(self, symbol: str) -> Channel:
        return Channel(self.kind, symbol, self.interval)


def parse_channel(raw: object) -> Channel:
    """Syntax only (the symbol is upper-cased here and checked against exchangeInfo by the caller)."""
    if not isinstance(raw, str) or not raw or len(raw) > MAX_CHANNEL_LENGTH:
        raise _bad_channel(raw, "A channel is a string like 'ticker:BTCUSDT'")
    parts = raw.strip().split(":")
    try:
        kind = ChannelKind(parts[0].translate(_ASCII_LOWER))  # never str.lower(): "K" (U+212A) → "k"
    except ValueError:
        raise _bad_channel(raw, f"Unknown channel '{raw}'; channels are " + ", ".join(
            ("ticker:<SYMBOL>", "depth:<SYMBOL>", "trades:<SYMBOL>", "kline:<SYMBOL>:<interval>", "user",
             "orders"))) from None
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
            raise BadRequest(f"Unknown kline interval '{interval}'; one of {', '.join(INTERVALS)}",
                             code="INVALID_INTERVAL")
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
    return {"type": ServerKind.WELCOME, "connectionId": connection_id, "authenticated": principal is not None,
            "role": None if principal is None else str(principal.role), "publicMarketData": public_market_data,
            "heartbeat": heartbeat, "limits": limits, "timestamp": now_ms()}


def authenticated(principal) -> dict:
    return {"type": ServerKind.AUTHENTICATED, "sub": principal.sub, "role": str(principal.role),
            "exp": principal.exp}


def subscribed(channels: list[str]) -> dict:
    return {"type": ServerKind.SUBSCRIBED, "channels": channels}


def unsubscribed(channels: list[str]) -> dict:
    return {"type": ServerKind.UNSUBSCRIBED, "channels": channels}


def pong() -> dict:
    return {"type": ServerKind.PONG, "timestamp": now_ms()}


def data_message(kind: ServerKind, channel: str, data, event_id: str | None = None) -> dict:
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


# -- one client's send queue ---------------------------------------------------------------------------


class Close:
    """Queued after the frames a client must still get: close the connection with this code."""

    __slots__ = ("code", "reason")

    def __init__(self, code: int, reason: str):
        self.code = code
        self.reason = reason


class Outbox:
    """Frames waiting for one client's writer, at most `capacity` of them.

    Conflated channels (tickers) hold one slot each — a marker in the queue and the latest frame
    beside it — so a newer frame replaces one not yet sent instead of queueing behind it.

    `direct(frame) -> bool`, when given, is tried first while the queue is empty and its writer idle
    (nothing queued or in flight, so order holds): a client keeping up costs no queueing and no task
    switch. It returns False when the socket cannot take the frame now, and the frame is queued.
    """

    __slots__ = ("capacity", "direct", "_items", "_latest", "_waiter", "_room", "closed", "overflowed_at")

    def __init__(self, capacity: int, direct=None):
        self.capacity = capacity
        self.direct = direct
        self._items: deque | None = None  # made on the first backlog: most clients never have one
        self._latest: dict[str, bytes] | None = None
        self._waiter: asyncio.Future | None = None
        self._room: asyncio.Future | None = None
        self.closed = False
        self.overflowed_at: float | None = None  # first overflow since the queue last ran empty

    def __len__(self) -> int:
        return len(self._items) if self._items else 0

    def _queue(self) -> deque:
        if self._items is None:
            self._items = deque()
        return self._items

    def put(self, frame: bytes) -> bool:
        """Queue `frame`; False (and nothing queued) when the queue is full."""
        if self.closed:
            return True
        if self._waiter is not None and not self._items and self.direct is not None and self.direct(frame):
            return True
        items = self._queue()
        if len(items) >= self.capacity:
            if self.overflowed_at is None:
                self.overflowed_at = time.monotonic()
            return False
        items.append(frame)
        self._wake()
        return True

    def put_latest(self, key: str, frame: bytes) -> bool:
        """Queue `frame` in `key`'s slot; True when it replaced a frame of that slot not yet sent."""
        if self.closed:
            return False
        if self._waiter is not None and not self._items and self.direct is not None and self.direct(frame):
            return False
        latest = self._latest
        if latest is None:
            latest = self._latest = {}
        replaced = key in latest
        if not replaced:
            self._queue().append(key)
        latest[key] = frame
        self._wake()
        return replaced

    def close_after(self, code: int, reason: str) -> None:
        """Send what is queued, then close; nothing queued after this is sent."""
        if not self.closed:
            self._queue().append(Close(code, reason))
            self.closed = True
            self._wake()

    def abandon(self) -> None:
        """Stop now: the writer exits without sending what is queued."""
        self.closed = True
        self._items = deque([Close(0, "")])
        self._wake()
        if self._room is not None and not self._room.done():
            self._room.set_result(None)

    def take(self, limit: int) -> list:
        """Up to `limit` frames (a `Close` ends the list), markers resolved to their latest frame."""
        items, out = self._queue(), []
        while items and len(out) < limit:
            item = items.popleft()
            if isinstance(item, str):
                item = self._latest.pop(item)
            out.append(item)
            if isinstance(item, Close):
                break
        if not items:
            self.overflowed_at = None
            self._items = None
        room = self._room
        if room is not None and len(items) < self.capacity and not room.done():
            room.set_result(None)
        return out

    async def room(self) -> None:
        """Wait until one more frame fits (for producers that may wait, like a replay)."""
        while len(self) >= self.capacity and not self.closed:
            self._room = asyncio.get_running_loop().create_future()
            try:
                await self._room
            finally:
                self._room = None

    async def wait(self) -> None:
        if not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


# -- one client's side of the fan-out --------------------------------------------------------------------


class Delivery(IntEnum):
    OK = 0      # queued, or skipped as already covered
    RESYNC = 1  # this depth channel needs a fresh snapshot for this client
    CUT = 2     # the client cannot take a message it must not miss: too slow
    CONFLATED = 3  # queued in place of an older frame of its channel the client had not got yet


class Subscriber:
    """Per-client cursors: depth `u` continuity, user event ids, the pending buffer during a replay."""

    __slots__ = ("outbox", "channels", "depth", "user_cursor", "user_pending", "user_dropped")

    def __init__(self, capacity: int):
        self.outbox = Outbox(capacity)
        self.channels: set[str] = set()
        self.depth: dict[str, int | None] = {}    # channel → last `u` sent; None = waiting for a snapshot
        self.user_cursor: EventId | None = None   # the last user event id sent
        self.user_pending: deque | None = None    # live user events held back while replaying
        self.user_dropped = False                 # some were not held: the replay reads them again

    def push(self, frame: bytes) -> Delivery:
        return Delivery.OK if self.outbox.put(frame) else Delivery.CUT

    def push_latest(self, channel: str, frame: bytes) -> Delivery:
        return Delivery.CONFLATED if self.outbox.put_latest(channel, frame) else Delivery.OK

    def push_depth_snapshot(self, channel: str, last_update_id: int, frame: bytes) -> Delivery:
        if not self.outbox.put(frame):
            self.depth[channel] = None
            return Delivery.RESYNC
        self.depth[channel] = last_update_id
        return Delivery.OK

    def push_depth_diff(self, channel: str, first: int, final: int, frame: bytes) -> Delivery:
        """Binance's rule on the way to the client: the first diff after a snapshot has U <= id+1 <= u,
        each next one U = previous u + 1; anything else, or no room, is answered with a fresh snapshot."""
        last = self.depth.get(channel)
        if last is None or final <= last:
            return Delivery.OK  # waiting for a snapshot, or the snapshot already covers it
        if first > last + 1 or not self.outbox.put(frame):
            self.depth[channel] = None
            return Delivery.RESYNC
        self.depth[channel] = final
        return Delivery.OK

    def push_user_event(self, event_id: EventId, frame: bytes) -> Delivery:
        if self.user_pending is not None:  # a replay is running: it sends these when it has caught up
            if len(self.user_pending) < self.outbox.capacity:
                self.user_pending.append((event_id, frame))
            else:
                self.user_dropped = True  # they are in the stream: the replay reads them from there
            return Delivery.OK
        if self.user_cursor is not None and event_id <= self.user_cursor:
            return Delivery.OK  # already sent by the replay
        if not self.outbox.put(frame):
            return Delivery.CUT  # never skip a user event: the client resumes with lastEventId
        self.user_cursor = event_id
        return Delivery.OK


# -- incoming message rate ------------------------------------------------------------------------------


class Rate(IntEnum):
    OK = 0
    REFUSED = 1  # over the limit: answer with an error frame, ignore the message
    ABUSE = 2    # more than twice the limit in one second: close the connection


class MessageRate:
    """At most `limit` messages a second from one client (fixed one-second windows)."""

    __slots__ = ("limit", "_window", "_count")

    def __init__(self, limit: int):
        self.limit = limit
        self._window = 0
        self._count = 0

    def check(self, now: float) -> Rate:
        window = int(now)
        if window != self._window:
            self._window, self._count = window, 0
        self._count += 1
        if self._count > 2 * self.limit:
            return Rate.ABUSE
        return Rate.REFUSED if self._count > self.limit else Rate.OK
