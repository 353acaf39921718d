"""A new order's parameters checked against the symbol's exchangeInfo filters (Binance's filters.md),
before it is queued: each failure names the field and the rule. Pure: no I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from .errors import OrderInvalid

SIDES = ("BUY", "SELL")
TYPES = ("LIMIT", "MARKET", "LIMIT_MAKER", "STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT")
TIME_IN_FORCE = ("GTC", "IOC", "FOK")
NEEDS = {
    "LIMIT": ("quantity", "price"),
    "LIMIT_MAKER": ("quantity", "price"),
    "MARKET": (),
    "STOP_LOSS": ("quantity", "stopPrice"),
    "TAKE_PROFIT": ("quantity", "stopPrice"),
    "STOP_LOSS_LIMIT": ("quantity", "price", "stopPrice"),
    "TAKE_PROFIT_LIMIT": ("quantity", "price", "stopPrice"),
}
HAS_TIF = {"LIMIT", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"}
MARKET_LIKE = {"MARKET", "STOP_LOSS", "TAKE_PROFIT"}
CLIENT_ID_PATTERN = r"^[\.A-Z\:/a-z0-9_-]{1,36}$"
CLIENT_ID_RE = re.compile(CLIENT_ID_PATTERN)
# Canonical decimals only: ASCII digits, no sign, no spaces, no exponent, no leading zeros.
DECIMAL_PATTERN = r"^(0|[1-9][0-9]{0,19})(\.[0-9]{1,20})?$"
DECIMAL_RE = re.compile(DECIMAL_PATTERN)
# The same, above zero (limits): "0.000" is a decimal but not a limit.
POSITIVE_DECIMAL_PATTERN = r"^(0\.[0-9]{0,19}[1-9][0-9]{0,19}|[1-9][0-9]{0,19}(\.[0-9]{1,20})?)$"
POSITIVE_DECIMAL_RE = re.compile(POSITIVE_DECIMAL_PATTERN)
# Every field an order body may carry; anything else is refused (a typo like "stopprice" must not
# be dropped silently).
ORDER_FIELDS = (
    "symbol",
    "side",
    "type",
    "quantity",
    "quoteOrderQty",
    "price",
    "stopPrice",
    "timeInForce",
    "clientOrderId",
    "executeAt",
)
NULLABLE_ORDER_FIELDS = ("timeInForce", "clientOrderId", "executeAt")  # null: the default (GTC, ours, now)


def json_integer(value) -> int | None:
    """`value` as an int if JSON Schema calls it an integer (1 and 1.0 alike, never true), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


@dataclass(frozen=True)
class CheckedOrder:
    request: dict  # what the worker sends (strings, Binance's parameter names)
    notional: Decimal | None  # quote value, for risk limits (None if no reference price)


def _decimal(body: dict, name: str) -> Decimal | None:
    raw = body.get(name)
    if raw is None:
        return None
    # A JSON number would arrive as a float (0.1 is not 0.1): decimals travel as strings, as Binance's do.
    if not isinstance(raw, str) or not DECIMAL_RE.match(raw):
        raise OrderInvalid(
            name,
            f"'{name}' must be a decimal string like \"0.001\" (digits, no sign, spaces, "
            f"exponent or leading zeros), got {str(raw)[:40]!r}",
        )
    try:
        return Decimal(raw)
    except InvalidOperation:
        raise OrderInvalid(name, f"'{name}' must be a decimal") from None


