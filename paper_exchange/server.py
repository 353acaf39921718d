"""The REST adapter: Binance's /api/v3 endpoints and the /_paper admin endpoints over the core.

Each Binance endpoint is declared once with its method, path, security type and request weight
(as Binance's docs give them); `_serve` wraps every call in the same pipeline Binance applies:
parameters → weight limit → fault rules → API key / signature → handler → rate-limit headers.
Everything runs on the event loop thread, so the core needs no locks.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import secrets
import string
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import orjson
from sanic import Request, Sanic
from sanic.exceptions import MethodNotAllowed, NotFound, SanicException
from sanic.response import HTTPResponse, raw

from . import errors, wire
from .candles import INTERVALS_MS
from .config import PaperConfig
from .engine import Exchange
from .errors import BinanceError
from .faults import FaultBook
from .keys import ED25519, HMAC, RSA, ApiKey, register
from .limits import RateLimits
from .market import MAKER, NOISE, MarketSimulator
from .params import Params
from .symbols import DEFAULT_SYMBOLS, ORDER_TYPES

ACCOUNT = "paper-user"
UID = 10_000_001
API_KEY_HEADER = "X-MBX-APIKEY"
LISTEN_KEY_ALPHABET = string.ascii_letters + string.digits  # Binance's keys are 60 alphanumerics


def now_ms() -> int:
    return int(time.time() * 1000)


def json_response(body, status: int = 200, headers: dict | None = None) -> HTTPResponse:
    return raw(orjson.dumps(body), status=status, headers=headers, content_type="application/json")


@dataclass
class Call:
    """What a handler gets: parsed parameters, the time, the calling account (signed endpoints)."""

    params: Params
    now: int
    account: str | None
    ip: str


@dataclass
class Endpoint:
    method: str
    path: str
    security: str  # NONE, USER_STREAM (API key only) or SIGNED, as in Binance's docs
    weight: Callable[[Params], int]
    handler: Callable[[PaperExchange, Call], object]
    counts_order: bool = False
    free_on_success: bool = False  # CHANGELOG 2026-03-27: weight 0 when it succeeds, charged when it fails


ENDPOINTS: list[Endpoint] = []


def endpoint(
    method: str, path: str, security: str = "NONE", weight=1, counts_order: bool = False, free_on_success: bool = False
):
    weigh = weight if callable(weight) else (lambda params, w=weight: w)

    def register_endpoint(fn):
        ENDPOINTS.append(Endpoint(method, path, security, weigh, fn, counts_order, free_on_success))
        return fn

    return register_endpoint


class PaperExchange:
    """The running exchange: core, simulator, limits, faults, listen keys."""

    def __init__(self, config: PaperConfig):
        self.config = config
        self.exchange = Exchange(DEFAULT_SYMBOLS, seed=config.seed)
        self.exchange.add_account(ACCOUNT, dict(config.balances))
        self.simulator = MarketSimulator(self.exchange, seed=config.seed)
        self.limits = RateLimits(
            config.weight_limit, config.orders_per_10s, config.orders_per_day, config.ban_after, config.ban_seconds
        )
        self.faults = FaultBook(config.seed)
        self.listen_keys: dict[str, tuple[str, int]] = {}  # key -> (account, expires at ms)
        self.requests: Counter[str] = Counter()  # "METHOD /api/v3/…" -> REST requests served (/_paper/requests)
        # every API key of the demo account: the HMAC pair, and RSA / Ed25519 public keys if given
        self.api_keys = {config.api_key: ApiKey(config.api_key, ACCOUNT, HMAC, secret=config.api_secret)}
        for api_key, path, kind in (
            (config.rsa_api_key, config.rsa_public_key_file, RSA),
            (config.ed25519_api_key, config.ed25519_public_key_file, ED25519),
        ):
            if path is not None:
                self.api_keys[api_key] = register(api_key, ACCOUNT, path, kind)

    def start(self, now: int) -> None:
        self.simulator.seed_history(now, minutes=self.config.history_minutes)
        self.simulator.step(now)

    def markets_for(self, params: Params, required: bool = False):
        """`symbol` or `symbols` (JSON array) → markets; neither → all (unless required)."""
        symbol = params.symbol("symbol", required=False)
        symbols = params.symbol_list("symbols")
        if symbol and symbols:
            raise errors.bad_combo()
        if symbol:
            return [self.exchange.market(symbol)], True
        if symbols:
            return [self.exchange.market(s) for s in symbols], False
        if required:
            raise errors.mandatory_missing("symbol")
        return list(self.exchange.markets.values()), False


# -- general ----------------------------------------------------------------------------------------


@endpoint("GET", "/api/v3/ping")
def ping(px: PaperExchange, call: Call):
    call.params.finish()
    return {}


@endpoint("GET", "/api/v3/time")
def server_time(px: PaperExchange, call: Call):
    call.params.finish()
    return {"serverTime": call.now}


SYMBOL_STATUSES = ("TRADING", "END_OF_DAY", "HALT", "BREAK", "CANCEL_ONLY")  # enums.md (CANCEL_ONLY: 2026-07)


@endpoint("GET", "/api/v3/exchangeInfo", weight=20)
def exchange_info(px: PaperExchange, call: Call):
    markets, named = px.markets_for(call.params)
    named = named or "symbols" in call.params
    call.params.raw("permissions")
    call.params.raw("showPermissionSets")
    status = call.params.enum("symbolStatus", SYMBOL_STATUSES, lambda: BinanceError(-1122, "Invalid symbolStatus."))
    call.params.finish()
    if status is not None:
        if named and any(m.spec.status != status for m in markets):
            raise BinanceError(-1220, "The symbol's status does not match the requested symbolStatus.")
        markets = [m for m in markets if m.spec.status == status]
    return wire.exchange_info(px.exchange, markets, px.limits.describe(), call.now)


# -- market data ------------------------------------------------------------------------------------


def _depth_weight(params: Params) -> int:
    raw_limit = params.values.get("limit", "100")
    limit = int(raw_limit) if raw_limit.isdigit() else 100
    return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250


@endpoint("GET", "/api/v3/depth", weight=_depth_weight)
def depth(px: PaperExchange, call: Call):
    market = px.exchange.market(call.params.symbol())
    limit = call.params.limit(100, 5000, clamp=True)
    call.params.raw("symbolStatus")
    call.params.finish()
    return wire.depth(market, limit)


@endpoint("GET", "/api/v3/trades", weight=25)
def trades(px: PaperExchange, call: Call):
    market = px.exchange.market(call.params.symbol())
    limit = call.params.limit(500, 1000)
    call.params.finish()
    return [wire.public_trade(t) for t in list(market.history.trades)[-limit:]]


@endpoint("GET", "/api/v3/historicalTrades", weight=25)
def historical_trades(px: PaperExchange, call: Call):
    market = px.exchange.market(call.params.symbol())
    limit = call.params.limit(500, 1000)
    from_id = call.params.integer("fromId")
    call.params.finish()
    rows = list(market.history.trades)
    if from_id is not None:
        rows = [t for t in rows if t.id >= from_id][:limit]
    else:
        rows = rows[-limit:]
    return [wire.public_trade(t) for t in rows]


@endpoint("GET", "/api/v3/aggTrades", weight=4)
def agg_trades(px: PaperExchange, call: Call):
    p = call.params
    market = px.exchange.market(p.symbol())
    from_id, start, end = p.integer("fromId"), p.integer("startTime"), p.integer("endTime")
    limit = p.limit(500, 1000)
    p.finish()
    if start is not None and end is not None and end - start > 3_600_000:
        raise BinanceError(-1127, "More than 1 hours between startTime and endTime.")
    rows = list(market.history.agg_trades)
    if from_id is not None:
        rows = [t for t in rows if t.id >= from_id][:limit]
    elif start is not None or end is not None:
        rows = [t for t in rows if (start is None or t.time >= start) and (end is None or t.time <= end)][:limit]
    else:
        rows = rows[-limit:]
    return [wire.agg_trade(t) for t in rows]


def _klines(px: PaperExchange, call: Call):
    p = call.params
    market = px.exchange.market(p.symbol())
    interval = p.string("interval", required=True)
    if interval not in INTERVALS_MS:
        raise errors.bad_interval()
    start, end = p.integer("startTime"), p.integer("endTime")
    time_zone = p.string("timeZone")
    if time_zone not in (None, "0", "+00:00", "-00:00", "00:00"):
        raise errors.invalid_parameter("timeZone")
    limit = p.limit(500, 1000)
    p.finish()
    if start is not None and end is not None and start > end:
        raise errors.invalid_parameter("startTime")
    candles = market.history.klines(interval, start, end, limit, call.now)
    return [wire.kline(c, market.history.close_time(c, interval)) for c in candles]


endpoint("GET", "/api/v3/klines", weight=2)(_klines)
endpoint("GET", "/api/v3/uiKlines", weight=2)(_klines)


@endpoint("GET", "/api/v3/avgPrice", weight=2)
def avg_price(px: PaperExchange, call: Call):
    market = px.exchange.market(call.params.symbol())
    call.params.finish()
    return wire.avg_price(market, px.exchange, call.now)


def _ticker_weight(single: int, per_symbols: tuple[int, int, int], everything: int):
    def weigh(params: Params) -> int:
        if "symbol" in params.values:
            return single
        if "symbols" in params.values:
            count = params.values["symbols"].count(",") + 1
            return per_symbols[0] if count <= 20 else per_symbols[1] if count <= 100 else per_symbols[2]
        return everything

    return weigh


@endpoint("GET", "/api/v3/ticker/24hr", weight=_ticker_weight(2, (2, 40, 80), 80))
def ticker_24hr(px: PaperExchange, call: Call):
    markets, single = px.markets_for(call.params)
    kind = call.params.enum("type", ("FULL", "MINI"), lambda: errors.invalid_parameter("type")) or "FULL"
    call.params.finish()
    rows = [wire.ticker_24hr(m, call.now, full=kind == "FULL") for m in markets]
    return rows[0] if single else rows


@endpoint("GET", "/api/v3/ticker/price", weight=_ticker_weight(2, (4, 4, 4), 4))
def ticker_price(px: PaperExchange, call: Call):
    markets, single = px.markets_for(call.params)
    call.params.finish()
    rows = [wire.price_ticker(m) for m in markets]
    return rows[0] if single else rows


@endpoint("GET", "/api/v3/ticker/bookTicker", weight=_ticker_weight(2, (4, 4, 4), 4))
def book_ticker(px: PaperExchange, call: Call):
    markets, single = px.markets_for(call.params)
    call.params.finish()
    rows = [wire.book_ticker(m) for m in markets]
    return rows[0] if single else rows


# -- trading (SIGNED) -------------------------------------------------------------------------------

SIDES = ("BUY", "SELL")
TIFS = ("GTC", "IOC", "FOK")
NEEDS = {  # per type: which of timeInForce, quantity/quoteOrderQty, price, stopPrice it requires
    "LIMIT": {"timeInForce", "quantity", "price"},
    "LIMIT_MAKER": {"quantity", "price"},
    "MARKET": set(),
    "STOP_LOSS": {"quantity", "stopPrice"},
    "TAKE_PROFIT": {"quantity", "stopPrice"},
    "STOP_LOSS_LIMIT": {"timeInForce", "quantity", "price", "stopPrice"},
    "TAKE_PROFIT_LIMIT": {"timeInForce", "quantity", "price", "stopPrice"},
}


def _order_request(px: PaperExchange, call: Call) -> dict:
    """Parse and check a new order's parameters exactly as Binance orders its checks."""
    p = call.params
    symbol = p.symbol()
    side = p.enum("side", SIDES, errors.invalid_side, required=True)
    type_ = p.enum("type", ORDER_TYPES, errors.invalid_order_type, required=True)
    tif = p.enum("timeInForce", TIFS, errors.invalid_tif)
    quantity = p.decimal("quantity")
    quote_qty = p.decimal("quoteOrderQty")
    price = p.decimal("price")
    stop_price = p.decimal("stopPrice")
    client_id = p.client_order_id("newClientOrderId", errors.empty_new_client_order_id)
    resp_type = p.enum(
        "newOrderRespType", ("ACK", "RESULT", "FULL"), lambda: errors.invalid_parameter("newOrderRespType")
    )
    stp = p.string("selfTradePreventionMode")
    if stp is not None and stp != "NONE":
        raise errors.invalid_parameter("selfTradePreventionMode")
    p.integer("strategyId")
    p.integer("strategyType")
    if p.raw("icebergQty") is not None or p.raw("trailingDelta") is not None:
        raise errors.unsupported_combination()
    p.string("newOrderRespType")
    p.raw("computeCommissionRates")
    needs = NEEDS[type_]
    for name, value in (("timeInForce", tif), ("quantity", quantity), ("price", price), ("stopPrice", stop_price)):
        if name in needs and value is None:
            raise errors.mandatory_missing(name)
    if type_ == "MARKET":
        if quantity is None and quote_qty is None:
            raise errors.one_of_missing("quantity", "quoteOrderQty")
        if quantity is not None and quote_qty is not None:
            raise errors.param_not_required("quoteOrderQty")
    elif quote_qty is not None:
        raise errors.param_not_required("quoteOrderQty")
    if tif is not None and "timeInForce" not in needs:
        raise errors.tif_not_required()
    if price is not None and "price" not in needs:
        raise errors.param_not_required("price")
    if stop_price is not None and "stopPrice" not in needs:
        raise errors.param_not_required("stopPrice")
    if resp_type is None:
        resp_type = "FULL" if type_ in ("MARKET", "LIMIT") else "ACK"
    return dict(
        symbol=symbol,
        side=side,
        type_=type_,
        quantity=quantity,
        quote_qty=quote_qty,
        price=price,
        stop_price=stop_price,
        time_in_force=tif,
        client_order_id=client_id,
        resp_type=resp_type,
    )


