"""Order pacing: every worker takes a slot from Binance's ORDERS limits (per 10 s and per day, read
from exchangeInfo) in Redis before it sends an order, so a burst is drained at the allowed rate
instead of being bounced with 429/-1015. Slots are counted in fixed windows, as Binance counts them.
"""

from __future__ import annotations

import time
from typing import Callable

TAKE = """
local ten = tonumber(redis.call('GET', KEYS[1]) or '0')
local day = tonumber(redis.call('GET', KEYS[2]) or '0')
if ten >= tonumber(ARGV[1]) then return {0, 1} end
if day >= tonumber(ARGV[2]) then return {0, 2} end
redis.call('INCR', KEYS[1]); redis.call('PEXPIRE', KEYS[1], 20000)
redis.call('INCR', KEYS[2]); redis.call('PEXPIRE', KEYS[2], 90000000)
return {1, 0}
"""

TEN_S = 10_000
DAY = 86_400_000
SHARE = 0.9  # of Binance's limits: headroom for orders placed outside spotgate on the same account


class OrderPacer:
    def __init__(self, redis, prefix: str, per_10s: int = 100, per_day: int = 200_000):
        self.redis = redis
        self.prefix = prefix
        self.set_limits(per_10s, per_day)
        self._take = redis.register_script(TAKE)

    def set_limits(self, per_10s: int, per_day: int) -> None:
        self.per_10s = max(1, int(per_10s * SHARE))
        self.per_day = max(1, int(per_day * SHARE))

    def set_limits_from_exchange_info(self, info: dict) -> None:
        per_10s, per_day = 100, 200_000
        for limit in info.get("rateLimits", []):
            if limit.get("rateLimitType") != "ORDERS":
                continue
            seconds = {"SECOND": 1, "MINUTE": 60, "HOUR": 3600, "DAY": 86400}.get(limit.get("interval"), 0)
            span = seconds * int(limit.get("intervalNum", 1))
            if span == 10:
                per_10s = int(limit["limit"])
            elif span == 86400:
                per_day = int(limit["limit"])
        self.set_limits(per_10s, per_day)

    def try_take(self, now_ms: int | None = None) -> float:
        """Take a slot: 0.0 when taken, else seconds until a slot can free up."""
        now = int(time.time() * 1000) if now_ms is None else now_ms
        keys = [f"{self.prefix}pace:orders:10s:{now // TEN_S}", f"{self.prefix}pace:orders:1d:{now // DAY}"]
        taken, which = self._take(keys=keys, args=[self.per_10s, self.per_day])
        if taken:
            return 0.0
        window = TEN_S if int(which) == 1 else DAY
        return (window - now % window) / 1000 + 0.01

    def take(self, deadline: float, wait: Callable[[float], None] = time.sleep) -> bool:
        """Wait for a slot until `deadline` (time.monotonic()); False if none came in time.
        `wait(seconds)` does the waiting (the placer's renews its job lock meanwhile)."""
        while True:
            seconds = self.try_take()
            if seconds == 0.0:
                return True
            if time.monotonic() + seconds > deadline:
                return False
            wait(seconds)
