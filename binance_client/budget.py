"""The upstream request-weight budget, shared in Redis by every process that calls Binance.

Binance counts REQUEST_WEIGHT per IP per minute; all our web processes and workers share one IP, so
they share one budget. Before a call, `reserve(weight)` adds its weight to the current minute's
counter and refuses when the limit would be passed; after the call, `observe(headers)` raises the
counter to what Binance says was used (`X-MBX-USED-WEIGHT-1M`). A 429 or 418 from Binance
`pause`s everyone until its Retry-After has passed, so the IP is not banned (further).

One counter, three ceilings, so that market data can never starve the calls that move money:

    READ     market data, signed reads, depth snapshots    up to limit × (1 − order_reserve)
    ORDER    placing orders (send, look-ups, open-order counts), the user data stream
                                                           up to limit × (1 − cancel_reserve)
    CANCEL   cancels and the kill switch                   up to the whole limit

`order_reserve` is the share kept for orders and cancels, `cancel_reserve` (part of it) the share
kept for cancels alone: however busy readers or order flow are, the kill switch can still cancel.

Async (redis.asyncio, web) and sync (redis, workers) front-ends run the same Lua scripts. Minutes
are read from `clock` (seconds since the epoch, `time.time` unless given), so a test can step across
a minute boundary instead of waiting for one.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from .errors import BudgetSpentError

# A Lua function, so other scripts (a worker's order gate) can reserve weight in the same call.
RESERVE_FUNCTION = """
local function reserve_weight(weight_key, pause_key, weight, limit, now_ms, ttl_ms)
  local pause = redis.call('GET', pause_key)
  if pause then
    local sep = string.find(pause, '|')
    local until_ms = tonumber(string.sub(pause, 1, sep - 1))
    if until_ms > now_ms then return {-1, until_ms, string.sub(pause, sep + 1)} end
  end
  local used = redis.call('INCRBY', weight_key, weight)
  if used == weight then redis.call('PEXPIRE', weight_key, ttl_ms) end
  if used > limit then
    redis.call('DECRBY', weight_key, weight)
    return {0, used - weight, ''}
  end
  return {1, used, ''}
end
"""

RESERVE = (
    RESERVE_FUNCTION
    + """
return reserve_weight(KEYS[1], KEYS[2], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4])
"""
)

OBSERVE = """
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > cur then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) end
return 1
"""

PAUSE = """
local pause = redis.call('GET', KEYS[1])
if pause then
  local sep = string.find(pause, '|')
  if tonumber(string.sub(pause, 1, sep - 1)) >= tonumber(ARGV[1]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. ARGV[2], 'PX', ARGV[3])