@endpoint("POST", "/api/v3/order", security="SIGNED", weight=1, counts_order=True, free_on_success=True)
def new_order(px: PaperExchange, call: Call):
    req = _order_request(px, call)
    call.params.finish()
    resp_type = req.pop("resp_type")
    order = px.exchange.place_order(call.account, now=call.now, **req)
    return wire.new_order(order, resp_type, call.now)


@endpoint(
    "POST",
    "/api/v3/order/test",
    security="SIGNED",
    weight=lambda p: 20 if p.values.get("computeCommissionRates") == "true" else 1,
)
def test_order(px: PaperExchange, call: Call):
    req = _order_request(px, call)
    call.params.finish()
    req.pop("resp_type")
    px.exchange.place_order(call.account, now=call.now, test=True, **req)
    if call.params.values.get("computeCommissionRates") == "true":
        acc = px.exchange.accounts[call.account]
        rates = {"maker": wire.fmt(acc.maker_rate), "taker": wire.fmt(acc.taker_rate)}
        return {
            "standardCommissionForOrder": rates,
            "taxCommissionForOrder": {"maker": "0.00000000", "taker": "0.00000000"},
            "discount": {
                "enabledForAccount": False,
                "enabledForSymbol": False,
                "discountAsset": "BNB",
                "discount": "0.00000000",
            },
        }
    return {}


