"""Response schemas for the OpenAPI docs, and `documented(...)`, which applies them to a route.

Decimals are strings, as Binance sends them; times are milliseconds since the epoch.
"""

from __future__ import annotations

from dataclasses import dataclass, make_dataclass
from typing import Any

from sanic_ext.extensions.openapi import openapi


@dataclass
class ErrorDetail:
    code: str
    message: str
    details: dict


@dataclass
class ErrorResponse:
    error: ErrorDetail
    requestId: str
    timestamp: int


@dataclass
class TickerPrice:
    symbol: str
    price: str


@dataclass
class Ticker24h:
    symbol: str
    priceChange: str
    priceChangePercent: str
    weightedAvgPrice: str
    lastPrice: str
    bidPrice: str
    askPrice: str
    openPrice: str
    highPrice: str
    lowPrice: str
    volume: str
    quoteVolume: str
    openTime: int
    closeTime: int
    count: int


@dataclass
class BookTicker:
    symbol: str
    bidPrice: str
    bidQty: str
    askPrice: str
    askQty: str


@dataclass
class Candle:
    openTime: int
    open: str
    high: str
    low: str
    close: str
    volume: str
    closeTime: int
    quoteVolume: str
    trades: int
    takerBuyBaseVolume: str
    takerBuyQuoteVolume: str


@dataclass
class Depth:
    symbol: str
    lastUpdateId: int
    bids: list[list[str]]
    asks: list[list[str]]


@dataclass
class Trade:
    id: int
    price: str
    qty: str
    quoteQty: str
    time: int
    isBuyerMaker: bool


@dataclass
class SymbolSummary:
    symbol: str
    status: str
    baseAsset: str
    quoteAsset: str
    orderTypes: list[str]
    tickSize: str
    stepSize: str
    minQty: str
    minNotional: str


@dataclass
class ExchangeInfo:
    timezone: str
    serverTime: int
    rateLimits: list[dict]
    symbols: list[dict]


@dataclass
class Health:
    status: str


@dataclass
class Readiness:
    status: str
    checks: dict


@dataclass
class Status:
    upstream: dict
    weight: dict
    serverTimeOffsetMs: float
    streams: dict   # the stream relay: running, reportAgeMs, connections, channels, userStream
    workers: dict   # answering (a ping through the default queue), latencyMs, queued per queue
    orders: dict    # last10s, limit10s, today, limitDay (the workers' order pacing)


@dataclass
class Fill:
    price: str
    qty: str
    commission: str
    commissionAsset: str
    tradeId: int


@dataclass
class Order:
    symbol: str
    orderId: int
    clientOrderId: str
    price: str
    origQty: str
    executedQty: str
    cummulativeQuoteQty: str
    status: str
    timeInForce: str
    type: str
    side: str


@dataclass
class OrderResult:
    symbol: str
    orderId: int
    clientOrderId: str
    transactTime: int
    price: str
    origQty: str
    executedQty: str
    cummulativeQuoteQty: str
    status: str
    type: str
    side: str
    fills: list[Fill]
    jobId: str


@dataclass
class Job:
    id: str
    status: str
    clientOrderId: str
    order: dict
    error: dict
    createdAt: int
    updatedAt: int
    executeAt: int
    expiresAt: int      # not sent by then: the job fails ORDER_EXPIRED
    request: dict


@dataclass
class MyTrade:
    symbol: str
    id: int
    orderId: int
    price: str
    qty: str
    quoteQty: str
    commission: str
    commissionAsset: str
    time: int
    isBuyer: bool
    isMaker: bool


@dataclass
class Balance:
    asset: str
    free: str
    locked: str


@dataclass
class Account:
    balances: list[Balance]
    canTrade: bool
    updateTime: int
    commissionRates: dict
    accountType: str


@dataclass
class RiskLimits:
    maxOrderNotional: str | None     # quote units per order; null = no limit
    allowedSymbols: list[str] | None
    maxOpenOrders: int | None        # account-wide, checked by the worker before sending
    maxOrdersPerMinute: int | None   # per token subject


@dataclass
class KillSwitch:
    engaged: bool
    at: int | None      # ms, last change
    by: str | None      # token subject that changed it
    reason: str | None


@dataclass
class KillSwitchRequest:
    engaged: bool
    reason: str | None = None


@dataclass
class KillSwitchChange:
    engaged: bool
    at: int
    by: str
    reason: str | None
    canceled: list[Order]   # every order the engagement canceled


@dataclass
class Position:
    asset: str
    symbol: str
    quantity: str               # held (free + locked)
    untrackedQuantity: str      # held without a known cost (deposits, opening balances)
    averageEntryPrice: str | None
    costBasis: str
    markPrice: str
    notional: str
    unrealizedPnl: str
    realizedPnl: str
    invested: str               # cost of everything bought
    returnPct: str | None       # (realized + unrealized) / invested
    trades: int


@dataclass
class PositionsSummary:
    quoteAsset: str
    totalNotional: str
    totalCostBasis: str
    totalUnrealizedPnl: str
    totalRealizedPnl: str
    totalInvested: str
    totalReturnPct: str | None


@dataclass
class Positions:
    positions: list[Position]
    summary: PositionsSummary
    unpriced: list[str]            # assets held without a <ASSET>USDT symbol
    incompleteHistory: list[str]   # symbols whose trade history was cut at 10,000 trades


_envelopes: dict[str, type] = {}


def envelope(model: Any, name: str) -> type:
    """`{"data": model, "requestId", "timestamp"}` as a named schema."""
    if name not in _envelopes:
        _envelopes[name] = make_dataclass(name, [("data", model), ("requestId", str), ("timestamp", int)])
    return _envelopes[name]


def documented(summary: str, data: Any, name: str, *, tag: str, secured: bool = True,
               parameters: list[tuple[str, type, bool, str]] = (), errors: tuple[int, ...] = (400, 401, 403, 429, 503, 504),
               body: Any = None):
    """Decorate a handler with its OpenAPI summary, query parameters, JSON body, responses and security."""

    def wrap(handler):
        handler = openapi.summary(summary)(handler)
        if body is not None:
            handler = openapi.body({"application/json": body}, required=True)(handler)
        handler = openapi.tag(tag)(handler)
        handler = openapi.response(200, {"application/json": envelope(data, name)}, "Success")(handler)
        for status in errors:
            handler = openapi.response(status, {"application/json": ErrorResponse}, "Error")(handler)
        for pname, ptype, required, description in parameters:
            handler = openapi.parameter(pname, ptype, "query", required=required, description=description)(handler)
        if secured:
            handler = openapi.secured("bearer")(handler)
        return handler

    return wrap
