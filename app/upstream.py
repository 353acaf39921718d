"""The web tier's way to Binance for public data: the async client behind the shared weight budget,
plus single-flight caching so identical concurrent requests make one upstream call."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from binance_client import AsyncBinanceClient, endpoints
from binance_client.budget import READ, AsyncWeightBudget
from binance_client.endpoints import Request
from binance_client.errors import BinanceError, BudgetSpentError, RateLimitedError
from services.contract.limits import budget_limit
from services.metrics import metrics

log = logging.getLogger("spotgate.upstream")


class SingleFlight:
    """A short-TTL cache where concurrent misses for one key share a single fetch."""

    def __init__(self, max_entries: int = 10_000):
        self._values: dict[str, tuple[float, object]] = {}
        self._inflight: dict[str, asyncio.Future] = {}
        self.max_entries = max_entries
        self.fetches = 0

    async def get(self, key: str, ttl: float, fetch: Callable[[], Awaitable[object]]):
        now = time.monotonic()
        hit = self._values.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            self.fetches += 1
            value = await fetch()
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # waiters re-raise it; mark retrieved so no "never retrieved" warning
            raise
        finally:
            del self._inflight[key]
        if len(self._values) >= self.max_entries:
            self._values = {k: v for k, v in self._values.items() if v[0] > now}
        self._values[key] = (time.monotonic() + ttl, value)
        future.set_result(value)
        return value


class Upstream:
    def __init__(self, client: AsyncBinanceClient, budget: AsyncWeightBudget, quotas=None):
        self.client = client
        self.budget = budget
        self.quotas = quotas  # app.quotas.ClientQuotas: the weight is charged to the client served
        self.cache = SingleFlight()
        self.last_latency_ms: float | None = None
        self.last_used_weight: int | None = None
        self.calls = 0
        self._background: set[asyncio.Task] = set()

    def set_weight_limit(self, limit: int) -> None:
        self.budget.limit = budget_limit(limit)

    async def call(self, request: Request):
        if self.quotas is not None:
            await self.quotas.charge_current(request.weight)
        # market data draws on the budget only up to the READ ceiling: what is left is kept for
        # orders and cancels (a refusal is BudgetSpentError → 429 UPSTREAM_BUDGET_SPENT, app/errors.py)
        try:
            await self.budget.spend(request.weight, READ)
        except BudgetSpentError:
            metrics().budget_refusals.inc()
            raise
        self.calls += 1
        try:
            response = await self.client.send(request)
        except BinanceError as exc:
            await self.budget.observe(exc.rate_limits.used_weight_1m)
            if isinstance(exc, RateLimitedError):
                await self.budget.pause(exc.retry_after or 1, exc.http_status)
            raise
        self.last_latency_ms = response.elapsed_ms
        self.last_used_weight = response.rate_limits.used_weight_1m
        self._observe_later(response.rate_limits.used_weight_1m)
        return response.data

    def _observe_later(self, used: int | None) -> None:
        """Sync the shared counter with Binance's figure off the request path: the answer is ready,
        the client need not wait for a second Redis round trip."""
        if used is None:
            return
        task = asyncio.get_running_loop().create_task(self.budget.observe(used))
        self._background.add(task)
        task.add_done_callback(self._observed)

    def _observed(self, task: asyncio.Task) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("could not record upstream weight: %r", task.exception())

    @staticmethod
    def cache_key(request: Request) -> str:
        return request.path + "?" + "&".join(f"{k}={v}" for k, v in sorted(request.params.items()))

    async def cached(self, request: Request, ttl: float):
        return await self.cache.get(self.cache_key(request), ttl, lambda: self.call(request))

    async def ping(self) -> float:
        started = time.perf_counter()
        await self.call(endpoints.ping())
        return (time.perf_counter() - started) * 1000
