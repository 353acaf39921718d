"""Risk limits and the kill switch, kept in Redis so every web process and worker applies the same
rules and an engaged kill switch survives restarts.

Limits (all optional; null means no limit): `maxOrderNotional` (USDT, decimal string),
`allowedSymbols` (list), `maxOpenOrders` (account-wide), `maxOrdersPerMinute` (per token subject).

An order is valued in its quote asset at the worse — the larger — of the prices it names (price,
stopPrice) and the reference price (the last price): a LIMIT SELL far below the market fills at the
bids, a MARKET order at whatever the book holds. That value is converted to USDT with the last price
of `<QUOTE>USDT` (or `USDT<QUOTE>`, inverted); an order whose quote asset has neither cannot be valued
and is refused while `maxOrderNotional` is set (RISK_UNPRICED).

The web tier checks everything before queueing; the worker checks everything but the per-token rate
again right before sending (services/placement.py): the limits as they are then, the allowed
symbols, the notional at the current price, the kill switch — a refusal fails the job with the same
error the web tier gives. `maxOpenOrders` is held across workers by `RiskStore.take_open_slot`: the
exchange's count (`open_count`, cached for OPEN_COUNT_MAX_AGE_MS) plus every order a worker is sending
or has sent since that count, checked and reserved in one script (OPEN_SLOT).

Keys (under the settings' prefix): `risk:limits`, `risk:kill-switch` (JSON); `risk:rate:<owner>:<minute>`
(orders per token subject and calendar minute); `risk:open-orders` (orders known open);
`risk:open-slots` (sorted set: job id → until when it counts, ms); `risk:open-count` (`n|t`: the
exchange's open orders at Redis time t, ms); `orders:symbols` (symbols we placed orders on).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import orjson

from .errors import LimitsInvalid
from .filters import POSITIVE_DECIMAL_RE, json_integer
from .keys import part
from .outcomes import failure
from .symbols import fold_symbol

USDT = "USDT"
OPEN_COUNT_MAX_AGE_MS = 10_000  # the exchange's open-order count (weight 80) is reused this long
SLOT_IN_FLIGHT_MS = 600_000  # a reservation whose job never finishes stops counting after this

LIMIT_FIELDS = ("maxOrderNotional", "allowedSymbols", "maxOpenOrders", "maxOrdersPerMinute")
OPEN_STATUSES = {"NEW", "PARTIALLY_FILLED", "PENDING_NEW"}
MAX_ALLOWED_SYMBOLS = 1000  # well inside REQUEST_MAX_SIZE's default as JSON
MAX_COUNT = 2**63 - 1  # counts travel in task messages and Lua scripts: signed 64-bit at most


def validate_limits(body: object, known_symbols: set[str]) -> dict:
    """Check a PUT body; returns the normalized limits or raises LimitsInvalid naming the field."""
    if not isinstance(body, dict):
        raise _refused("body: must be a JSON object")
    unknown = set(body) - set(LIMIT_FIELDS)
    if unknown:
        raise _refused(f"{sorted(unknown)[0]}: unknown field")
    limits: dict = {name: None for name in LIMIT_FIELDS}
    notional = body.get("maxOrderNotional")
    if notional is not None:
        if not isinstance(notional, str) or not POSITIVE_DECIMAL_RE.match(notional):
            raise _refused(
                'maxOrderNotional: must be a positive decimal string like "1000" (digits, no sign or spaces)'
            )
        try:
            value = Decimal(notional)
        except InvalidOperation:
            raise _refused("maxOrderNotional: must be a decimal string") from None
        if not value.is_finite() or value <= 0:
            raise _refused("maxOrderNotional: must be positive")
        limits["maxOrderNotional"] = str(value)
    symbols = body.get("allowedSymbols")
    if symbols is not None:
        if (
            not isinstance(symbols, list)
            or not all(isinstance(s, str) for s in symbols)
            or len(symbols) > MAX_ALLOWED_SYMBOLS
        ):
            raise _refused(f"allowedSymbols: must be a list of at most {MAX_ALLOWED_SYMBOLS} symbols")
        names = [fold_symbol(s) for s in symbols]
        bad = [s for s in names if s not in known_symbols]
        if bad:
            raise _refused(f"allowedSymbols: unknown symbol {bad[0][:64]}")
        if len(set(names)) != len(names):
            raise _refused("allowedSymbols: lists a symbol twice")
        limits["allowedSymbols"] = sorted(set(names))
    for name in ("maxOpenOrders", "maxOrdersPerMinute"):
        raw = body.get(name)
        if raw is not None:
            count = json_integer(raw)
            if count is None or not 1 <= count <= MAX_COUNT:
                raise _refused(f"{name}: must be a positive integer of at most {MAX_COUNT}")
            limits[name] = count
    return limits


def _refused(reason: str) -> LimitsInvalid:
    """`reason` is 'field: why'; the message a client reads names the field."""
    field, _, why = reason.partition(": ")
    if field in LIMIT_FIELDS:
        return LimitsInvalid(field, f"'{field}' {why}")
    return LimitsInvalid(field, f"Unknown field '{field}': the limits are {', '.join(LIMIT_FIELDS)}")


def kill_switch_refusal(state: dict | None) -> dict | None:
    if state and state.get("engaged"):
        return failure(
            403,
            "KILL_SWITCH_ENGAGED",
            "Trading is halted: the kill switch is engaged",
            {"engagedAt": state.get("at"), "by": state.get("by")},
        )
    return None


# -- valuation ------------------------------------------------------------------------------------------


def order_value(request: dict, reference: Decimal | None) -> Decimal | None:
    """What an order (`request` as the worker sends it) is worth in its quote asset: quoteOrderQty, or
    quantity × the largest of its price, its stopPrice and `reference`. None when nothing prices it."""
    if request.get("quoteOrderQty") is not None:
        return Decimal(request["quoteOrderQty"])
    if request.get("quantity") is None:
        return None
    prices = [Decimal(request[name]) for name in ("price", "stopPrice") if request.get(name) is not None]
    if reference is not None:
        prices.append(reference)
    return Decimal(request["quantity"]) * max(prices) if prices else None


@dataclass(frozen=True)
class Valuation:
    """How a symbol's quote asset converts to USDT: 1:1, by the price of `via` (`<QUOTE>USDT`), or by
    its inverse (`USDT<QUOTE>`)."""

    quote_asset: str
    via: str | None = None
    inverse: bool = False

    @classmethod
    def for_symbol(cls, info: dict, symbols: dict[str, dict]) -> Valuation | None:
        """From exchangeInfo: `info` is the order's symbol, `symbols` every symbol by name."""
        quote = info["quoteAsset"]
        if quote == USDT:
            return cls(quote)
        for name, inverse in ((f"{quote}{USDT}", False), (f"{USDT}{quote}", True)):
            if symbols.get(name, {}).get("status") == "TRADING":
                return cls(quote, name, inverse)
        return None

    def to_usdt(self, value: Decimal, via_price: Decimal | None) -> Decimal:
        if self.via is None:
            return value
        if via_price is None:
            raise ValueError(f"converting {self.quote_asset} to USDT needs the price of {self.via}")
        return value / via_price if self.inverse else value * via_price

    def as_json(self) -> dict:
        return {"quoteAsset": self.quote_asset, "via": self.via, "inverse": self.inverse}

    @classmethod
    def from_json(cls, data: dict | None) -> Valuation | None:
        return None if data is None else cls(data["quoteAsset"], data.get("via"), bool(data.get("inverse")))