def _order_ref(call: Call) -> tuple[str, int | None, str | None]:
    p = call.params
    symbol = p.symbol()
    order_id = p.integer("orderId")
    orig_client_id = p.client_order_id("origClientOrderId", errors.empty_orig_client_order_id)
    if order_id is None and orig_client_id is None:
        raise errors.one_of_missing("orderId", "origClientOrderId")
    return symbol, order_id, orig_client_id


@endpoint("GET", "/api/v3/order", security="SIGNED", weight=4)
def get_order(px: PaperExchange, call: Call):
    symbol, order_id, client_id = _order_ref(call)
    call.params.finish()
    order = px.exchange.find_order(call.account, symbol, order_id, client_id)
    if order is None:
        raise errors.no_such_order()
    return wire.order_detail(order)


@endpoint("DELETE", "/api/v3/order", security="SIGNED", weight=1, free_on_success=True)
def cancel_order(px: PaperExchange, call: Call):
    symbol, order_id, client_id = _order_ref(call)
    new_client_id = call.params.client_order_id("newClientOrderId", errors.empty_new_client_order_id)
    restrictions = call.params.string("cancelRestrictions")
    if restrictions is not None and restrictions not in ("ONLY_NEW", "ONLY_PARTIALLY_FILLED"):
        raise BinanceError(-1145, "`cancelRestrictions` has to be either `ONLY_NEW` or `ONLY_PARTIALLY_FILLED`.")
    call.params.finish()
    if restrictions is not None:
        order = px.exchange.find_order(call.account, symbol, order_id, client_id)
        wanted = "NEW" if restrictions == "ONLY_NEW" else "PARTIALLY_FILLED"
        if order is not None and order.is_open and order.status != wanted:
            raise errors.cancel_rejected("Order was not canceled due to cancel restrictions.")
    order = px.exchange.cancel_order(
        call.account,
        symbol,
        now=call.now,
        order_id=order_id,
        orig_client_order_id=client_id,
        new_client_order_id=new_client_id,
    )
    return wire.canceled_order(order, call.now)


