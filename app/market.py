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
from binance_client.errors import BinanceError
from services.contract.channels import INTERVALS
from services.contract.keys import TICKER_FRESH_MS, Keys
from services.contract.limits import weight_limit_per_minute
from services.symbols import fold_symbol

from . import schemas as S
from .envelope import ok
from .errors import ApiError, BadRequest
from .openapi import operation
from .params import MAX_TIME_MS, Choice, Integer, Query, Symbol, SymbolList, Text
from .upstream import Upstream

DEPTH_LIMITS = (5, 10, 20, 50, 100, 500, 1000, 5000)
# Binance's symbol statuses (rest-api.md, "Symbol status").
SYMBOL_STATUSES = (
    "PRE_TRADING",
    "TRADING",
    "POST_TRADING",
    "END_OF_DAY",
    "HALT",
    "AUCTION_MATCH",
    "BREAK",
    "CANCEL_ONLY",
)  # CANCEL_ONLY: CHANGELOG 2026-07-07
TTL = {"ticker": 1.0, "depth": 0.5, "klines": 2.0, "trades": 1.0, "exchangeInfo": 300.0}
KLINE_FIELDS = (
    "openTime",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "closeTime",
    "quoteVolume",
    "trades",
    "takerBuyBaseVolume",
    "takerBuyQuoteVolume",
)


class MarketData:
    """The service behind the market routes; handlers only parse, call one method and render."""

    def __init__(self, upstream: Upstream, redis, key_prefix: str):
        self.upstream = upstream
        self.redis = redis
        self.keys = Keys(key_prefix)

    # -- exchange info and validation ---------------------------------------------------------------

    async def exchange_info(self) -> dict:
        info = await self.upstream.cached(endpoints.exchange_info(), TTL["exchangeInfo"])
        limit = weight_limit_per_minute(info)
        if limit is not None:
            self.upstream.set_weight_limit(limit)
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

    async def symbol(self, raw: str, field: str = "symbol") -> str:
        """`raw` as exchangeInfo spells it (ASCII a-z folded, nothing else), or 400 INVALID_SYMBOL."""
        symbol = fold_symbol(raw)
        if symbol not in await self.symbols_by_name():
            raise BadRequest(
                f"Unknown symbol '{raw[:64]}'", code="INVALID_SYMBOL", details={"field": field, "value": raw[:64]}
            )
        return symbol

    async def symbol_names(self) -> list[str] | None:
        """The listed symbols (for the OpenAPI document's enums); None when exchangeInfo is unreachable."""
        try:
            return sorted(await self.symbols_by_name())
        except (BinanceError, ApiError):
            return None

    # -- data -----------------------------------------------------------------------------------------

    async def ticker_price(self, symbol: str | None, symbols: list[str] | None):
        request = endpoints.ticker_price(symbol, symbols)
        if symbol:
            return await self._ticker(request, lambda t: {"symbol": symbol, "price": t["price"]}, "price")
        return await self.upstream.cached(request, TTL["ticker"])

    async def ticker_24hr(self, symbol: str | None, symbols: list[str] | None):
        request = endpoints.ticker_24hr(symbol, symbols)
        if symbol:
            return await self._ticker(
                request, lambda t: {k: v for k, v in t.items() if k != "updatedAt"}, "priceChange"
            )
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
        # a row's 12th field is Binance's unused "Ignore": KLINE_FIELDS names the first 11
        return [dict(zip(KLINE_FIELDS, row, strict=False)) for row in rows]

    async def depth(self, symbol: str, limit: int) -> dict:
        book = await self.upstream.cached(endpoints.depth(symbol, limit), TTL["depth"])
        return {"symbol": symbol, **book}

    async def trades(self, symbol: str, limit: int) -> list[dict]:
        return await self.upstream.cached(endpoints.trades(symbol, limit), TTL["trades"])

    async def symbol_summaries(self, base: str | None, quote: str | None, status: str | None) -> list[dict]:
        rows = []
        for s in (await self.symbols_by_name()).values():
            if (
                (base and s["baseAsset"] != base)
                or (quote and s["quoteAsset"] != quote)
                or (status and s["status"] != status)
            ):
                continue
            filters = {f["filterType"]: f for f in s.get("filters", [])}
            rows.append(
                {
                    "symbol": s["symbol"],
                    "status": s["status"],
                    "baseAsset": s["baseAsset"],
                    "quoteAsset": s["quoteAsset"],
                    "orderTypes": s.get("orderTypes", []),
                    "tickSize": filters.get("PRICE_FILTER", {}).get("tickSize"),
                    "stepSize": filters.get("LOT_SIZE", {}).get("stepSize"),
                    "minQty": filters.get("LOT_SIZE", {}).get("minQty"),
                    "minNotional": (filters.get("NOTIONAL") or filters.get("MIN_NOTIONAL") or {}).get("minNotional"),
                }
            )
        return sorted(rows, key=lambda r: r["symbol"])

    async def _streamed_ticker(self, symbol: str) -> dict | None:
        """The stream relay's latest ticker for `symbol`, if it is fresh."""
        raw = await self.redis.get(self.keys.ticker(symbol))
        if raw is None:
            return None
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(data, dict) or time.time() * 1000 - data.get("updatedAt", 0) > TICKER_FRESH_MS:
            return None
        return data


# -- routes -------------------------------------------------------------------------------------------

bp = Blueprint("market", url_prefix="/api/v1")
UPSTREAM = (429, 503, 504)  # Binance limits or our budget; Binance unreachable or banned; too slow