def needs_reference(limits: dict) -> bool:
    """Whether checking these limits needs a price (an order's value)."""
    return limits.get("maxOrderNotional") is not None


def limits_refusal(limits: dict, symbol: str, value_usdt: Decimal | None, valuation: Valuation | None) -> dict | None:
    """The allowed-symbols and notional rules, as the web tier and the worker both apply them.
    `value_usdt` is the order's value in USDT (None when it could not be valued)."""
    allowed = limits.get("allowedSymbols")
    if allowed is not None and symbol not in allowed:
        return failure(
            400,
            "RISK_SYMBOL_NOT_ALLOWED",
            f"Trading {symbol} is not allowed by the risk limits",
            {"field": "symbol", "allowedSymbols": allowed},
        )
    cap = limits.get("maxOrderNotional")
    if cap is None:
        return None
    if valuation is None or value_usdt is None:
        quote = valuation.quote_asset if valuation else None
        return failure(
            400,
            "RISK_UNPRICED",
            f"{symbol} orders cannot be valued in USDT, and maxOrderNotional is set",
            {"field": "symbol", "quoteAsset": quote, "limit": cap},
        )
    if value_usdt > Decimal(cap):
        shown = value_usdt.quantize(Decimal("0.00000001"))
        return failure(
            400,
            "RISK_MAX_NOTIONAL",
            f"Order notional {shown} USDT exceeds the limit {cap} USDT",
            {"notional": str(shown), "limit": cap, "currency": USDT},
        )
    return None


def open_orders_refusal(cap: int) -> dict:
    return failure(400, "RISK_MAX_OPEN_ORDERS", f"At most {cap} open orders are allowed", {"limit": cap})


# -- stores ---------------------------------------------------------------------------------------------