@endpoint("GET", "/api/v3/openOrders", security="SIGNED", weight=lambda p: 6 if "symbol" in p.values else 80)
def open_orders(px: PaperExchange, call: Call):
    symbol = call.params.symbol(required=False)
    call.params.finish()
    if symbol is not None:
        px.exchange.market(symbol)
    orders = px.exchange.accounts[call.account].open_orders(symbol)
    return [wire.order_detail(o) for o in sorted(orders, key=lambda o: (o.symbol, o.order_id))]


@endpoint("DELETE", "/api/v3/openOrders", security="SIGNED", weight=1, free_on_success=True)
def cancel_open_orders(px: PaperExchange, call: Call):
    symbol = call.params.symbol()
    call.params.finish()
    orders = px.exchange.cancel_all(call.account, symbol, call.now)
    if not orders:
        raise errors.cancel_rejected(errors.UNKNOWN_ORDER)
    return [wire.canceled_order(o, call.now) for o in orders]


def _time_range(call: Call) -> tuple[int | None, int | None]:
    start, end = call.params.integer("startTime"), call.params.integer("endTime")
    if start is not None and end is not None and end - start > 24 * 3_600_000:
        raise BinanceError(-1127, "More than 24 hours between startTime and endTime.")
    return start, end


def _page(rows: list, from_id: int | None, id_of, start: int | None, end: int | None, limit: int) -> list:
    """allOrders' and myTrades' paging, oldest first: from an id on, else within a time range, else
    the most recent `limit`."""
    if from_id is not None:
        return [r for r in rows if id_of(r) >= from_id][:limit]
    if start is not None or end is not None:
        return [r for r in rows if (start is None or r.time >= start) and (end is None or r.time <= end)][:limit]
    return rows[-limit:]


