"""Market data (viewer role): tickers, klines, depth, trades, exchange info and symbols.

Inputs are validated against a cached exchangeInfo before anything goes upstream. Answers come from
the stream-fed cache in Redis when it is fresh (kept by the stream relay), else from Binance through
the single-flight cache and the shared weight budget.
"""

from __future__ import annotations

import time

import orjson
from sanic import Blueprint, Request, Sanic

from binance_client import endpoints
from services.prices import ticker_key

from .envelope import ok
from .errors import BadRequest, invalid
from . import schemas as S
from .schemas import documented
from .upstream import Upstream

INTERVALS = ("1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w", "1M")
DEPTH_LIMITS = (5, 10, 20, 50, 100, 500, 1000, 5000)
TTL = {"ticker": 1.0, "depth": 0.5, "klines": 2.0, "trades": 1.0, "exchangeInfo": 300.0}
STREAM_FRESH_MS = 5_000
KLINE_FIELDS = ("openTime", "open", "high", "low", "close", "volume", "closeTime", "quoteVolume", "trades",
                "takerBuyBaseVolume", "takerBuyQuoteVolume")


class MarketData:
    """The service behind the market routes; handlers only parse, call one method and render."""

    def __init__(self, upstream: Upstream, redis, key_prefix: str):
        self.upstream = upstream
        self.redis = redis
        self.key_prefix = key_prefix

    # -- exchange info and validation ---------------------------------------------------------------

    async def exchange_info(self) -> dict:
        info = await self.upstream.cached(endpoints.exchange_info(), TTL["exchangeInfo"])
        for limit in info.get("rateLimits", []):
            if limit.get("rateLimitType") == "REQUEST_WEIGHT" and limit.get("interval") == "MINUTE":
                self.upstream.set_weight_limit(int(limit["limit"]) // max(1, int(limit.get("intervalNum", 1))))
        return info

    def known_exchange_info(self) -> dict | None:
        """The exchangeInfo this process last fetched, without going upstream (None before the first)."""
        cached = getattr(self, "_by_name", None)
        return cached[0] if cached else None

    async def symbols_by_name(self) -> dict[str, dict]:
        info = await self.exchange_info()
        cached = getattr(self, "_by_name", None)
        if cached is None or cached[0] is not info:
            self._by_name = (info, {s["symbol"]: s for s in info.get("symbols", [])})
        return self._by_name[1]

    async def symbol(self, raw: str | None, field: str = "symbol") -> str:
        if not raw:
            raise invalid(field, f"'{field}' is required")
        symbol = raw.strip().upper()
        if symbol not in await self.symbols_by_name():
            raise BadRequest(f"Unknown symbol '{raw}'", code="INVALID_SYMBOL", details={"field": field, "value": raw})
        return symbol

    async def symbol_list(self, raw: str | None) -> list[str] | None:
        """`symbols=BTCUSDT,ETHUSDT` (or a JSON array) → validated list; None when absent."""
        if raw is None:
            return None
        text = raw.strip()
        try:
            items = orjson.loads(text) if text.startswith("[") else text.split(",")
        except orjson.JSONDecodeError:
            raise invalid("symbols", "'symbols' must be a comma-separated list or a JSON array") from None
        if not isinstance(items, list) or not items or not all(isinstance(i, str) and i.strip() for i in items):
            raise invalid("symbols", "'symbols' must name at least one symbol")
        names = [await self.symbol(item, "symbols") for item in items]
        if len(set(names)) != len(names):
            raise invalid("symbols", "'symbols' lists a symbol twice")
        return names

    # -- data -----------------------------------------------------------------------------------------

    async def ticker_price(self, symbol: str | None, symbols: list[str] | None):
        request = endpoints.ticker_price(symbol, symbols)
        if symbol:
            return await self._ticker(request, lambda t: {"symbol": symbol, "price": t["price"]}, "price")
        return await self.upstream.cached(request, TTL["ticker"])

    async def ticker_24hr(self, symbol: str | None, symbols: list[str] | None):
        request = endpoints.ticker_24hr(symbol, symbols)
        if symbol:
            return await self._ticker(request, lambda t: {k: v for k, v in t.items() if k != "updatedAt"},
                                      "priceChange")
        return await self.upstream.cached(request, TTL["ticker"])

    async def book_ticker(self, symbol: str | None, symbols: list[str] | None):
        request = endpoints.book_ticker(symbol, symbols)
        if symbol:
            fields = ("symbol", "bidPrice", "bidQty", "askPrice", "askQty")
            return await self._ticker(request, lambda t: {k: t[k] for k in fields}, "bidPrice")
        return await self.upstream.cached(request, TTL["ticker"])

    async def _ticker(self, request, shape, needs: str):
        """One symbol's ticker: the local cache, else the stream relay's fresh copy in Redis, else
        Binance — whichever answers first, cached locally for the ticker TTL."""

        async def fetch():
            streamed = await self._streamed_ticker(request.params["symbol"])
            if streamed is not None and needs in streamed:
                return shape(streamed)
            return await self.upstream.call(request)

        return await self.upstream.cache.get(self.upstream.cache_key(request), TTL["ticker"], fetch)

    async def klines(self, symbol: str, interval: str, limit: int, start: int | None, end: int | None) -> list[dict]:
        rows = await self.upstream.cached(endpoints.klines(symbol, interval, limit, start, end), TTL["klines"])
        return [dict(zip(KLINE_FIELDS, row)) for row in rows]

    async def depth(self, symbol: str, limit: int) -> dict:
        book = await self.upstream.cached(endpoints.depth(symbol, limit), TTL["depth"])
        return {"symbol": symbol, **book}

    async def trades(self, symbol: str, limit: int) -> list[dict]:
        return await self.upstream.cached(endpoints.trades(symbol, limit), TTL["trades"])

    async def symbol_summaries(self, base: str | None, quote: str | None, status: str | None) -> list[dict]:
        rows = []
        for s in (await self.symbols_by_name()).values():
            if (base and s["baseAsset"] != base) or (quote and s["quoteAsset"] != quote) or \
                    (status and s["status"] != status):
                continue
            filters = {f["filterType"]: f for f in s.get("filters", [])}
            rows.append({
                "symbol": s["symbol"], "status": s["status"], "baseAsset": s["baseAsset"],
                "quoteAsset": s["quoteAsset"], "orderTypes": s.get("orderTypes", []),
                "tickSize": filters.get("PRICE_FILTER", {}).get("tickSize"),
                "stepSize": filters.get("LOT_SIZE", {}).get("stepSize"),
                "minQty": filters.get("LOT_SIZE", {}).get("minQty"),
                "minNotional": (filters.get("NOTIONAL") or filters.get("MIN_NOTIONAL") or {}).get("minNotional"),
            })
        return sorted(rows, key=lambda r: r["symbol"])

    async def _streamed_ticker(self, symbol: str) -> dict | None:
        """The stream relay's latest ticker for `symbol`, if it is fresh."""
        raw = await self.redis.get(ticker_key(self.key_prefix, symbol))
        if raw is None:
            return None
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(data, dict) or time.time() * 1000 - data.get("updatedAt", 0) > STREAM_FRESH_MS:
            return None
        return data


# -- parameters ---------------------------------------------------------------------------------------

def int_arg(request: Request, name: str, default: int | None, low: int, high: int) -> int | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise invalid(name, f"'{name}' must be an integer", value=raw) from None
    if not low <= value <= high:
        raise invalid(name, f"'{name}' must be between {low} and {high}", value=value)
    return value


# -- routes -------------------------------------------------------------------------------------------

bp = Blueprint("market", url_prefix="/api/v1")


def service(request: Request) -> MarketData:
    return request.app.ctx.market


SYMBOL_OR_LIST = [("symbol", str, False, "One symbol"), ("symbols", str, False, "Several: BTCUSDT,ETHUSDT")]


async def _symbols(request: Request) -> tuple[str | None, list[str] | None]:
    """`symbol`, `symbols` or neither (all), validated."""
    m = service(request)
    symbol = await m.symbol(request.args.get("symbol")) if request.args.get("symbol") else None
    return symbol, await m.symbol_list(request.args.get("symbols"))


@bp.get("/ticker/price")
@documented("Latest price (one symbol, several, or all)", S.TickerPrice | list[S.TickerPrice], "TickerPriceResponse",
            tag="market", parameters=SYMBOL_OR_LIST)
async def ticker_price(request: Request):
    return ok(request, await service(request).ticker_price(*await _symbols(request)))


@bp.get("/ticker/24hr")
@documented("24 h rolling statistics", S.Ticker24h | list[S.Ticker24h], "Ticker24hResponse", tag="market",
            parameters=SYMBOL_OR_LIST)
async def ticker_24hr(request: Request):
    return ok(request, await service(request).ticker_24hr(*await _symbols(request)))


@bp.get("/ticker/bookTicker")
@documented("Best bid and ask", S.BookTicker | list[S.BookTicker], "BookTickerResponse", tag="market",
            parameters=SYMBOL_OR_LIST)
async def book_ticker(request: Request):
    return ok(request, await service(request).book_ticker(*await _symbols(request)))


@bp.get("/klines")
@documented("Candles, oldest first", list[S.Candle], "KlinesResponse", tag="market", parameters=[("symbol", str, True, "Symbol, case-insensitive (BTCUSDT)"), ("interval", str, True, "1s 1m 3m 5m 15m 30m 1h 2h 4h 6h 8h 12h 1d 3d 1w 1M"), ("limit", int, False, "1-1000, default 500"), ("startTime", int, False, "ms"), ("endTime", int, False, "ms")])
async def klines(request: Request):
    m = service(request)
    symbol = await m.symbol(request.args.get("symbol"))
    interval = request.args.get("interval")
    if interval not in INTERVALS:
        raise invalid("interval", f"'interval' must be one of {', '.join(INTERVALS)}", value=interval)
    limit = int_arg(request, "limit", 500, 1, 1000)
    start = int_arg(request, "startTime", None, 0, 2**53)
    end = int_arg(request, "endTime", None, 0, 2**53)
    if start is not None and end is not None and start > end:
        raise invalid("startTime", "'startTime' must not be after 'endTime'")
    return ok(request, await m.klines(symbol, interval, limit, start, end))


@bp.get("/depth")
@documented("Order book snapshot", S.Depth, "DepthResponse", tag="market", parameters=[("symbol", str, True, "Symbol, case-insensitive (BTCUSDT)"), ("limit", int, False, "1-5000, default 100")])
async def depth(request: Request):
    m = service(request)
    symbol = await m.symbol(request.args.get("symbol"))
    limit = int_arg(request, "limit", 100, 1, 5000)
    return ok(request, await m.depth(symbol, limit))


@bp.get("/trades")
@documented("Recent trades", list[S.Trade], "TradesResponse", tag="market", parameters=[("symbol", str, True, "Symbol, case-insensitive (BTCUSDT)"), ("limit", int, False, "1-1000, default 500")])
async def trades(request: Request):
    m = service(request)
    symbol = await m.symbol(request.args.get("symbol"))
    return ok(request, await m.trades(symbol, int_arg(request, "limit", 500, 1, 1000)))


@bp.get("/exchangeInfo")
@documented("Trading rules and symbols (Binance's exchangeInfo)", S.ExchangeInfo, "ExchangeInfoResponse", tag="market", parameters=[("symbol", str, False, "One symbol"), ("symbols", str, False, "Several: BTCUSDT,ETHUSDT")])
async def exchange_info(request: Request):
    m = service(request)
    info = await m.exchange_info()
    wanted = await m.symbol_list(request.args.get("symbols") or request.args.get("symbol"))
    symbols = info.get("symbols", [])
    if wanted:
        symbols = [s for s in symbols if s["symbol"] in wanted]
    return ok(request, {"timezone": info.get("timezone"), "serverTime": info.get("serverTime"),
                        "rateLimits": info.get("rateLimits", []), "symbols": symbols})


@bp.get("/symbols")
@documented("Symbols with their main trading rules", list[S.SymbolSummary], "SymbolsResponse", tag="market", parameters=[("baseAsset", str, False, "e.g. BTC"), ("quoteAsset", str, False, "e.g. USDT"), ("status", str, False, "e.g. TRADING")])
async def symbols(request: Request):
    args = request.args
    upper = lambda name: args.get(name).upper() if args.get(name) else None  # noqa: E731
    return ok(request, await service(request).symbol_summaries(upper("baseAsset"), upper("quoteAsset"),
                                                               upper("status")))


def setup_market(app: Sanic) -> None:
    app.blueprint(bp)