def service(request: Request) -> MarketData:
    return request.app.ctx.market


ONE_OR_LIST = "`symbol` and `symbols` together are a 400 (CONFLICTING_PARAMETERS); neither means every symbol."
SYMBOL_OR_LIST = Query(Symbol("symbol", "One symbol"), SymbolList("symbols"))
LIMIT_1000 = Integer("limit", "Rows, 1-1000", default=500, ge=1, le=1000)
KLINES = Query(
    Symbol("symbol", required=True),
    Choice("interval", "Candle length", required=True, values=INTERVALS),
    LIMIT_1000,
    Integer("startTime", "From this time (ms)", le=MAX_TIME_MS),
    Integer("endTime", "Until this time (ms)", le=MAX_TIME_MS),
)
DEPTH = Query(Symbol("symbol", required=True), Integer("limit", "Levels a side, 1-5000", default=100, ge=1, le=5000))
TRADES = Query(Symbol("symbol", required=True), LIMIT_1000)
ASSET = r"[A-Za-z0-9]{1,20}"
SYMBOLS = Query(
    Text("baseAsset", "Base asset, e.g. BTC", pattern=ASSET, max_length=20),
    Text("quoteAsset", "Quote asset, e.g. USDT", pattern=ASSET, max_length=20),
    Choice("status", "Trading status", values=SYMBOL_STATUSES),
)


def _one_or_list(q: dict) -> tuple[str | None, list[str] | None]:
    if q["symbol"] is not None and q["symbols"] is not None:
        raise BadRequest(
            "Give 'symbol' or 'symbols', not both", code="CONFLICTING_PARAMETERS", details={"field": "symbols"}
        )
    return q["symbol"], q["symbols"]


@bp.get("/ticker/price")
@operation(
    "Latest price (one symbol, several, or all)",
    tag="market",
    query=SYMBOL_OR_LIST,
    data=S.one_or_many(S.TICKER_PRICE),
    errors=UPSTREAM,
)
async def ticker_price(request: Request, q: dict):
    return ok(request, await service(request).ticker_price(*_one_or_list(q)))


@bp.get("/ticker/24hr")
@operation(
    "24 h rolling statistics",
    tag="market",
    query=SYMBOL_OR_LIST,
    data=S.one_or_many(S.TICKER_24H),
    errors=UPSTREAM,
    description=ONE_OR_LIST,
)
async def ticker_24hr(request: Request, q: dict):
    return ok(request, await service(request).ticker_24hr(*_one_or_list(q)))


@bp.get("/ticker/bookTicker")
@operation(
    "Best bid and ask",
    tag="market",
    query=SYMBOL_OR_LIST,
    data=S.one_or_many(S.BOOK_TICKER),
    errors=UPSTREAM,
    description=ONE_OR_LIST,
)
async def book_ticker(request: Request, q: dict):
    return ok(request, await service(request).book_ticker(*_one_or_list(q)))


@bp.get("/klines")
@operation(
    "Candles, oldest first",
    tag="market",
    query=KLINES,
    data=S.array(S.CANDLE),
    errors=UPSTREAM,
    description="`startTime` after `endTime` is a 400 (INVALID_TIME_RANGE).",
)
async def klines(request: Request, q: dict):
    if q["startTime"] is not None and q["endTime"] is not None and q["startTime"] > q["endTime"]:
        raise BadRequest(
            "'startTime' must not be after 'endTime'", code="INVALID_TIME_RANGE", details={"field": "startTime"}
        )
    return ok(
        request, await service(request).klines(q["symbol"], q["interval"], q["limit"], q["startTime"], q["endTime"])
    )


@bp.get("/depth")
@operation("Order book snapshot", tag="market", query=DEPTH, data=S.DEPTH, errors=UPSTREAM)
async def depth(request: Request, q: dict):
    return ok(request, await service(request).depth(q["symbol"], q["limit"]))


@bp.get("/trades")
@operation("Recent trades", tag="market", query=TRADES, data=S.array(S.TRADE), errors=UPSTREAM)
async def trades(request: Request, q: dict):
    return ok(request, await service(request).trades(q["symbol"], q["limit"]))


@bp.get("/exchangeInfo")
@operation(
    "Trading rules and symbols (Binance's exchangeInfo)",
    tag="market",
    query=SYMBOL_OR_LIST,
    data=S.EXCHANGE_INFO,
    errors=UPSTREAM,
    description=ONE_OR_LIST,
)
async def exchange_info(request: Request, q: dict):
    info = await service(request).exchange_info()
    symbol, symbols = _one_or_list(q)
    wanted = symbols or ([symbol] if symbol else None)
    listed = info.get("symbols", [])
    if wanted:
        listed = [s for s in listed if s["symbol"] in wanted]
    return ok(
        request,
        {
            "timezone": info.get("timezone"),
            "serverTime": info.get("serverTime"),
            "rateLimits": info.get("rateLimits", []),
            "symbols": listed,
        },
    )


@bp.get("/symbols")
@operation(
    "Symbols with their main trading rules",
    tag="market",
    query=SYMBOLS,
    data=S.array(S.SYMBOL_SUMMARY),
    errors=UPSTREAM,
)
async def symbols(request: Request, q: dict):
    fold = lambda text: fold_symbol(text) if text else None  # noqa: E731
    return ok(
        request, await service(request).symbol_summaries(fold(q["baseAsset"]), fold(q["quoteAsset"]), q["status"])
    )


def setup_market(app: Sanic) -> None:
    app.blueprint(bp)
