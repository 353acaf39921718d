"""Our channel names, as `/ws` clients, `P stream:demand` and `P md:<channel>` spell them, and the
Binance streams a market channel needs (docs/streams-protocol.md). Pure, no I/O.

    Channel.parse("kline:BTCUSDT:1m")    → Channel(ChannelKind.KLINE, "BTCUSDT", "1m"), or None
    channel.name                         → "kline:BTCUSDT:1m"
    channel.streams                      → ("btcusdt@kline_1m",)
    route("btcusdt@bookTicker")          → ("ticker:BTCUSDT", "bookTicker"): the channel a stream feeds
    message(kind, channel, data)         → the envelope of everything published on `P md:<channel>`

`Channel.parse` reads a name already in canonical form (what the web tier registers as demand);
a client's spelling (any case, a BadRequest when wrong) is app/ws_protocol.parse_channel's job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

# Binance's kline intervals (case matters: 1m is a minute, 1M a month); the REST tier checks them too.
INTERVALS = ("1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w", "1M")


class ChannelKind(StrEnum):
    TICKER = "ticker"
    DEPTH = "depth"
    TRADES = "trades"
    KLINE = "kline"
    USER = "user"
    ORDERS = "orders"


MARKET_KINDS = (ChannelKind.TICKER, ChannelKind.TRADES, ChannelKind.KLINE, ChannelKind.DEPTH)
# The account's channels carry no symbol; their names are their kinds.
USER, ORDERS = ChannelKind.USER.value, ChannelKind.ORDERS.value

# Symbols as exchangeInfo lists them: ASCII upper case and digits, and (since 2025-12) any non-ASCII
# characters. Stream names lower the ASCII letters only: str.lower()/upper() would fold non-ASCII
# letters too (and "ſ".upper() == "S").
SYMBOL_RE = re.compile(r"^(?:[A-Z0-9]|[^\x00-\x7f]){1,20}$")
_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")


@dataclass(frozen=True, slots=True)
class Channel:
    """`ticker:BTCUSDT`, `depth:BTCUSDT`, `trades:BTCUSDT`, `kline:BTCUSDT:1m`, `user`, `orders`."""

    kind: ChannelKind
    symbol: str | None = None
    interval: str | None = None

    def __post_init__(self):
        # `Channel("ticker", ...)` and `Channel(ChannelKind.TICKER, ...)` are one channel, whoever builds it
        object.__setattr__(self, "kind", ChannelKind(self.kind))

    @classmethod
    def parse(cls, name: str) -> Channel | None:
        """The market channel a canonical name stands for, else None (account channels, bad names)."""
        parts = name.split(":")
        if len(parts) < 2 or parts[0] not in MARKET_KINDS or not SYMBOL_RE.match(parts[1]):
            return None
        if parts[0] == ChannelKind.KLINE:
            if len(parts) != 3 or parts[2] not in INTERVALS:
                return None
            return cls(ChannelKind.KLINE, parts[1], parts[2])
        return cls(ChannelKind(parts[0]), parts[1]) if len(parts) == 2 else None

    @property
    def name(self) -> str:
        if self.symbol is None:
            return str(self.kind)
        if self.interval is None:
            return f"{self.kind}:{self.symbol}"
        return f"{self.kind}:{self.symbol}:{self.interval}"

    @property
    def private(self) -> bool:
        """User data: needs a token whatever WS_PUBLIC_MARKET_DATA says (and the relay is not asked for it)."""
        return self.symbol is None

    def with_symbol(self, symbol: str) -> Channel:
        return Channel(self.kind, symbol, self.interval)

    @property
    def streams(self) -> tuple[str, ...]:
        """The Binance streams (combined-stream names) a market channel needs."""
        if self.symbol is None:
            raise ValueError(f"{self.kind} is user data: no Binance market stream")
        lower = self.symbol.translate(_LOWER)
        if self.kind == ChannelKind.TICKER:
            return (f"{lower}@ticker", f"{lower}@bookTicker")
        if self.kind == ChannelKind.TRADES:
            return (f"{lower}@trade",)
        if self.kind == ChannelKind.KLINE:
            return (f"{lower}@kline_{self.interval}",)
        return (f"{lower}@depth@100ms",)


def route(stream: str) -> tuple[str, str] | None:
    """(channel name, stream kind) for a Binance stream name we subscribe to, else None."""
    symbol, _, kind = stream.partition("@")
    if not kind:
        return None
    symbol = symbol.translate(_UPPER)
    if kind in ("ticker", "bookTicker"):
        return f"ticker:{symbol}", kind
    if kind == "trade":
        return f"trades:{symbol}", kind
    if kind.startswith("kline_"):
        return f"kline:{symbol}:{kind[6:]}", "kline"
    if kind == "depth@100ms":
        return f"depth:{symbol}", "depth"
    return None


class DataType(StrEnum):
    """The `type` of a data message: what the relay publishes on `P md:<channel>` and the web tier
    forwards to clients as it is (docs/streams-protocol.md has each one's `data`)."""

    TICKER = "ticker"
    TRADE = "trade"
    KLINE = "kline"
    DEPTH_SNAPSHOT = "depth.snapshot"
    DEPTH_DIFF = "depth.diff"
    STATUS = "status"  # {"state": "upstream_reconnecting" | "upstream_restored"}
    USER = "user"
    ORDER = "order"


def message(kind: DataType, channel: str, data, **extra) -> dict:
    """The envelope of everything published on `P md:<channel>`: {"type", "channel", "id"?, "data"}."""
    return {"type": kind, "channel": channel, **extra, "data": data}
