"""Binance's rate limits: REQUEST_WEIGHT per IP per minute, ORDERS per account per 10 s and per day,
429 with Retry-After when over, and a 418 ban for clients that keep going after 429s.

Windows are fixed intervals aligned to the clock, as Binance's are (the counters reset on the minute).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import errors

MINUTE_MS = 60_000
TEN_S_MS = 10_000
DAY_MS = 86_400_000


@dataclass
class Window:
    length_ms: int
    start: int = 0
    used: int = 0

    def roll(self, now: int) -> None:
        start = now - now % self.length_ms
        if start != self.start:
            self.start, self.used = start, 0

    def retry_after(self, now: int) -> int:
        """Whole seconds until the window resets (at least 1)."""
        return max(1, -(-(self.start + self.length_ms - now) // 1000))


@dataclass
class IpState:
    weight: Window = field(default_factory=lambda: Window(MINUTE_MS))
    violations: int = 0  # 429s answered in the current weight window
    violation_window: int = -1
    banned_until: int = 0


@dataclass
class AccountOrders:
    ten_s: Window = field(default_factory=lambda: Window(TEN_S_MS))
    day: Window = field(default_factory=lambda: Window(DAY_MS))


class RateLimits:
    def __init__(self, weight_limit: int, orders_10s: int, orders_day: int, ban_after: int, ban_seconds: int):
        self.weight_limit = weight_limit
        self.orders_10s = orders_10s
        self.orders_day = orders_day
        self.ban_after = ban_after
        self.ban_seconds = ban_seconds
        self.ips: dict[str, IpState] = {}
        self.accounts: dict[str, AccountOrders] = {}

    def describe(self) -> list[dict]:
        """The `rateLimits` array of exchangeInfo."""
        return [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": self.weight_limit},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": self.orders_10s},
            {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": self.orders_day},
            {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000},
        ]

    def charge_weight(self, ip: str, weight: int, now: int) -> int:
        """Count a request's weight; raise 429 (-1003) when over, 418 once the client ignores 429s."""
        state = self.ips.get(ip)
        if state is None:
            state = self.ips[ip] = IpState()
        if state.banned_until > now:
            raise errors.ip_banned(state.banned_until, -(-(state.banned_until - now) // 1000))
        state.weight.roll(now)
        if state.weight.start != state.violation_window:
            state.violations, state.violation_window = 0, state.weight.start
        if state.weight.used + weight > self.weight_limit:
            state.violations += 1
            if state.violations > self.ban_after:
                state.banned_until = now + self.ban_seconds * 1000
                raise errors.ip_banned(state.banned_until, self.ban_seconds)
            raise errors.too_much_weight(self.weight_limit, state.weight.retry_after(now))
        state.weight.used += weight
        return state.weight.used

    def refund_weight(self, ip: str, weight: int, now: int) -> int:
        """Give back weight charged in this window (a request that turned out free); the count now."""
        state = self.ips.get(ip)
        if state is None:
            return 0
        state.weight.roll(now)
        state.weight.used = max(0, state.weight.used - weight)
        return state.weight.used

    def used_weight(self, ip: str, now: int) -> int:
        state = self.ips.get(ip)
        if state is None:
            return 0
        state.weight.roll(now)
        return state.weight.used

    def charge_order(self, account: str, now: int) -> tuple[int, int]:
        """Count a new order against ORDERS; raise 429 (-1015) when a window is full."""
        state = self.accounts.get(account)
        if state is None:
            state = self.accounts[account] = AccountOrders()
        state.ten_s.roll(now)
        state.day.roll(now)
        if state.ten_s.used >= self.orders_10s:
            raise errors.too_many_orders(self.orders_10s, "10 SECOND", state.ten_s.retry_after(now))
        if state.day.used >= self.orders_day:
            raise errors.too_many_orders(self.orders_day, "1 DAY", state.day.retry_after(now))
        state.ten_s.used += 1
        state.day.used += 1
        return state.ten_s.used, state.day.used

    def order_counts(self, account: str, now: int) -> tuple[int, int]:
        state = self.accounts.get(account)
        if state is None:
            return 0, 0
        state.ten_s.roll(now)
        state.day.roll(now)
        return state.ten_s.used, state.day.used