@endpoint("GET", "/api/v3/allOrders", security="SIGNED", weight=20)
def all_orders(px: PaperExchange, call: Call):
    p = call.params
    symbol = p.symbol()
    order_id = p.integer("orderId")
    start, end = _time_range(call)
    limit = p.limit(500, 1000)
    p.finish()
    px.exchange.market(symbol)
    orders = sorted(
        (o for (s, _), o in px.exchange.accounts[call.account].orders.items() if s == symbol), key=lambda o: o.order_id
    )
    orders = _page(orders, order_id, lambda o: o.order_id, start, end, limit)
    return [wire.order_detail(o) for o in orders]


@endpoint("GET", "/api/v3/account", security="SIGNED", weight=20)
def account(px: PaperExchange, call: Call):
    omit = call.params.enum("omitZeroBalances", ("true", "false"), lambda: errors.invalid_parameter("omitZeroBalances"))
    call.params.finish()
    return wire.account(px.exchange.accounts[call.account], UID, omit_zero=omit == "true")


@endpoint("GET", "/api/v3/myTrades", security="SIGNED", weight=lambda p: 5 if "orderId" in p.values else 20)
def my_trades(px: PaperExchange, call: Call):
    p = call.params
    symbol = p.symbol()
    order_id, from_id = p.integer("orderId"), p.integer("fromId")
    start, end = _time_range(call)
    limit = p.limit(500, 1000)
    p.finish()
    px.exchange.market(symbol)
    if from_id is not None and (start is not None or end is not None):
        raise errors.bad_combo()
    rows = [t for t in px.exchange.accounts[call.account].trades if t.symbol == symbol]
    if order_id is not None:
        rows = [t for t in rows if t.order_id == order_id]
    rows = _page(rows, from_id, lambda t: t.id, start, end, limit)
    return [wire.my_trade(t) for t in rows]


# -- legacy listen keys (USER_STREAM: API key, no signature) ----------------------------------------


@endpoint("POST", "/api/v3/userDataStream", security="USER_STREAM", weight=2)
def listen_key_create(px: PaperExchange, call: Call):
    call.params.finish()
    for key, (owner, expires) in px.listen_keys.items():
        if owner == call.account and expires > call.now:
            px.listen_keys[key] = (owner, call.now + px.config.listen_key_ttl * 1000)
            return {"listenKey": key}
    key = "".join(secrets.choice(LISTEN_KEY_ALPHABET) for _ in range(60))
    px.listen_keys[key] = (call.account, call.now + px.config.listen_key_ttl * 1000)
    return {"listenKey": key}


def _listen_key(px: PaperExchange, call: Call) -> str:
    key = call.params.string("listenKey", required=True)
    call.params.finish()
    entry = px.listen_keys.get(key)
    if entry is None or entry[0] != call.account or entry[1] <= call.now:
        raise errors.invalid_listen_key()
    return key


@endpoint("PUT", "/api/v3/userDataStream", security="USER_STREAM", weight=2)
def listen_key_keepalive(px: PaperExchange, call: Call):
    key = _listen_key(px, call)
    px.listen_keys[key] = (call.account, call.now + px.config.listen_key_ttl * 1000)
    return {}


