"""Request builders: one function per Binance REST endpoint we use, each naming Binance's method,
path, security type and request weight (rest-api.md) — the only place those facts live.

A builder is pure: it returns a `Request`; a client (sync or async) sends it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum


class Security(StrEnum):
    NONE = "NONE"  # public market data
    USER_STREAM = "USER_STREAM"  # API key header, no signature (listen keys)
    SIGNED = "SIGNED"  # API key header + timestamp + HMAC signature


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    params: dict = field(default_factory=dict)
    security: Security = Security.NONE
    weight: int = 1
    is_order: bool = False  # counts against the ORDERS limits
    # CHANGELOG 2026-03-27: the weight is charged only when the request fails (order placement, cancels)
    free_on_success: bool = False

    @property
    def reserved_weight(self) -> int:
        """What to reserve in a weight budget before sending: nothing for a request that is free when
        it succeeds (its failure shows in Binance's X-MBX-USED-WEIGHT-1M)."""
        return 0 if self.free_on_success else self.weight

    def __post_init__(self):
        object.__setattr__(self, "params", {k: v for k, v in self.params.items() if v is not None})


def _symbols(symbols: list[str] | None) -> str | None:
    return json.dumps(symbols, separators=(",", ":")) if symbols else None


# -- general and market data (security NONE) --------------------------------------------------------


def ping() -> Request:
    """GET /api/v3/ping, weight 1."""
    return Request("GET", "/api/v3/ping")


def server_time() -> Request:
    """GET /api/v3/time, weight 1."""
    return Request("GET", "/api/v3/time")


def exchange_info(symbol: str | None = None, symbols: list[str] | None = None) -> Request:
    """GET /api/v3/exchangeInfo, weight 20."""
    return Request("GET", "/api/v3/exchangeInfo", {"symbol": symbol, "symbols": _symbols(symbols)}, weight=20)


def depth(symbol: str, limit: int = 100) -> Request:
    """GET /api/v3/depth, weight 5/25/50/250 for limit ≤100/≤500/≤1000/≤5000."""
    weight = 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250
    return Request("GET", "/api/v3/depth", {"symbol": symbol, "limit": limit}, weight=weight)


def trades(symbol: str, limit: int = 500) -> Request:
    """GET /api/v3/trades, weight 25."""
    return Request("GET", "/api/v3/trades", {"symbol": symbol, "limit": limit}, weight=25)


def klines(
    symbol: str, interval: str, limit: int = 500, start_time: int | None = None, end_time: int | None = None
) -> Request:
    """GET /api/v3/klines, weight 2."""
    return Request(
        "GET",
        "/api/v3/klines",
        {"symbol": symbol, "interval": interval, "startTime": start_time, "endTime": end_time, "limit": limit},
        weight=2,
    )


def avg_price(symbol: str) -> Request:
    """GET /api/v3/avgPrice, weight 2."""
    return Request("GET", "/api/v3/avgPrice", {"symbol": symbol}, weight=2)


def _ticker_weight(symbol, symbols, single: int, everything: int, per: tuple[int, int, int]) -> int:
    if symbol:
        return single
    if symbols:
        n = len(symbols)
        return per[0] if n <= 20 else per[1] if n <= 100 else per[2]
    return everything


def ticker_price(symbol: str | None = None, symbols: list[str] | None = None) -> Request:
    """GET /api/v3/ticker/price, weight 2 for one symbol, 4 otherwise."""
    return Request(
        "GET",
        "/api/v3/ticker/price",
        {"symbol": symbol, "symbols": _symbols(symbols)},
        weight=_ticker_weight(symbol, symbols, 2, 4, (4, 4, 4)),
    )


def ticker_24hr(symbol: str | None = None, symbols: list[str] | None = None) -> Request:
    """GET /api/v3/ticker/24hr, weight 2 for one symbol, 2/40/80 by count, 80 for all."""
    return Request(
        "GET",
        "/api/v3/ticker/24hr",
        {"symbol": symbol, "symbols": _symbols(symbols)},
        weight=_ticker_weight(symbol, symbols, 2, 80, (2, 40, 80)),
    )


def book_ticker(symbol: str | None = None, symbols: list[str] | None = None) -> Request:
    """GET /api/v3/ticker/bookTicker, weight 2 for one symbol, 4 otherwise."""
    return Request(
        "GET",
        "/api/v3/ticker/bookTicker",
        {"symbol": symbol, "symbols": _symbols(symbols)},
        weight=_ticker_weight(symbol, symbols, 2, 4, (4, 4, 4)),
    )


# -- trading and account (SIGNED) -------------------------------------------------------------------


def new_order(
    symbol: str,
    side: str,
    type_: str,
    *,
    quantity: str | None = None,
    quote_order_qty: str | None = None,
    price: str | None = None,
    stop_price: str | None = None,
    time_in_force: str | None = None,
    new_client_order_id: str | None = None,
    new_order_resp_type: str = "FULL",
) -> Request:
    """POST /api/v3/order (TRADE), weight 1 (0 when it succeeds), counts against ORDERS."""
    return Request(
        "POST",
        "/api/v3/order",
        {
            "symbol": symbol,
            "side": side,
            "type": type_,
            "timeInForce": time_in_force,
            "quantity": quantity,
            "quoteOrderQty": quote_order_qty,
            "price": price,
            "stopPrice": stop_price,
            "newClientOrderId": new_client_order_id,
            "newOrderRespType": new_order_resp_type,
        },
        Security.SIGNED,
        weight=1,
        is_order=True,
        free_on_success=True,
    )


def get_order(symbol: str, *, order_id: int | None = None, orig_client_order_id: str | None = None) -> Request:
    """GET /api/v3/order (USER_DATA), weight 4."""
    return Request(
        "GET",
        "/api/v3/order",
        {"symbol": symbol, "orderId": order_id, "origClientOrderId": orig_client_order_id},
        Security.SIGNED,
        weight=4,
    )


def cancel_order(symbol: str, *, order_id: int | None = None, orig_client_order_id: str | None = None) -> Request:
    """DELETE /api/v3/order (TRADE), weight 1 (0 when it succeeds)."""
    return Request(
        "DELETE",
        "/api/v3/order",
        {"symbol": symbol, "orderId": order_id, "origClientOrderId": orig_client_order_id},
        Security.SIGNED,
        free_on_success=True,
    )


def open_orders(symbol: str | None = None) -> Request:
    """GET /api/v3/openOrders (USER_DATA), weight 6 with a symbol, 80 without."""
    return Request("GET", "/api/v3/openOrders", {"symbol": symbol}, Security.SIGNED, weight=6 if symbol else 80)


def cancel_open_orders(symbol: str) -> Request:
    """DELETE /api/v3/openOrders (TRADE), weight 1 (0 when it succeeds)."""
    return Request("DELETE", "/api/v3/openOrders", {"symbol": symbol}, Security.SIGNED, free_on_success=True)


def all_orders(
    symbol: str,
    *,
    order_id: int | None = None,
    start_time: int | None = None,
    end_time: int | None = None,
    limit: int = 500,
) -> Request:
    """GET /api/v3/allOrders (USER_DATA), weight 20."""
    return Request(
        "GET",
        "/api/v3/allOrders",
        {"symbol": symbol, "orderId": order_id, "startTime": start_time, "endTime": end_time, "limit": limit},
        Security.SIGNED,
        weight=20,
    )


def account(omit_zero_balances: bool = False) -> Request:
    """GET /api/v3/account (USER_DATA), weight 20."""
    return Request(
        "GET",
        "/api/v3/account",
        {"omitZeroBalances": "true" if omit_zero_balances else None},
        Security.SIGNED,
        weight=20,
    )


def my_trades(
    symbol: str,
    *,
    order_id: int | None = None,
    start_time: int | None = None,
    end_time: int | None = None,
    from_id: int | None = None,
    limit: int = 500,
) -> Request:
    """GET /api/v3/myTrades (USER_DATA), weight 20."""
    return Request(
        "GET",
        "/api/v3/myTrades",
        {
            "symbol": symbol,
            "orderId": order_id,
            "startTime": start_time,
            "endTime": end_time,
            "fromId": from_id,
            "limit": limit,
        },
        Security.SIGNED,
        weight=20,
    )


# -- legacy listen keys (USER_STREAM) ---------------------------------------------------------------


def listen_key_create() -> Request:
    """POST /api/v3/userDataStream, weight 2 (retired on Binance Spot 2026-02-20; kept for venues)."""
    return Request("POST", "/api/v3/userDataStream", security=Security.USER_STREAM, weight=2)


def listen_key_keepalive(listen_key: str) -> Request:
    """PUT /api/v3/userDataStream, weight 2."""
    return Request("PUT", "/api/v3/userDataStream", {"listenKey": listen_key}, Security.USER_STREAM, weight=2)


def listen_key_close(listen_key: str) -> Request:
    """DELETE /api/v3/userDataStream, weight 2."""
    return Request("DELETE", "/api/v3/userDataStream", {"listenKey": listen_key}, Security.USER_STREAM, weight=2)