def _wire(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _on_grid(value: Decimal, low: Decimal, step: Decimal) -> bool:
    return step == 0 or (value - low) % step == 0


def check_order(body: dict, symbol_info: dict, reference_price: Decimal | None) -> CheckedOrder:
    """Validate `body` (already JSON) for `symbol_info` (one exchangeInfo symbol)."""
    unknown = sorted(set(body) - set(ORDER_FIELDS))
    if unknown:
        raise OrderInvalid(unknown[0], f"Unknown field '{unknown[0]}': an order takes {', '.join(ORDER_FIELDS)}")
    for name, value in body.items():
        if value is None and name not in NULLABLE_ORDER_FIELDS:
            raise OrderInvalid(name, f"'{name}' must not be null: leave it out")
    status = symbol_info.get("status")
    if status == "CANCEL_ONLY":  # Binance's status since 2026-07: cancels only
        raise OrderInvalid(
            "symbol",
            f"{symbol_info['symbol']} is CANCEL_ONLY: it takes no new orders now, only cancels",
            rule="CANCEL_ONLY",
        )
    if status != "TRADING":
        raise OrderInvalid("symbol", f"{symbol_info['symbol']} is not trading now (status {status})", rule=status)
    # Enums as Binance spells them: "buy" and "ſell" (whose upper() is "SELL") are not canonical.
    side = body.get("side")
    if side not in SIDES:
        raise OrderInvalid("side", "'side' must be BUY or SELL")
    type_ = body.get("type")
    if type_ not in TYPES:
        raise OrderInvalid("type", f"'type' must be one of {', '.join(TYPES)}")
    if type_ not in symbol_info.get("orderTypes", TYPES):
        raise OrderInvalid("type", f"{type_} orders are not supported for {symbol_info['symbol']}", "ORDER_TYPES")
    values = {name: _decimal(body, name) for name in ("quantity", "quoteOrderQty", "price", "stopPrice")}
    for name in NEEDS[type_]:
        if values[name] is None:
            raise OrderInvalid(name, f"'{name}' is required for {type_} orders")
    for name in ("price", "stopPrice"):
        if values[name] is not None and name not in NEEDS[type_]:
            raise OrderInvalid(name, f"'{name}' is not used by {type_} orders")
    if type_ == "MARKET":
        if (values["quantity"] is None) == (values["quoteOrderQty"] is None):
            raise OrderInvalid("quantity", "MARKET orders take exactly one of 'quantity' or 'quoteOrderQty'")
    elif values["quoteOrderQty"] is not None:
        raise OrderInvalid("quoteOrderQty", "'quoteOrderQty' is only for MARKET orders")
    tif = body.get("timeInForce")
    if type_ in HAS_TIF:
        tif = "GTC" if tif is None else tif
        if tif not in TIME_IN_FORCE:
            raise OrderInvalid("timeInForce", "'timeInForce' must be GTC, IOC or FOK")
    elif tif is not None:
        raise OrderInvalid("timeInForce", f"'timeInForce' is not used by {type_} orders")

    filters = {f["filterType"]: f for f in symbol_info.get("filters", [])}
    for name in ("price", "stopPrice"):
        value = values[name]
        if value is not None and "PRICE_FILTER" in filters:
            f = filters["PRICE_FILTER"]
            low, high, tick = Decimal(f["minPrice"]), Decimal(f["maxPrice"]), Decimal(f["tickSize"])
            if value <= 0 or (low and value < low) or (high and value > high):
                raise OrderInvalid(
                    name, f"'{name}' {value} is outside [{f['minPrice']}, {f['maxPrice']}]", "PRICE_FILTER"
                )
            if not _on_grid(value, low, tick):
                raise OrderInvalid(
                    name, f"'{name}' {value} is not a multiple of tickSize {f['tickSize']}", "PRICE_FILTER"
                )
    quantity = values["quantity"]
    if quantity is not None:
        for rule in ("MARKET_LOT_SIZE", "LOT_SIZE") if type_ in MARKET_LIKE else ("LOT_SIZE",):
            f = filters.get(rule)
            if f is None:
                continue
            low, high, step = Decimal(f["minQty"]), Decimal(f["maxQty"]), Decimal(f["stepSize"])
            if quantity <= 0 or quantity < low or (high and quantity > high):
                raise OrderInvalid("quantity", f"'quantity' {quantity} is outside [{f['minQty']}, {f['maxQty']}]", rule)
            if not _on_grid(quantity, low, step):
                raise OrderInvalid(
                    "quantity", f"'quantity' {quantity} is not a multiple of stepSize {f['stepSize']}", rule
                )
    price_for_notional = values["price"] if type_ not in MARKET_LIKE else reference_price
    notional = values["quoteOrderQty"]
    if notional is None and quantity is not None and price_for_notional is not None:
        notional = quantity * price_for_notional
    if notional is not None:
        for rule in ("NOTIONAL", "MIN_NOTIONAL"):
            f = filters.get(rule)
            if f is None or (type_ in MARKET_LIKE and not f.get("applyMinToMarket", f.get("applyToMarket", True))):
                continue
            if notional < Decimal(f["minNotional"]):
                raise OrderInvalid(
                    "quantity", f"order value {_wire(notional)} is below minNotional {f['minNotional']}", rule
                )
            limit_max = f.get("maxNotional")
            if limit_max and (type_ not in MARKET_LIKE or f.get("applyMaxToMarket")) and notional > Decimal(limit_max):
                raise OrderInvalid("quantity", f"order value {_wire(notional)} is above maxNotional {limit_max}", rule)

    request = {"symbol": symbol_info["symbol"], "side": side, "type": type_}
    if tif is not None:
        request["timeInForce"] = tif
    for name, value in values.items():
        if value is not None:
            request[name] = _wire(value)
    return CheckedOrder(request, notional)


def check_client_order_id(raw) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str) or not CLIENT_ID_RE.match(raw):
        raise OrderInvalid("clientOrderId", "'clientOrderId' must be 1-36 characters of A-Z a-z 0-9 . : / _ -")
    return raw