@endpoint("DELETE", "/api/v3/userDataStream", security="USER_STREAM", weight=2)
def listen_key_close(px: PaperExchange, call: Call):
    del px.listen_keys[_listen_key(px, call)]
    return {}


# -- the pipeline -----------------------------------------------------------------------------------


class DropConnection(Exception):
    """Raised to close the client's connection without any answer (fault `drop`)."""


async def _serve(px: PaperExchange, ep: Endpoint, request: Request) -> HTTPResponse:
    now = now_ms()
    ip = request.ip or "127.0.0.1"
    headers: dict[str, str] = {}
    account_name = None
    px.requests[f"{ep.method} {ep.path}"] += 1
    try:
        try:
            body = request.body.decode() if request.body else ""
            params = Params(request.query_string or "", body)
        except UnicodeDecodeError:
            raise errors.illegal_chars("body", "utf-8") from None
        weight = ep.weight(params)
        used = px.limits.charge_weight(ip, weight, now)
        headers["X-MBX-USED-WEIGHT-1M"] = headers["X-MBX-USED-WEIGHT"] = str(used)
        rules = px.faults.pick(ep.method, ep.path)
        after = []
        for rule in rules:
            if rule.kind == "latency":
                await asyncio.sleep(rule.latency_ms / 1000)
                now = now_ms()
            elif rule.when == "after":
                after.append(rule)
            else:
                return _fault_response(rule, headers)
        if ep.security != "NONE":
            api_key = _authenticate(px, request)
            account_name = api_key.account
            if ep.security == "SIGNED":
                params.verify_signed(api_key, now_ms())
        if ep.counts_order:
            ten_s, day = px.limits.charge_order(account_name, now)
            headers["X-MBX-ORDER-COUNT-10S"], headers["X-MBX-ORDER-COUNT-1D"] = str(ten_s), str(day)
        result = ep.handler(px, Call(params, now, account_name, ip))
        for rule in after:
            return _fault_response(rule, headers)
        if ep.free_on_success:
            # admitted like any request (refused when the minute's weight is spent), but a success
            # costs nothing: the weight taken above goes back
            used = px.limits.refund_weight(ip, weight, now)
            headers["X-MBX-USED-WEIGHT-1M"] = headers["X-MBX-USED-WEIGHT"] = str(used)
        return json_response(result, headers=headers)
    except BinanceError as exc:
        if exc.retry_after is not None:
            headers["Retry-After"] = str(exc.retry_after)
        if "X-MBX-USED-WEIGHT-1M" not in headers:  # refused by the weight limit itself (429/418)
            used = px.limits.used_weight(ip, now)
            headers["X-MBX-USED-WEIGHT-1M"] = headers["X-MBX-USED-WEIGHT"] = str(used)
        if ep.counts_order and account_name is not None and "X-MBX-ORDER-COUNT-10S" not in headers:
            ten_s, day = px.limits.order_counts(account_name, now)
            headers["X-MBX-ORDER-COUNT-10S"], headers["X-MBX-ORDER-COUNT-1D"] = str(ten_s), str(day)
        return json_response(exc.body(), status=exc.http_status, headers=headers)
    except DropConnection:
        if request.transport is not None:
            request.transport.abort()
        return json_response({}, status=500)


def _fault_response(rule, headers: dict) -> HTTPResponse:
    if rule.kind == "drop":
        raise DropConnection()
    if rule.kind == "timeout":
        exc = errors.backend_timeout(rule.status or 408)
    elif rule.kind == "rate_limit":
        exc = errors.too_much_weight(0, rule.retry_after)
        exc = BinanceError(exc.code, "Too many requests queued.", 429, rule.retry_after)
    else:
        exc = errors.disconnected()
        exc.http_status = rule.status or 503
    if exc.retry_after is not None:
        headers["Retry-After"] = str(exc.retry_after)
    return json_response(exc.body(), status=exc.http_status, headers=headers)


def _authenticate(px: PaperExchange, request: Request) -> ApiKey:
    key = request.headers.get(API_KEY_HEADER)
    if not key or not key.isalnum() or len(key) > 128:
        raise errors.api_key_format_invalid()
    entry = px.api_keys.get(key)
    if entry is None:
        raise errors.rejected_api_key()
    return entry