return 1
"""

MINUTE_MS = 60_000
READ, ORDER, CANCEL = "read", "order", "cancel"
PRIORITIES = (READ, ORDER, CANCEL)


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    used: int = 0
    retry_after: float = 0.0
    paused_by: int | None = None  # 429 or 418 when Binance itself paused us
    ceiling: int = 0  # the ceiling of the call's priority (when refused by our count)


def verdict(result, now_ms: int) -> Verdict:
    """The Verdict of a reserve_weight() reply [flag, value, status] at `now_ms`."""
    flag, value, status = int(result[0]), int(result[1]), result[2]
    if flag == 1:
        return Verdict(True, used=value)
    if flag == -1:
        if isinstance(status, bytes):
            status = status.decode()
        return Verdict(False, retry_after=max(0.001, (value - now_ms) / 1000), paused_by=int(status or 429))
    return Verdict(False, used=value, retry_after=max(0.001, (MINUTE_MS - now_ms % MINUTE_MS) / 1000))


def spent(verdict_: Verdict) -> BudgetSpentError:
    """The error for a refused reservation."""
    return BudgetSpentError(
        verdict_.retry_after, used=verdict_.used, ceiling=verdict_.ceiling, paused_by=verdict_.paused_by
    )


class _Budget:
    """Keys and scripts shared by the sync and async front-ends."""

    def __init__(
        self,
        redis,
        prefix: str,
        limit: int,
        *,
        order_reserve: float = 0.0,
        cancel_reserve: float = 0.0,
        clock: Callable[[], float] = time.time,
    ):
        if not 0 <= cancel_reserve <= order_reserve < 1:
            raise ValueError("weight reserves must satisfy 0 <= cancel_reserve <= order_reserve < 1")
        self.redis = redis
        self.prefix = prefix
        self.limit = limit
        self.order_reserve = order_reserve
        self.cancel_reserve = cancel_reserve
        self.clock = clock
        self._reserve = redis.register_script(RESERVE)
        self._observe = redis.register_script(OBSERVE)
        self._pause = redis.register_script(PAUSE)

    def ceiling(self, priority: str = READ) -> int:
        """How far the shared count may go for calls of `priority` (see the module docstring)."""
        if priority not in PRIORITIES:
            raise ValueError(f"unknown priority {priority!r}")
        if priority == CANCEL:
            return self.limit
        share = self.cancel_reserve if priority == ORDER else self.order_reserve
        return max(1, self.limit - math.ceil(self.limit * share))

    def _reserve_call(self, weight: int, priority: str):
        now = self.now_ms()
        return now, dict(
            keys=[self.weight_key(now), self.pause_key], args=[weight, self.ceiling(priority), now, 2 * MINUTE_MS]
        )

    def _verdict(self, reply, now: int, priority: str) -> Verdict:
        result = verdict(reply, now)
        if not result.allowed and result.paused_by is None:
            result = Verdict(False, used=result.used, retry_after=result.retry_after, ceiling=self.ceiling(priority))
        return result

    def _observe_call(self, used_weight_1m: int):
        return dict(keys=[self.weight_key(self.now_ms())], args=[used_weight_1m, 2 * MINUTE_MS])

    def _pause_call(self, seconds: float, status: int):
        until = int(self.clock() * 1000 + seconds * 1000)
        return dict(keys=[self.pause_key], args=[until, status, int(seconds * 1000) + 1000])

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def weight_key(self, now_ms: int) -> str:
        return f"{self.prefix}upstream:weight:{now_ms // MINUTE_MS}"

    @property
    def pause_key(self) -> str:
        return f"{self.prefix}upstream:pause"


class AsyncWeightBudget(_Budget):
    async def reserve(self, weight: int, priority: str = READ) -> Verdict:
        now, call = self._reserve_call(weight, priority)
        return self._verdict(await self._reserve(**call), now, priority)

    async def spend(self, weight: int, priority: str = READ) -> None:
        """Reserve `weight` or raise BudgetSpentError."""
        result = await self.reserve(weight, priority)
        if not result.allowed:
            raise spent(result)

    async def observe(self, used_weight_1m: int | None) -> None:
        if used_weight_1m is not None:
            await self._observe(**self._observe_call(used_weight_1m))

    async def pause(self, seconds: float, status: int) -> None:
        await self._pause(**self._pause_call(seconds, status))

    async def used(self) -> int:
        value = await self.redis.get(self.weight_key(self.now_ms()))
        return int(value or 0)


class WeightBudget(_Budget):
    """The same budget for synchronous callers (Celery workers)."""

    def reserve(self, weight: int, priority: str = READ) -> Verdict:
        now, call = self._reserve_call(weight, priority)
        return self._verdict(self._reserve(**call), now, priority)

    def spend(self, weight: int, priority: str = READ) -> None:
        """Reserve `weight` or raise BudgetSpentError."""
        result = self.reserve(weight, priority)
        if not result.allowed:
            raise spent(result)

    def used(self) -> int:
        return int(self.redis.get(self.weight_key(self.now_ms())) or 0)

    def observe(self, used_weight_1m: int | None) -> None:
        if used_weight_1m is not None:
            self._observe(**self._observe_call(used_weight_1m))

    def pause(self, seconds: float, status: int) -> None:
        self._pause(**self._pause_call(seconds, status))
