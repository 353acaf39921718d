"""Binance market streams without I/O: stream names, payloads, depth diff merging, control messages.

Everything here is a pure function of the core's state (or of a message's text), so the WebSocket
adapter in `ws.py` only moves bytes. Shapes follow web-socket-streams.md field for field:

    parse_stream(name)            "btcusdt@depth@100ms" -> Stream(kind="depth", symbol="BTCUSDT", ...)
    parse_control(text)           a SUBSCRIBE/UNSUBSCRIBE/... frame -> Control, or raises ControlError
    trade/agg_trade/kline/...     core objects -> the event payloads
    DepthDiffs                    book.take_diff() every 100 ms -> @depth@100ms and @depth (1000 ms) events
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from decimal import Decimal

from .candles import INTERVALS_MS, Candle, MarketHistory, bucket_after, bucket_start
from .money import ZERO, fmt
from .params import valid_request_id

MAX_STREAMS = 1024  # per connection (web-socket-streams.md, "WebSocket Limits")
MAX_INCOMING_PER_SECOND = 5  # PING, PONG and JSON control messages
METHODS = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY")
PARTIAL_LEVELS = (5, 10, 20)

_KINDS = "trade|aggTrade|miniTicker|ticker|bookTicker"
# Symbols are lower case in stream names; only ASCII letters have a case there: a symbol's
# non-ASCII characters (UTF-8 symbols, 2025-12) are written as they are.
_STREAM_RE = re.compile(
    r"^(?P<symbol>(?:[a-z0-9]|[^\x00-\x7f]){1,20})@(?:(?P<kind>" + _KINDS + r")"
    r"|kline_(?P<interval>" + "|".join(INTERVALS_MS) + r")"
    r"|depth(?P<levels>5|10|20)?(?P<fast>@100ms)?)$"
)
_ID_STRING_RE = re.compile(r"^[A-Za-z0-9]{1,36}$")


# -- settings ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StreamConfig:
    """WebSocket settings of the paper exchange, from PAPER_WS_* (seconds may be fractional)."""

    ping_seconds: float = 20.0  # server ping interval
    pong_timeout: float = 60.0  # disconnect when a ping stays unanswered this long
    max_lifetime: float = 86_400.0  # Binance cuts every connection after 24 h
    send_queue: int = 10_000  # messages queued for one client before it counts as too slow
    # The stream clock's period: a @depth@100ms diff per tick, as Binance's 100 ms. Shorter runs the
    # depth streams faster (tests that need hundreds of diffs); tickers and klines keep their seconds.
    tick_ms: int = 100

    @classmethod
    def from_env(cls, env=None) -> StreamConfig:
        env = os.environ if env is None else env

        def number(name: str, default: float, kind=float):
            raw = env.get(name)
            if raw in (None, ""):
                return default
            try:
                value = kind(raw)
            except ValueError:
                raise ValueError(f"{name}: expected a number, got {raw!r}") from None
            if value <= 0:
                raise ValueError(f"{name}: must be positive, got {raw!r}")
            return value

        return cls(
            ping_seconds=number("PAPER_WS_PING_SECONDS", 20.0),
            pong_timeout=number("PAPER_WS_PONG_TIMEOUT", 60.0),
            max_lifetime=number("PAPER_WS_MAX_LIFETIME", 86_400.0),
            send_queue=number("PAPER_WS_SEND_QUEUE", 10_000, int),
            tick_ms=number("PAPER_WS_TICK_MS", 100, int),
        )


# -- stream names -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stream:
    name: str  # as the client wrote it
    symbol: str  # the exchange's symbol (upper case)
    kind: str  # trade, aggTrade, kline, miniTicker, ticker, bookTicker, depth, partialDepth
    interval: str | None = None
    levels: int = 0
    speed_ms: int = 1000  # depth streams: 100 or 1000


def parse_stream(name: str) -> Stream | None:
    """A market stream name as Binance spells it (lower-case symbol), or None if it is not one."""
    match = _STREAM_RE.match(name) if isinstance(name, str) else None
    if match is None:
        return None
    symbol = match["symbol"].translate(_TO_UPPER)
    if match["kind"]:
        return Stream(name, symbol, match["kind"])
    if match["interval"]:
        return Stream(name, symbol, "kline", interval=match["interval"])
    speed = 100 if match["fast"] else 1000
    if match["levels"]:
        return Stream(name, symbol, "partialDepth", levels=int(match["levels"]), speed_ms=speed)
    return Stream(name, symbol, "depth", speed_ms=speed)


_TO_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_TO_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def stream_symbol(symbol: str) -> str:
    """A symbol as stream names spell it: ASCII letters lowered, everything else as it is (never
    str.lower(), which would also fold non-ASCII letters)."""
    return symbol.translate(_TO_LOWER)


# -- control messages -------------------------------------------------------------------------------


class ControlError(Exception):
    """A control message Binance rejects; `reply()` is the frame it answers with."""

    def __init__(self, code: int, msg: str, request_id=None):
        super().__init__(msg)
        self.code, self.msg, self.request_id = code, msg, request_id

    def reply(self) -> dict:
        return {"error": {"code": self.code, "msg": self.msg}, "id": self.request_id}


@dataclass(frozen=True)
class Control:
    method: str
    params: list
    id: int | str | None


def _position(text: str, index: int) -> tuple[int, int]:
    """serde_json's 'line L column C' (1-based) for a character index of the message."""
    line = text.count("\n", 0, index) + 1
    column = index - (text.rfind("\n", 0, index) + 1)
    return line, column