LIMIT_SETTINGS = ("weight_limit", "orders_10s", "orders_day", "ban_after", "ban_seconds")
ADMIN_PREFIX = "/_paper/"
# A browser sends cross-site requests without a preflight only as GET, HEAD or POST with a text/plain,
# form or multipart body; demanding application/json for every body forces the preflight the paper
# exchange never answers, so a page on another site cannot change the exchange's state. (An empty
# POST reads as `null`/`{}` to every admin handler: it changes nothing.)


def _loopback_host(host_header: str) -> bool:
    """Whether a Host header names this machine's loopback: what a DNS-rebinding page cannot claim."""
    host = host_header.strip().lower()
    if host.startswith("["):
        host = host[1 : host.find("]")] if "]" in host else ""
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def admin_refusal(request: Request) -> HTTPResponse | None:
    """The /_paper endpoints have no auth: only loopback clients, only JSON bodies."""
    if not _loopback_host(request.headers.get("host", "")):
        return json_response({"error": "/_paper/ answers only requests for a loopback Host"}, status=403)
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if request.body and media_type != "application/json":
        return json_response({"error": "/_paper/ request bodies must be Content-Type: application/json"}, status=415)
    return None


# -- admin (/_paper) --------------------------------------------------------------------------------


def _admin_routes(app: Sanic, px: PaperExchange) -> None:
    @app.on_request
    async def guard(request: Request):
        if request.path.startswith(ADMIN_PREFIX):
            return admin_refusal(request)

    user_accounts = lambda: [a for n, a in px.exchange.accounts.items() if n not in (MAKER, NOISE)]  # noqa: E731

    @app.route("/_paper/faults", methods=["GET", "POST", "DELETE"])
    async def faults(request: Request):
        if request.method == "POST":
            try:
                rule = px.faults.add(orjson.loads(request.body or b"null"))
            except (ValueError, orjson.JSONDecodeError) as exc:
                return json_response({"error": str(exc)}, status=400)
            return json_response(rule.as_dict(), status=201)
        if request.method == "DELETE":
            px.faults.clear()
        return json_response([r.as_dict() for r in px.faults.rules])

    @app.get("/_paper/accounts")
    async def accounts(request: Request):
        return json_response(
            [
                {
                    "name": acc.name,
                    "balances": {
                        a: {"free": wire.fmt(b.free), "locked": wire.fmt(b.locked)}
                        for a, b in sorted(acc.balances.items())
                    },
                }
                for acc in user_accounts()
            ]
        )

    @app.get("/_paper/orders")
    async def orders(request: Request):
        symbol = request.args.get("symbol")
        client_id = request.args.get("clientOrderId")
        rows = [
            dict(wire.order_detail(o), account=acc.name)
            for acc in user_accounts()
            for o in acc.orders.values()
            if (symbol is None or o.symbol == symbol) and (client_id is None or o.client_order_id == client_id)
        ]
        return json_response(sorted(rows, key=lambda r: (r["symbol"], r["orderId"])))

    @app.get("/_paper/book")
    async def book(request: Request):
        symbol = request.args.get("symbol", "")
        if symbol not in px.exchange.markets:
            return json_response({"error": "unknown symbol"}, status=404)
        return json_response(wire.depth(px.exchange.markets[symbol], 100_000))

    @app.get("/_paper/requests")
    async def requests(request: Request):
        """How many REST requests each endpoint has had since start (refused ones included): a client's
        calls counted where they arrive, with no minute window."""
        return json_response(dict(sorted(px.requests.items())))

    @app.get("/_paper/totals")
    async def totals(request: Request):
        return json_response({a: wire.fmt(v) for a, v in sorted(px.exchange.totals().items())})

    @app.route("/_paper/market", methods=["GET", "POST"])
    async def market(request: Request):
        """GET: fair prices and whether the simulation runs. POST {running?, symbol?, price?, step?}."""
        if request.method == "POST":
            try:
                body = orjson.loads(request.body or b"{}")
                if not isinstance(body, dict):
                    raise ValueError("body must be a JSON object")
                if "running" in body:
                    px.simulator.running = bool(body["running"])
                if "price" in body:
                    from decimal import Decimal

                    px.simulator.set_price(str(body.get("symbol", "")), Decimal(str(body["price"])), now_ms())
            except (ValueError, ArithmeticError, orjson.JSONDecodeError) as exc:
                return json_response({"error": str(exc)}, status=400)
            except BinanceError as exc:
                return json_response({"error": exc.msg}, status=400)
        return json_response(
            {"running": px.simulator.running, "fair": {s: f"{p:.8f}" for s, p in px.simulator.fair.items()}}
        )

    @app.route("/_paper/symbols", methods=["GET", "POST"])
    async def symbol_status(request: Request):
        """GET: every symbol's status. POST {"symbol", "status"}: e.g. CANCEL_ONLY (new orders refused
        with -2010 "Market is closed.", cancels still allowed), TRADING again."""
        if request.method == "POST":
            try:
                body = orjson.loads(request.body or b"{}")
            except orjson.JSONDecodeError as exc:
                return json_response({"error": str(exc)}, status=400)
            market = px.exchange.markets.get(body.get("symbol")) if isinstance(body, dict) else None
            if market is None:
                return json_response({"error": "unknown symbol"}, status=400)
            if body.get("status") not in SYMBOL_STATUSES:
                return json_response({"error": f"status must be one of {', '.join(SYMBOL_STATUSES)}"}, status=400)
            market.spec = dataclasses.replace(market.spec, status=body["status"])
        return json_response({s: m.spec.status for s, m in px.exchange.markets.items()})

    @app.route("/_paper/limits", methods=["GET", "POST"])
    async def limits(request: Request):
        if request.method == "POST":
            try:
                body = orjson.loads(request.body or b"{}")
            except orjson.JSONDecodeError as exc:
                return json_response({"error": str(exc)}, status=400)
            if not isinstance(body, dict):
                return json_response({"error": "body must be a JSON object"}, status=400)
            settings = {name: body[name] for name in LIMIT_SETTINGS if name in body}
            for name, value in settings.items():  # all checked before any is applied
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    return json_response({"error": f"{name} must be a non-negative integer"}, status=400)
            for name, value in settings.items():
                setattr(px.limits, name, value)
            if body.get("reset"):
                px.limits.ips.clear()
                px.limits.accounts.clear()
        return json_response({name: getattr(px.limits, name) for name in LIMIT_SETTINGS})


