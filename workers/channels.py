"""Our stream channels ⇄ Binance streams, and the messages the relay publishes (docs/streams-protocol.md).

Pure functions, no I/O:

    Channel.parse("kline:BTCUSDT:1m")    → Channel(kind="kline", symbol="BTCUSDT", interval="1m"), or None
    channel.streams                      → ("btcusdt@kline_1m",)
    route(stream)                        → the channel a Binance stream feeds ("btcusdt@bookTicker" → ticker:BTCUSDT)
    TickerState.update(kind, data, now)  → the merged ticker of @ticker + @bookTicker
    trade(data), kline(data)             → the `data` of our trade / kline messages
    order_from_report(report)            → the `data` of an `orders` message
"""

from __future__ import annotations

import re
from dataclasses import dataclass

INTERVALS = ("1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w", "1M")
MARKET_KINDS = ("ticker", "trades", "kline", "depth")
USER, ORDERS = "user", "orders"
# Symbols as exchangeInfo lists them: ASCII upper case and digits, and (since 2025-12) any non-ASCII
# characters. Stream names lower the ASCII letters only: str.lower()/upper() would fold non-ASCII
# letters too (and "ſ".upper() == "S").
_SYMBOL = re.compile(r"^(?:[A-Z0-9]|[^\x00-\x7f]){1,20}$")
_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")


@dataclass(frozen=True)
class Channel:
    """A market channel as web clients name it: ticker:SYM, trades:SYM, kline:SYM:iv, depth:SYM."""

    kind: str
    symbol: str
    interval: str | None = None

    @classmethod
    def parse(cls, name: str) -> Channel | None:
        parts = name.split(":")
        if len(parts) < 2 or parts[0] not in MARKET_KINDS or not _SYMBOL.match(parts[1]):
            return None
        if parts[0] == "kline":
            if len(parts) != 3 or parts[2] not in INTERVALS:
                return None
            return cls("kline", parts[1], parts[2])
        return cls(parts[0], parts[1]) if len(parts) == 2 else None

    @property
    def name(self) -> str:
        return f"{self.kind}:{self.symbol}" + (f":{self.interval}" if self.interval else "")

    @property
    def streams(self) -> tuple[str, ...]:
        """The Binance streams (combined-stream names) this channel needs."""
        lower = self.symbol.translate(_LOWER)
        if self.kind == "ticker":
            return (f"{lower}@ticker", f"{lower}@bookTicker")
        if self.kind == "trades":
            return (f"{lower}@trade",)
        if self.kind == "kline":
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


def message(kind: str, channel: str, data, **extra) -> dict:
    """The envelope of everything published on `P md:<channel>`."""
    return {"type": kind, "channel": channel, **extra, "data": data}


# -- market payloads --------------------------------------------------------------------------------

_TICKER_24H = (("priceChange", "p"), ("priceChangePercent", "P"), ("weightedAvgPrice", "w"), ("openPrice", "o"),
               ("highPrice", "h"), ("lowPrice", "l"), ("lastPrice", "c"), ("volume", "v"), ("quoteVolume", "q"),
               ("openTime", "O"), ("closeTime", "C"), ("count", "n"))
_BOOK = (("bidPrice", "b"), ("bidQty", "B"), ("askPrice", "a"), ("askQty", "A"))


class TickerState:
    """One symbol's merged ticker: 24 h statistics from `@ticker`, best bid/ask from `@bookTicker`
    (which moves more often; the 24 h event's own bid/ask only fill in until a bookTicker arrives)."""

    def __init__(self, symbol: str):
        self.fields: dict = {"symbol": symbol}
        self.has_book = False

    def update(self, kind: str, data: dict, now_ms: int) -> dict | None:
        """Merge one event; returns the ticker to publish, or None while the 24 h part is missing."""
        fields = self.fields
        if kind == "ticker":
            for name, key in _TICKER_24H:
                fields[name] = data[key]
            fields["price"] = data["c"]
            if not self.has_book:
                for name, key in _BOOK:
                    fields[name] = data[key]
        else:
            for name, key in _BOOK:
                fields[name] = data[key]
            self.has_book = True
        if "lastPrice" not in fields:
            return None
        fields["updatedAt"] = now_ms
        return dict(fields)


def trade(data: dict) -> dict:
    return {"id": data["t"], "price": data["p"], "qty": data["q"], "time": data["T"], "isBuyerMaker": data["m"]}


def kline(data: dict) -> dict:
    k = data["k"]
    return {"openTime": k["t"], "closeTime": k["T"], "interval": k["i"], "open": k["o"], "high": k["h"],
            "low": k["l"], "close": k["c"], "volume": k["v"], "quoteVolume": k["q"], "trades": k["n"],
            "closed": k["x"]}


# -- user data --------------------------------------------------------------------------------------

def order_from_report(report: dict) -> dict:
    """An executionReport as our `orders` channel shows it. A cancel's `c` is the cancel request's id
    and `C` the order's own: clientOrderId is always the order's."""
    return {"symbol": report["s"], "orderId": report["i"], "clientOrderId": report.get("C") or report["c"],
            "side": report["S"], "type": report["o"], "status": report["X"], "price": report["p"],
            "origQty": report["q"], "executedQty": report["z"], "cummulativeQuoteQty": report["Z"],
            "lastFillPrice": report["L"], "lastFillQty": report["l"], "updateTime": report["T"],
            "executionType": report["x"], **({"expiryReason": report["eR"]} if "eR" in report else {})}