def _invalid(msg: str, request_id=None) -> ControlError:
    return ControlError(2, f"Invalid request: {msg}", request_id)


def _valid_id(value) -> bool:
    return valid_request_id(value, _ID_STRING_RE)


def parse_control(text: str | bytes) -> Control:
    """Validate one control frame the way Binance does (the Error Messages table of
    web-socket-streams.md); raises ControlError carrying Binance's reply."""
    if isinstance(text, bytes):
        try:
            text = text.decode()
        except UnicodeDecodeError:
            raise ControlError(3, "Invalid JSON: invalid unicode code point at line 1 column 1") from None
    try:
        message = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.pos >= len(text.rstrip()):  # serde_json points at the last character read
            line, column = _position(text, len(text.rstrip()))
            raise ControlError(3, f"Invalid JSON: EOF while parsing a value at line {line} column {column}") from None
        raise ControlError(3, f"Invalid JSON: expected value at line {exc.lineno} column {exc.colno}") from None
    if not isinstance(message, dict):
        raise _invalid("invalid type: expected struct Request at line 1 column 1")
    request_id = message.get("id") if _valid_id(message.get("id")) else None
    method = message.get("method")
    if "method" not in message:
        line, column = _position(text, len(text.rstrip()))
        raise _invalid(f"missing field `method` at line {line} column {column}", request_id)
    if method not in METHODS:
        found = re.search(r'"method"\s*:\s*("(?:[^"\\]|\\.)*"|[^,}\s]+)', text)
        line, column = _position(text, found.end() if found else len(text))
        shown = method if isinstance(method, str) else json.dumps(method)
        raise _invalid(
            f"unknown variant `{shown}`, expected one of `SUBSCRIBE`, `UNSUBSCRIBE`, "
            f"`LIST_SUBSCRIPTIONS`, `SET_PROPERTY`, `GET_PROPERTY` at line {line} column {column}",
            request_id,
        )
    if "id" not in message or not _valid_id(message["id"]):
        raise _invalid("request ID must be an unsigned integer")
    params = message.get("params", [])
    if params is None:
        params = []
    if not isinstance(params, list):
        raise _invalid("invalid stream", request_id)
    if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
        if not all(isinstance(p, str) for p in params):
            raise _invalid("invalid stream", request_id)
    elif method == "LIST_SUBSCRIPTIONS":
        if params:
            raise _invalid("too many parameters", request_id)
    elif method == "SET_PROPERTY":
        if len(params) > 2:
            raise _invalid("too many parameters", request_id)
        _property_name(params, request_id)
        if len(params) < 2 or not isinstance(params[1], bool):
            raise ControlError(1, "Invalid value type: expected Boolean", request_id)
    elif method == "GET_PROPERTY":
        if len(params) > 1:
            raise _invalid("too many parameters", request_id)
        _property_name(params, request_id)
    return Control(method, params, message["id"])


def _property_name(params: list, request_id) -> None:
    if not params or not isinstance(params[0], str):
        raise _invalid("property name must be a string", request_id)
    if params[0] != "combined":
        raise ControlError(0, "Unknown property", request_id)


def result(value, request_id) -> dict:
    return {"result": value, "id": request_id}


# -- payloads ---------------------------------------------------------------------------------------


def trade(symbol: str, t, now: int) -> dict:
    return {
        "e": "trade",
        "E": now,
        "s": symbol,
        "t": t.id,
        "p": fmt(t.price),
        "q": fmt(t.qty),
        "T": t.time,
        "m": t.is_buyer_maker,
        "M": True,
    }


def agg_trade(symbol: str, a, now: int) -> dict:
    return {
        "e": "aggTrade",
        "E": now,
        "s": symbol,
        "a": a.id,
        "p": fmt(a.price),
        "q": fmt(a.qty),
        "f": a.first_id,
        "l": a.last_id,
        "T": a.time,
        "m": a.is_buyer_maker,
        "M": True,
    }


def kline(symbol: str, interval: str, c: Candle, close_time: int, closed: bool, now: int) -> dict:
    return {
        "e": "kline",
        "E": now,
        "s": symbol,
        "k": {
            "t": c.open_time,
            "T": close_time,
            "s": symbol,
            "i": interval,
            "f": c.first_id,
            "L": c.last_id,
            "o": fmt(c.open),
            "c": fmt(c.close),
            "h": fmt(c.high),
            "l": fmt(c.low),
            "v": fmt(c.volume),
            "n": c.count,
            "x": closed,
            "q": fmt(c.quote_volume),
            "V": fmt(c.taker_buy_volume),
            "Q": fmt(c.taker_buy_quote),
            "B": "0",
        },
    }


