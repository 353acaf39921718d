"""The per-minute counters kept in the web tier (a client's upstream weight quota, a token's
maxOrdersPerMinute) count calendar minutes read from an injected clock: these tests step across a
minute's end instead of waiting for one. (The shared weight budget's are in
tests/binance_client/test_clients.py.)"""

from __future__ import annotations

import asyncio
import uuid
from types import SimpleNamespace

import pytest
import redis.asyncio as aioredis

from app.errors import TooManyRequests
from app.quotas import ClientQuotas
from services.risk import AsyncRiskStore
from tests.support import SteppedClock

START = 1_800_000_000 + 50.0  # 10 s before a minute ends


def as_subject(sub: str):
    """What ClientQuotas reads of a request: its token's subject."""
    return SimpleNamespace(ctx=SimpleNamespace(principal=SimpleNamespace(sub=sub)))


def test_a_client_quota_refuses_until_the_minute_ends_then_counts_afresh(redis_url, redis_prefix):
    async def scenario():
        conn = aioredis.Redis.from_url(redis_url)
        clock = SteppedClock(START)
        quotas = ClientQuotas(conn, f"{redis_prefix}quota-{uuid.uuid4().hex[:6]}:", per_minute=100, clock=clock)
        alice, bob = as_subject("alice"), as_subject("bob")
        try:
            await quotas.charge(alice, 80)
            with pytest.raises(TooManyRequests) as refused:
                await quotas.charge(alice, 30)
            assert refused.value.code == "CLIENT_WEIGHT_LIMIT"
            assert refused.value.retry_after == pytest.approx(10)
            assert refused.value.details == {"limit": 100, "usedWeight": 80, "weight": 30}
            await quotas.charge(bob, 100)  # every client has its own
            await quotas.charge(alice, 20)  # the refused charge was not counted
            await quotas.charge(alice, 5, overdraft=True)  # already spent: counted, never refused
            clock.now += 9.9
            with pytest.raises(TooManyRequests):
                await quotas.charge(alice, 1)
            clock.now += 0.1  # the next minute
            await quotas.charge(alice, 100)
        finally:
            await conn.aclose()

    asyncio.run(scenario())


def test_max_orders_per_minute_counts_each_token_per_calendar_minute(redis_url, redis_prefix):
    async def scenario():
        conn = aioredis.Redis.from_url(redis_url)
        clock = SteppedClock(START)
        risk = AsyncRiskStore(conn, f"{redis_prefix}risk-{uuid.uuid4().hex[:6]}:", clock=clock)
        limits = {"maxOrdersPerMinute": 2}
        try:
            assert await risk.rate_refusal("alice", {"maxOrdersPerMinute": None}) is None
            assert [await risk.rate_refusal("alice", limits) for _ in range(2)] == [None, None]
            refused = await risk.rate_refusal("alice", limits)
            assert refused["httpStatus"] == 429 and refused["code"] == "RISK_ORDER_RATE"
            assert refused["retryAfter"] == pytest.approx(10)
            assert await risk.rate_refusal("bob", limits) is None
            clock.now += 10  # the next minute
            assert await risk.rate_refusal("alice", limits) is None
        finally:
            await conn.aclose()

    asyncio.run(scenario())
