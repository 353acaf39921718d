"""JSON Schemas of the REST API's bodies and answers, for the OpenAPI document (app/openapi.py).

Decimals are strings, as Binance sends them; times are milliseconds since the epoch (int64). Answers
allow fields beyond the ones listed (Binance adds fields over time); request bodies do not.
`SYMBOL` marks where the document puts the enum of listed symbols (`resolve`).
"""

from __future__ import annotations

from typing import Any

from services.filters import CLIENT_ID_PATTERN, DECIMAL_PATTERN, POSITIVE_DECIMAL_PATTERN, SIDES, TIME_IN_FORCE, TYPES
from services.risk import MAX_ALLOWED_SYMBOLS

STR = {"type": "string"}
INT = {"type": "integer", "format": "int64"}
MS = {"type": "integer", "format": "int64", "minimum": 0}
BOOL = {"type": "boolean"}
NUMBER = {"type": "number"}
# What Binance and the paper exchange send: "0.00100000", "-12.5" (a price change can be negative).
DEC = {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$"}
SYMBOL: dict = {"x-spotgate-symbol": True}  # replaced by the symbol enum (or a pattern) in `resolve`
ANY_OBJECT = {"type": "object"}


def nullable(schema: dict) -> dict:
    return {"anyOf": [schema, {"type": "null"}]}


def obj(required: dict[str, dict], optional: dict[str, dict] | None = None, *, closed: bool = False) -> dict:
    schema: dict = {"type": "object", "properties": {**required, **(optional or {})}, "required": list(required)}
    if closed:
        schema["additionalProperties"] = False
    return schema


def array(items: dict, **constraints) -> dict:
    return {"type": "array", "items": items, **constraints}


def envelope(data: dict) -> dict:
    """`{"data": data, "requestId", "timestamp"}`."""
    return obj({"data": data, "requestId": STR, "timestamp": MS})


def resolve(schema: Any, symbols: list[str] | None) -> Any:
    """`schema` with every SYMBOL marker replaced by the enum of `symbols` (a pattern when unknown)."""
    if isinstance(schema, dict):
        if schema.get("x-spotgate-symbol"):
            return {"type": "string", "enum": symbols} if symbols else {"type": "string", "pattern": r"^[^\s,]{1,64}$"}
        return {k: resolve(v, symbols) for k, v in schema.items()}
    if isinstance(schema, list):
        return [resolve(v, symbols) for v in schema]
    return schema


ERROR = obj({"error": obj({"code": STR, "message": STR, "details": ANY_OBJECT}), "requestId": STR, "timestamp": MS})

# -- market data ------------------------------------------------------------------------------------------

TICKER_PRICE = obj({"symbol": STR, "price": DEC})
TICKER_24H = obj(
    {
        "symbol": STR,
        "priceChange": DEC,
        "priceChangePercent": DEC,
        "weightedAvgPrice": DEC,
        "lastPrice": DEC,
        "openPrice": DEC,
        "highPrice": DEC,
        "lowPrice": DEC,
        "volume": DEC,
        "quoteVolume": DEC,
        "openTime": MS,
        "closeTime": MS,
        "count": INT,
    },
    {
        "bidPrice": DEC,
        "askPrice": DEC,
        "bidQty": DEC,
        "askQty": DEC,
        "lastQty": DEC,
        "prevClosePrice": DEC,
        "firstId": INT,
        "lastId": INT,
    },
)
BOOK_TICKER = obj({"symbol": STR, "bidPrice": DEC, "bidQty": DEC, "askPrice": DEC, "askQty": DEC})
CANDLE = obj(
    {
        "openTime": MS,
        "open": DEC,
        "high": DEC,
        "low": DEC,
        "close": DEC,
        "volume": DEC,
        "closeTime": MS,
        "quoteVolume": DEC,
        "trades": INT,
        "takerBuyBaseVolume": DEC,
        "takerBuyQuoteVolume": DEC,
    }
)
LEVEL = array(DEC, minItems=2, maxItems=2)
DEPTH = obj({"symbol": STR, "lastUpdateId": INT, "bids": array(LEVEL), "asks": array(LEVEL)})
TRADE = obj(
    {"id": INT, "price": DEC, "qty": DEC, "quoteQty": DEC, "time": MS, "isBuyerMaker": BOOL}, {"isBestMatch": BOOL}
)
EXCHANGE_INFO = obj(
    {
        "timezone": STR,
        "serverTime": MS,
        "rateLimits": array(ANY_OBJECT),
        "symbols": array(obj({"symbol": STR, "status": STR, "baseAsset": STR, "quoteAsset": STR})),
    }
)
SYMBOL_SUMMARY = obj(
    {
        "symbol": STR,
        "status": STR,
        "baseAsset": STR,
        "quoteAsset": STR,
        "orderTypes": array(STR),
        "tickSize": nullable(DEC),
        "stepSize": nullable(DEC),
        "minQty": nullable(DEC),
        "minNotional": nullable(DEC),
    }
)


def one_or_many(item: dict) -> dict:
    return {"anyOf": [item, array(item)]}


# -- health -----------------------------------------------------------------------------------------------

HEALTH = obj({"status": {"type": "string", "enum": ["ok"]}})
CHECK = obj({"ok": BOOL, "latencyMs": NUMBER}, {"error": STR})
READINESS = obj(
    {"status": {"type": "string", "enum": ["ready", "degraded"]}, "checks": obj({"redis": CHECK, "upstream": CHECK})}
)
STATUS = obj(
    {
        "upstream": obj({"url": STR, "reachable": BOOL, "latencyMs": nullable(NUMBER), "calls": INT}),
        "weight": obj(
            {
                "usedThisMinute": INT,
                "budget": INT,
                "lastReportedByBinance": nullable(INT),
                # how far each kind of call may spend the budget (binance_client.budget)
                "ceilings": obj({"read": INT, "order": INT, "cancel": INT}),
            }
        ),
        "serverTimeOffsetMs": NUMBER,
        # the stream relay's own report, the workers' answer to a ping, the workers' order pacing
        "streams": obj(
            {"running": BOOL, "reportAgeMs": nullable(INT), "connections": INT, "channels": INT, "userStream": {}}
        ),
        "workers": obj(
            {
                "answering": BOOL,
                "latencyMs": nullable(NUMBER),
                "queued": {"type": "object", "additionalProperties": INT},
            }
        ),
        "orders": obj({"last10s": INT, "limit10s": INT, "today": INT, "limitDay": INT}),
    }
)

# -- orders and account -----------------------------------------------------------------------------------

ORDER_STATUS = STR
ORDER = obj(
    {
        "symbol": STR,
        "orderId": INT,
        "clientOrderId": STR,
        "price": DEC,
        "origQty": DEC,
        "executedQty": DEC,
        "cummulativeQuoteQty": DEC,
        "status": ORDER_STATUS,
        "type": STR,
        "side": STR,
    },
    {
        "timeInForce": STR,
        "stopPrice": DEC,
        "time": MS,
        "updateTime": MS,
        "transactTime": MS,
        "origClientOrderId": STR,
        "orderListId": INT,
        "isWorking": BOOL,
        "workingTime": INT,
        "origQuoteOrderQty": DEC,
        "selfTradePreventionMode": STR,
        "expiryReason": STR,
    },
)  # expiryReason: Binance 2026-05-06, on expired orders
FILL = obj({"price": DEC, "qty": DEC, "commission": DEC, "commissionAsset": STR, "tradeId": INT})
ORDER_RESULT = obj(
    {"symbol": STR, "orderId": INT, "clientOrderId": STR, "transactTime": MS, "jobId": STR},
    {
        "price": DEC,
        "origQty": DEC,
        "executedQty": DEC,
        "cummulativeQuoteQty": DEC,
        "status": STR,
        "type": STR,
        "side": STR,
        "timeInForce": STR,
        "fills": array(FILL),
    },
)
JOB_ERROR = obj({"httpStatus": INT, "code": STR, "message": STR, "details": ANY_OBJECT}, {"retryAfter": NUMBER})
JOB = obj(
    {
        "id": STR,
        "status": {"type": "string", "enum": ["queued", "running", "succeeded", "failed"]},
        "clientOrderId": STR,
        "order": nullable(ANY_OBJECT),
        "error": nullable(JOB_ERROR),
        "createdAt": MS,
        "updatedAt": MS,
        "executeAt": nullable(MS),
        "request": ANY_OBJECT,
    },
    # expiresAt: not sent by then, the job fails ORDER_EXPIRED
    {"orderUpdate": nullable(ANY_OBJECT), "expiresAt": nullable(MS)},
)
MY_TRADE = obj(
    {
        "symbol": STR,
        "id": INT,
        "orderId": INT,
        "price": DEC,
        "qty": DEC,
        "quoteQty": DEC,
        "commission": DEC,
        "commissionAsset": STR,
        "time": MS,
        "isBuyer": BOOL,
        "isMaker": BOOL,
    }
)
BALANCE = obj({"asset": STR, "free": DEC, "locked": DEC})
ACCOUNT = obj(
    {
        "balances": array(BALANCE),
        "canTrade": nullable(BOOL),
        "updateTime": nullable(MS),
        "commissionRates": nullable(ANY_OBJECT),
        "accountType": nullable(STR),
    }
)
POSITION = obj(
    {
        "asset": STR,
        "symbol": STR,
        "quantity": DEC,
        "untrackedQuantity": DEC,
        "averageEntryPrice": nullable(DEC),
        "costBasis": DEC,
        "markPrice": DEC,
        "notional": DEC,
        "unrealizedPnl": DEC,
        "realizedPnl": DEC,
        "invested": DEC,
        "returnPct": nullable(DEC),
        "trades": INT,
    }
)
POSITIONS = obj(
    {
        "positions": array(POSITION),
        "summary": obj(
            {
                "quoteAsset": STR,
                "totalNotional": DEC,
                "totalCostBasis": DEC,
                "totalUnrealizedPnl": DEC,
                "totalRealizedPnl": DEC,
                "totalInvested": DEC,
                "totalReturnPct": nullable(DEC),
            }
        ),
        "unpriced": array(STR),
        "incompleteHistory": array(STR),
    }
)

DECIMAL_IN = {"type": "string", "pattern": DECIMAL_PATTERN}
CLIENT_ORDER_ID = {"type": "string", "pattern": CLIENT_ID_PATTERN}
MAX_SCHEDULE_MS = 2**53


def _order_variant(types: list[str], required: tuple[str, ...], optional: tuple[str, ...]) -> dict:
    fields = {
        "quantity": DECIMAL_IN,
        "quoteOrderQty": DECIMAL_IN,
        "price": DECIMAL_IN,
        "stopPrice": DECIMAL_IN,
        "timeInForce": {"type": "string", "enum": list(TIME_IN_FORCE)},
    }
    return obj(
        {
            "symbol": SYMBOL,
            "side": {"type": "string", "enum": list(SIDES)},
            "type": {"type": "string", "enum": types},
            **{name: fields[name] for name in required},
        },
        {
            **{name: nullable(fields[name]) for name in optional},
            "clientOrderId": nullable(CLIENT_ORDER_ID),
            "executeAt": nullable({**MS, "maximum": MAX_SCHEDULE_MS}),
        },
        closed=True,
    )


# One variant per order type family: what services.filters.check_order requires and allows.
ORDER_REQUEST = {
    "oneOf": [
        _order_variant(["LIMIT"], ("quantity", "price"), ("timeInForce",)),
        _order_variant(["LIMIT_MAKER"], ("quantity", "price"), ()),
        _order_variant(["MARKET"], ("quantity",), ()),
        _order_variant(["MARKET"], ("quoteOrderQty",), ()),
        _order_variant(["STOP_LOSS", "TAKE_PROFIT"], ("quantity", "stopPrice"), ()),
        _order_variant(["STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"], ("quantity", "price", "stopPrice"), ("timeInForce",)),
    ]
}
assert {t for v in ORDER_REQUEST["oneOf"] for t in v["properties"]["type"]["enum"]} == set(TYPES)

# -- risk -------------------------------------------------------------------------------------------------

POSITIVE_INT = {**INT, "minimum": 1, "maximum": 2**63 - 1}
RISK_LIMITS = obj(
    {
        "maxOrderNotional": nullable(DEC),
        "allowedSymbols": nullable(array(STR)),
        "maxOpenOrders": nullable(INT),
        "maxOrdersPerMinute": nullable(INT),
    }
)
RISK_LIMITS_REQUEST = obj(
    {},
    {
        "maxOrderNotional": nullable({"type": "string", "pattern": POSITIVE_DECIMAL_PATTERN}),
        "allowedSymbols": nullable(array(SYMBOL, uniqueItems=True, maxItems=MAX_ALLOWED_SYMBOLS)),
        "maxOpenOrders": nullable(POSITIVE_INT),
        "maxOrdersPerMinute": nullable(POSITIVE_INT),
    },
    closed=True,
)
KILL_SWITCH = obj({"engaged": BOOL, "at": nullable(MS), "by": nullable(STR), "reason": nullable(STR)})
KILL_SWITCH_REQUEST = obj({"engaged": BOOL}, {"reason": nullable({"type": "string", "maxLength": 256})}, closed=True)
KILL_SWITCH_CHANGE = obj({"engaged": BOOL, "at": MS, "by": STR, "reason": nullable(STR), "canceled": array(ORDER)})