def mini_ticker(stats: dict, now: int) -> dict:
    """`stats` is the REST /ticker/24hr FULL body (wire.ticker_24hr), so stream and REST agree."""
    return {
        "e": "24hrMiniTicker",
        "E": now,
        "s": stats["symbol"],
        "c": stats["lastPrice"],
        "o": stats["openPrice"],
        "h": stats["highPrice"],
        "l": stats["lowPrice"],
        "v": stats["volume"],
        "q": stats["quoteVolume"],
    }


def ticker(stats: dict, now: int) -> dict:
    return {
        "e": "24hrTicker",
        "E": now,
        "s": stats["symbol"],
        "p": stats["priceChange"],
        "P": stats["priceChangePercent"],
        "w": stats["weightedAvgPrice"],
        "x": stats["prevClosePrice"],
        "c": stats["lastPrice"],
        "Q": stats["lastQty"],
        "b": stats["bidPrice"],
        "B": stats["bidQty"],
        "a": stats["askPrice"],
        "A": stats["askQty"],
        "o": stats["openPrice"],
        "h": stats["highPrice"],
        "l": stats["lowPrice"],
        "v": stats["volume"],
        "q": stats["quoteVolume"],
        "O": stats["openTime"],
        "C": stats["closeTime"],
        "F": stats["firstId"],
        "L": stats["lastId"],
        "n": stats["count"],
    }


def best_levels(book) -> tuple:
    bid, ask = book.best_bid(), book.best_ask()
    return (bid.price if bid else ZERO, bid.qty if bid else ZERO, ask.price if ask else ZERO, ask.qty if ask else ZERO)


def book_ticker(symbol: str, update_id: int, best: tuple) -> dict:
    bid, bid_qty, ask, ask_qty = best
    return {"u": update_id, "s": symbol, "b": fmt(bid), "B": fmt(bid_qty), "a": fmt(ask), "A": fmt(ask_qty)}


def partial_depth(book, levels: int) -> dict:
    top = book.depth(levels)
    return {
        "lastUpdateId": top["lastUpdateId"],
        "bids": [[fmt(p), fmt(q)] for p, q in top["bids"]],
        "asks": [[fmt(p), fmt(q)] for p, q in top["asks"]],
    }


def depth_update(symbol: str, diff: dict, now: int) -> dict:
    return {
        "e": "depthUpdate",
        "E": now,
        "s": symbol,
        "U": diff["U"],
        "u": diff["u"],
        "b": [[fmt(p), fmt(q)] for p, q in diff["b"]],
        "a": [[fmt(p), fmt(q)] for p, q in diff["a"]],
    }


# -- depth diffs ------------------------------------------------------------------------------------


class DepthDiffs:
    """One symbol's diff depth events: each 100 ms diff is sent as is on @depth@100ms and merged
    into the 1000 ms event of @depth (a level's latest quantity wins; U of the first, u of the last).

    A withheld diff (the `depth_gap` fault) also discards the pending 1000 ms merge, so both streams
    show the gap a client must detect (next U > previous u + 1) instead of silently missing levels.
    """

    def __init__(self) -> None:
        self.first: int | None = None
        self.last = 0
        self.levels: dict[tuple[bool, Decimal], Decimal] = {}

    def add(self, diff: dict) -> None:
        if self.first is None:
            self.first = diff["U"]
        self.last = diff["u"]
        for price, qty in diff["b"]:
            self.levels[(True, price)] = qty
        for price, qty in diff["a"]:
            self.levels[(False, price)] = qty

    def take(self) -> dict | None:
        if self.first is None:
            return None
        merged = {
            "U": self.first,
            "u": self.last,
            "b": [(p, q) for (is_bid, p), q in self.levels.items() if is_bid],
            "a": [(p, q) for (is_bid, p), q in self.levels.items() if not is_bid],
        }
        self.discard()
        return merged

    def discard(self) -> None:
        self.first = None
        self.levels = {}


# -- klines -----------------------------------------------------------------------------------------


def kline_bounds(interval: str, now: int) -> tuple[int, int]:
    """Open time and close time of the candle of `interval` that contains `now` (UTC)."""
    start = bucket_start(interval, now)
    return start, bucket_after(interval, start) - 1


def current_candle(history: MarketHistory, interval: str, start: int, now: int) -> Candle | None:
    """The candle opening at `start`, as REST klines build it, up to `now` (None before any data)."""
    return history.candle(interval, start, now)


def empty_candle(start: int, close: Decimal) -> Candle:
    """Binance's candle for an interval without trades: flat at the previous close, ids -1."""
    return Candle(start, close, close, close, close)