# maxOpenOrders across workers: an order counts from the moment its worker decides to send it. The
# exchange's count `n` was taken at Redis time `t`; a reservation counts while it is in flight (its
# score is in the future) or when its order was sent after `t` (the count may not show it). Orders
# that closed after `t` still count until the next count: conservative, never over the cap.
OPEN_SLOT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[5]))
local counted = tonumber(ARGV[3])
local since = tonumber(ARGV[4])
local others = redis.call('ZCOUNT', KEYS[1], '(' .. since, '+inf')
local own = redis.call('ZSCORE', KEYS[1], ARGV[1])
if own and tonumber(own) > since then others = others - 1 end
if counted + others >= tonumber(ARGV[2]) then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return {0, counted + others}
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[5]), ARGV[1])
return {1, counted + others + 1}
"""

# A finished job's reservation: its order, if still open, counts from now on as sent at `now` (until
# a count taken later includes it); a closed order or a failed job frees the slot. A Lua function, so
# the placement run's finish script releases it in the same call as the final record.
SLOT_DONE_FUNCTION = """
local function finish_open_slot(slots_key, job_id, is_open)
  if not redis.call('ZSCORE', slots_key, job_id) then return end
  if is_open == '1' then
    local t = redis.call('TIME')
    redis.call('ZADD', slots_key, tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000), job_id)
  else
    redis.call('ZREM', slots_key, job_id)
  end
end
"""


class _Keys:
    def __init__(self, prefix: str):
        self.limits_key = f"{prefix}risk:limits"
        self.kill_key = f"{prefix}risk:kill-switch"
        self.open_key = f"{prefix}risk:open-orders"
        self.slots_key = f"{prefix}risk:open-slots"
        self.open_count_key = f"{prefix}risk:open-count"
        self.rate_prefix = f"{prefix}risk:rate:"
        self.traded_key = f"{prefix}orders:symbols"  # symbols we placed orders on (positions read them)

    def rate_key(self, owner: str, minute: int) -> str:
        return f"{self.rate_prefix}{part(owner)}:{minute}"


class RiskStore(_Keys):
    """Synchronous access for workers."""

    def __init__(self, redis, prefix: str):
        super().__init__(prefix)
        self.redis = redis
        self._open_slot = redis.register_script(OPEN_SLOT)

    def note_order(self, order: dict) -> None:
        """Keep the set of orders we know to be open, and the set of symbols we have placed orders on
        (so positions find an asset even once it is sold out)."""
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

    def open_count(self, count_on_exchange) -> tuple[int, int]:
        """(open orders on the exchange, Redis time in ms the count was started at): the cached count
        while it is under OPEN_COUNT_MAX_AGE_MS old, else `count_on_exchange()` (weight 80)."""
        raw = self.redis.get(self.open_count_key)
        if raw:
            n, _, at = (raw.decode() if isinstance(raw, bytes) else raw).partition("|")
            return int(n), int(at)
        seconds, micros = self.redis.time()
        at = int(seconds) * 1000 + int(micros) // 1000
        n = count_on_exchange()
        self.redis.set(self.open_count_key, f"{n}|{at}", px=OPEN_COUNT_MAX_AGE_MS)
        return n, at

    def take_open_slot(self, job_id: str, cap: int, counted: int, since_ms: int) -> bool:
        """Reserve one of `cap` open-order slots for `job_id` (idempotent per job), atomically across
        workers; False when the cap is reached."""
        reply = self._open_slot(keys=[self.slots_key], args=[job_id, cap, counted, since_ms, SLOT_IN_FLIGHT_MS])
        return bool(int(reply[0]))


class AsyncRiskStore(_Keys):
    """Asynchronous access for the web tier."""

    def __init__(self, redis, prefix: str, clock: Callable[[], float] = time.time):
        super().__init__(prefix)
        self.redis = redis
        self.clock = clock  # seconds since the epoch: the calendar minute maxOrdersPerMinute counts in

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

    async def state(self) -> tuple[dict | None, dict]:
        """The kill switch's refusal (None while trading is allowed) and the limits, in one round trip."""
        kill, raw_limits = await self.redis.mget(self.kill_key, self.limits_key)
        limits = orjson.loads(raw_limits) if raw_limits else {}
        return kill_switch_refusal(orjson.loads(kill) if kill else None), limits

    async def rate_refusal(self, owner: str, limits: dict) -> dict | None:
        """maxOrdersPerMinute for this token subject (counts this order)."""
        rate = limits.get("maxOrdersPerMinute")
        if rate is None:
            return None
        now = self.clock()
        key = self.rate_key(owner, int(now // 60))
        pipe = self.redis.pipeline()
        pipe.incr(key)
        pipe.expire(key, 120)
        count, _ = await pipe.execute()
        if count > rate:
            return failure(
                429,
                "RISK_ORDER_RATE",
                f"At most {rate} orders per minute for this token",
                {"limit": rate},
                retry_after=60 - now % 60,
            )
        return None
