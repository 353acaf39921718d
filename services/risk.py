"""Risk limits and the kill switch, kept in Redis so every web process and worker applies the same
rules and an engaged kill switch survives restarts.

Limits (all optional; null means no limit): `maxOrderNotional` (quote units, decimal string),
`allowedSymbols` (list), `maxOpenOrders` (account-wide), `maxOrdersPerMinute` (per token subject).
The web tier checks what it can before queueing (symbols, notional, rate, kill switch); the worker
checks the kill switch and open orders again right before sending (services/placement.py, reading
these keys in its own scripts).
"""

from __future__ import annotations

import time
from decimal import Decimal, InvalidOperation

import orjson

from .filters import POSITIVE_DECIMAL_RE, json_integer
from .outcomes import failure
from .symbols import fold_symbol

LIMIT_FIELDS = ("maxOrderNotional", "allowedSymbols", "maxOpenOrders", "maxOrdersPerMinute")
OPEN_STATUSES = {"NEW", "PARTIALLY_FILLED", "PENDING_NEW"}
MAX_ALLOWED_SYMBOLS = 1000  # well inside REQUEST_MAX_SIZE's default as JSON
MAX_COUNT = 2**63 - 1  # counts travel in task messages and Lua scripts: signed 64-bit at most


def validate_limits(body: object, known_symbols: set[str]) -> dict:
    """Check a PUT body; returns the normalized limits or raises ValueError('field: why')."""
    if not isinstance(body, dict):
        raise ValueError("body: must be a JSON object")
    unknown = set(body) - set(LIMIT_FIELDS)
    if unknown:
        raise ValueError(f"{sorted(unknown)[0]}: unknown field")
    limits: dict = {name: None for name in LIMIT_FIELDS}
    notional = body.get("maxOrderNotional")
    if notional is not None:
        if not isinstance(notional, str) or not POSITIVE_DECIMAL_RE.match(notional):
            raise ValueError("maxOrderNotional: must be a positive decimal string like \"1000\" (digits, no sign "
                             "or spaces)")
        try:
            value = Decimal(notional)
        except InvalidOperation:
            raise ValueError("maxOrderNotional: must be a decimal string") from None
        if not value.is_finite() or value <= 0:
            raise ValueError("maxOrderNotional: must be positive")
        limits["maxOrderNotional"] = str(value)
    symbols = body.get("allowedSymbols")
    if symbols is not None:
        if not isinstance(symbols, list) or not all(isinstance(s, str) for s in symbols) \
                or len(symbols) > MAX_ALLOWED_SYMBOLS:
            raise ValueError(f"allowedSymbols: must be a list of at most {MAX_ALLOWED_SYMBOLS} symbols")
        names = [fold_symbol(s) for s in symbols]
        bad = [s for s in names if s not in known_symbols]
        if bad:
            raise ValueError(f"allowedSymbols: unknown symbol {bad[0][:64]}")
        if len(set(names)) != len(names):
            raise ValueError("allowedSymbols: lists a symbol twice")
        limits["allowedSymbols"] = sorted(set(names))
    for name in ("maxOpenOrders", "maxOrdersPerMinute"):
        raw = body.get(name)
        if raw is not None:
            value = json_integer(raw)
            if value is None or not 1 <= value <= MAX_COUNT:
                raise ValueError(f"{name}: must be a positive integer of at most {MAX_COUNT}")
            limits[name] = value
    return limits


def kill_switch_refusal(state: dict | None) -> dict | None:
    if state and state.get("engaged"):
        return failure(403, "KILL_SWITCH_ENGAGED", "Trading is halted: the kill switch is engaged",
                       {"engagedAt": state.get("at"), "by": state.get("by")})
    return None


class _Keys:
    def __init__(self, prefix: str):
        self.limits_key = f"{prefix}risk:limits"
        self.kill_key = f"{prefix}risk:kill-switch"
        self.open_key = f"{prefix}risk:open-orders"
        self.rate_prefix = f"{prefix}risk:rate:"
        self.traded_key = f"{prefix}orders:symbols"  # symbols we placed orders on (positions read them)


class RiskStore(_Keys):
    """Synchronous access for workers."""

    def __init__(self, redis, prefix: str):
        super().__init__(prefix)
        self.redis = redis

    def note_order(self, order: dict) -> None:
        """Keep the set of orders we know to be open (used between exchange counts), and the set of
        symbols we have placed orders on (so positions find an asset even once it is sold out)."""
        member = f"{order.get('symbol')}:{order.get('orderId')}"
        pipe = self.redis.pipeline(transaction=False)
        if order.get("status") in OPEN_STATUSES:
            pipe.sadd(self.open_key, member)
        else:
            pipe.srem(self.open_key, member)
        if order.get("symbol"):
            pipe.sadd(self.traded_key, order["symbol"])
        pipe.execute()

    def traded_symbols(self) -> set[str]:
        return {s.decode() if isinstance(s, bytes) else s for s in self.redis.smembers(self.traded_key)}


class AsyncRiskStore(_Keys):
    """Asynchronous access for the web tier."""

    def __init__(self, redis, prefix: str):
        super().__init__(prefix)
        self.redis = redis

    async def limits(self) -> dict:
        raw = await self.redis.get(self.limits_key)
        return orjson.loads(raw) if raw else {name: None for name in LIMIT_FIELDS}

    async def set_limits(self, limits: dict) -> dict:
        await self.redis.set(self.limits_key, orjson.dumps(limits))
        return limits

    async def kill_switch(self) -> dict:
        raw = await self.redis.get(self.kill_key)
        return orjson.loads(raw) if raw else {"engaged": False, "at": None, "by": None, "reason": None}

    async def set_kill_switch(self, engaged: bool, by: str, reason: str | None) -> dict:
        state = {"engaged": engaged, "at": int(time.time() * 1000), "by": by, "reason": reason}
        await self.redis.set(self.kill_key, orjson.dumps(state))
        return state

    async def refusal(self, owner: str, symbol: str, notional: Decimal | None) -> dict | None:
        """What the web tier refuses before queueing: kill switch, symbols, notional, rate per token."""
        kill, raw_limits = await self.redis.mget(self.kill_key, self.limits_key)  # one round trip per order
        refused = kill_switch_refusal(orjson.loads(kill) if kill else None)
        if refused:
            return refused
        limits = orjson.loads(raw_limits) if raw_limits else {}
        allowed = limits.get("allowedSymbols")
        if allowed is not None and symbol not in allowed:
            return failure(400, "RISK_SYMBOL_NOT_ALLOWED", f"Trading {symbol} is not allowed by the risk limits",
                           {"field": "symbol", "allowedSymbols": allowed})
        cap = limits.get("maxOrderNotional")
        if cap is not None and notional is not None and notional > Decimal(cap):
            return failure(400, "RISK_MAX_NOTIONAL", f"Order notional {notional} exceeds the limit {cap}",
                           {"notional": str(notional), "limit": cap})
        rate = limits.get("maxOrdersPerMinute")
        if rate is not None:
            key = f"{self.rate_prefix}{owner}:{int(time.time() // 60)}"
            pipe = self.redis.pipeline()
            pipe.incr(key)
            pipe.expire(key, 120)
            count, _ = await pipe.execute()
            if count > rate:
                return failure(429, "RISK_ORDER_RATE", f"At most {rate} orders per minute for this token",
                               {"limit": rate}, retry_after=60 - time.time() % 60)
        return None
