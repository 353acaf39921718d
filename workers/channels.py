"""The relay's message payloads: Binance events → the `data` of what it publishes (docs/streams-protocol.md).

Pure functions, no I/O (channel names and the Binance streams they need are services/contract/channels.py):

    TickerState.update(kind, data, now)  → the merged ticker of @ticker + @bookTicker
    trade(data), kline(data)             → the `data` of our trade / kline messages
    order_from_report(report)            → the `data` of an `orders` message
"""

from __future__ import annotations

# -- market payloads --------------------------------------------------------------------------------

_TICKER_24H = (
    ("priceChange", "p"),
    ("priceChangePercent", "P"),
    ("weightedAvgPrice", "w"),
    ("openPrice", "o"),
    ("highPrice", "h"),
    ("lowPrice", "l"),
    ("lastPrice", "c"),
    ("volume", "v"),
    ("quoteVolume", "q"),
    ("openTime", "O"),
    ("closeTime", "C"),
    ("count", "n"),
)
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
    return {
        "openTime": k["t"],
        "closeTime": k["T"],
        "interval": k["i"],
        "open": k["o"],
        "high": k["h"],
        "low": k["l"],
        "close": k["c"],
        "volume": k["v"],
        "quoteVolume": k["q"],
        "trades": k["n"],
        "closed": k["x"],
    }


# -- user data --------------------------------------------------------------------------------------


def order_from_report(report: dict) -> dict:
    """An executionReport as our `orders` channel shows it. A cancel's `c` is the cancel request's id
    and `C` the order's own: clientOrderId is always the order's."""
    return {
        "symbol": report["s"],
        "orderId": report["i"],
        "clientOrderId": report.get("C") or report["c"],
        "side": report["S"],
        "type": report["o"],
        "status": report["X"],
        "price": report["p"],
        "origQty": report["q"],
        "executedQty": report["z"],
        "cummulativeQuoteQty": report["Z"],
        "lastFillPrice": report["L"],
        "lastFillQty": report["l"],
        "updateTime": report["T"],
        "executionType": report["x"],
        **({"expiryReason": report["eR"]} if "eR" in report else {}),
    }