# -- app --------------------------------------------------------------------------------------------


def create_app(config: PaperConfig | None = None, name: str = "paper_exchange") -> Sanic:
    config = config or PaperConfig.from_env()
    # Sanic's own handlers would print its lines a second time beside the root handler
    # `python -m paper_exchange` installs: everything propagates to that one.
    app = Sanic(name, configure_logging=False)
    app.config.ACCESS_LOG = False
    # sanic-ext (installed for spotgate's own API) would add /docs HTML pages, automatic OPTIONS and
    # HEAD routes and CORS headers: nothing Binance serves. The paper exchange answers only its table.
    app.config.AUTO_EXTEND = False
    app.config.KEEP_ALIVE_TIMEOUT = 75
    px = PaperExchange(config)
    app.ctx.paper = px

    by_path: dict[str, dict[str, Endpoint]] = {}
    for ep in ENDPOINTS:
        by_path.setdefault(ep.path, {})[ep.method] = ep
    for path, methods in by_path.items():

        async def route(request: Request, _methods=methods):
            return await _serve(px, _methods[request.method], request)

        app.add_route(route, path, methods=list(methods), name=path.strip("/").replace("/", "_"))

    _admin_routes(app, px)
    from .ws import setup_streams  # market streams, WS-API user data, stream faults (ws.py)

    setup_streams(app, px)

    @app.exception(NotFound, MethodNotAllowed)
    async def not_found(request: Request, exc):
        status = 405 if isinstance(exc, MethodNotAllowed) else 404
        return json_response(errors.unsupported_operation().body(), status=status)

    @app.exception(Exception)
    async def crash(request: Request, exc):
        if isinstance(exc, SanicException) and 400 <= exc.status_code < 500:
            # A request Sanic could not parse (bad framing, bad Content-Length): the client's
            # fault, so a 4xx. A 5xx would tell the client the outcome is unknown.
            return json_response(errors.unknown().body(), status=exc.status_code)
        app.ctx.last_crash = repr(exc)
        return json_response(errors.unknown().body(), status=500)

    @app.before_server_start
    async def start_market(app_: Sanic):
        px.start(now_ms())
        app_.add_task(_run_market(px), name="paper-market")

    return app


async def _run_market(px: PaperExchange) -> None:
    interval = px.config.step_ms / 1000
    next_prune = 0
    while True:
        await asyncio.sleep(interval)
        now = now_ms()
        px.simulator.step(now)
        if now >= next_prune:
            px.listen_keys = {k: v for k, v in px.listen_keys.items() if v[1] > now}
            next_prune = now + 60_000
