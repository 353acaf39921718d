"""The sync and async clients against a real paper exchange on loopback: what workers and the web
tier will see from Binance, errors included."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis

from binance_client import AsyncBinanceClient, BinanceClient, endpoints
from binance_client.budget import CANCEL, ORDER, READ, WeightBudget
from binance_client.errors import (
    AuthError,
    BudgetSpentError,
    ClockSkewError,
    NotFoundError,
    OrderRejectedError,
    RateLimitedError,
    TimeoutError_,
    UnavailableError,
    UnknownOutcomeError,
)
from tests.processes import free_port
from tests.support import SteppedClock


@pytest.fixture
def client(exchange):
    c = BinanceClient(exchange.url, api_key=exchange.key, api_secret=exchange.secret, timeout=5)
    yield c
    c.close()


def test_public_call_carries_rate_limit_state(client):
    response = client.send(endpoints.depth("BTCUSDT", 10))
    assert len(response.data["bids"]) == 10
    assert response.rate_limits.used_weight_1m and response.rate_limits.used_weight_1m >= 5


def test_signed_order_round_trip(client):
    client_id = f"t-{uuid.uuid4().hex[:20]}"
    book = client.call(endpoints.depth("BTCUSDT", 5))
    price = f"{float(book['bids'][0][0]) * 0.8:.2f}"
    placed = client.send(
        endpoints.new_order(
            "BTCUSDT", "BUY", "LIMIT", quantity="0.001", price=price, time_in_force="GTC", new_client_order_id=client_id
        )
    )
    assert placed.data["status"] == "NEW" and placed.data["clientOrderId"] == client_id
    assert placed.rate_limits.order_count.get("10S", 0) >= 1
    found = client.call(endpoints.get_order("BTCUSDT", orig_client_order_id=client_id))
    assert found["orderId"] == placed.data["orderId"]
    assert client.call(endpoints.cancel_order("BTCUSDT", order_id=found["orderId"]))["status"] == "CANCELED"
    with pytest.raises(NotFoundError):
        client.call(endpoints.cancel_order("BTCUSDT", order_id=found["orderId"]))


def test_rejections_are_typed(client, exchange):
    with pytest.raises(OrderRejectedError) as exc:
        client.call(
            endpoints.new_order("BTCUSDT", "BUY", "LIMIT", quantity="100", price="60000.00", time_in_force="GTC")
        )
    assert exc.value.code == -2010 and "insufficient balance" in exc.value.msg
    wrong = BinanceClient(exchange.url, api_key=exchange.key, api_secret="not-the-secret")
    with pytest.raises(AuthError) as exc:
        wrong.call(endpoints.account())
    assert exc.value.code == -1022
    wrong.close()


def test_clock_skew_is_detected_and_resync_fixes_it(client):
    client.clock.offset_ms = -120_000  # our clock two minutes behind Binance's
    with pytest.raises(ClockSkewError):
        client.call(endpoints.account())
    client.sync_time()
    assert abs(client.clock.offset_ms) < 1000
    assert "balances" in client.call(endpoints.account())


def test_an_answer_lost_after_execution_is_an_unknown_outcome(client, exchange):
    exchange.admin(
        "POST", "faults", {"kind": "timeout", "method": "POST", "path": "/api/v3/order", "when": "after", "count": 1}
    )
    client_id = f"t-{uuid.uuid4().hex[:20]}"
    with pytest.raises(UnknownOutcomeError):
        client.call(endpoints.new_order("BTCUSDT", "BUY", "MARKET", quantity="0.0002", new_client_order_id=client_id))
    # the order exists: this is why callers must look it up before resending
    assert client.call(endpoints.get_order("BTCUSDT", orig_client_order_id=client_id))["status"] == "FILLED"


def test_dropped_connection_and_timeout_and_refusal(client, exchange):
    exchange.admin("POST", "faults", {"kind": "drop", "path": "/api/v3/time", "count": 1})
    with pytest.raises(UnknownOutcomeError):
        client.call(endpoints.server_time())
    exchange.admin("POST", "faults", {"kind": "latency", "path": "/api/v3/time", "latency_ms": 1500, "count": 1})
    slow = BinanceClient(exchange.url, timeout=0.5)
    with pytest.raises(TimeoutError_):
        slow.call(endpoints.server_time())
    slow.close()
    closed = BinanceClient(f"http://127.0.0.1:{free_port()}", timeout=2)
    with pytest.raises(UnavailableError):
        closed.call(endpoints.ping())
    closed.close()


def test_rate_limited_answer_carries_retry_after(client, exchange):
    exchange.admin(
        "POST", "faults", {"kind": "rate_limit", "path": "/api/v3/ticker/price", "retry_after": 7, "count": 1}
    )
    with pytest.raises(RateLimitedError) as exc:
        client.call(endpoints.ticker_price("BTCUSDT"))
    assert exc.value.retry_after == 7 and exc.value.http_status == 429


def test_async_client_matches_the_sync_one(exchange):
    async def scenario():
        c = AsyncBinanceClient(exchange.url, api_key=exchange.key, api_secret=exchange.secret, timeout=5)
        try:
            prices = await asyncio.gather(*[c.call(endpoints.ticker_price("ETHUSDT")) for _ in range(50)])
            account = await c.send(endpoints.account())
            exchange.admin(
                "POST", "faults", {"kind": "latency", "path": "/api/v3/ping", "latency_ms": 1500, "count": 1}
            )
            c.timeout = 0.5
            await c.close()
            with pytest.raises(TimeoutError_):
                await c.call(endpoints.ping())
        finally:
            await c.close()
        return prices, account

    prices, account = asyncio.run(scenario())
    assert {p["symbol"] for p in prices} == {"ETHUSDT"}
    assert account.rate_limits.used_weight_1m >= 20 and "balances" in account.data


def test_weight_budget_is_shared_and_refuses_past_the_limit(redis_url, redis_prefix):
    conn = redis.Redis.from_url(redis_url)
    prefix = f"{redis_prefix}budget-{uuid.uuid4().hex[:6]}:"
    first, second = WeightBudget(conn, prefix, limit=50), WeightBudget(conn, prefix, limit=50)
    assert first.reserve(30).allowed
    verdict = second.reserve(30)  # another process sees the same minute's weight
    assert not verdict.allowed and verdict.used == 30 and 0 < verdict.retry_after <= 60
    assert second.reserve(20).allowed
    first.observe(50)
    assert not first.reserve(1).allowed
    first.pause(5, 418)
    paused = second.reserve(1)
    assert not paused.allowed and paused.paused_by == 418 and 4 < paused.retry_after <= 5
    conn.close()


def test_weight_budget_counts_per_calendar_minute_and_a_pause_lasts_its_retry_after(redis_url, redis_prefix):
    conn = redis.Redis.from_url(redis_url)
    prefix = f"{redis_prefix}budget-{uuid.uuid4().hex[:6]}:"
    clock = SteppedClock(1_800_000_000 + 50.0)  # 10 s before a minute ends
    budget = WeightBudget(conn, prefix, limit=10, clock=clock)
    budget.spend(10)
    refused = budget.reserve(1)
    assert not refused.allowed and refused.retry_after == pytest.approx(10, abs=0.01)  # until the minute ends
    clock.now += 9.9
    assert not budget.reserve(1).allowed and budget.used() == 10
    clock.now += 0.1  # the next minute: a fresh count
    assert budget.used() == 0 and budget.reserve(10).allowed
    clock.now += 60
    budget.pause(5, 429)
    paused = budget.reserve(1)
    assert not paused.allowed and paused.paused_by == 429 and paused.retry_after == pytest.approx(5, abs=0.01)
    clock.now += 4.9
    assert budget.reserve(1).paused_by == 429
    clock.now += 0.1  # the pause is over
    assert budget.reserve(1).allowed
    conn.close()


def test_weight_budget_keeps_shares_for_orders_and_cancels(redis_url, redis_prefix):
    """Market data stops at 80 % of the limit, new orders at 95 %, cancels may use all of it."""
    conn = redis.Redis.from_url(redis_url)
    prefix = f"{redis_prefix}budget-{uuid.uuid4().hex[:6]}:"
    budget = WeightBudget(conn, prefix, limit=100, order_reserve=0.2, cancel_reserve=0.05)
    assert (budget.ceiling(READ), budget.ceiling(ORDER), budget.ceiling(CANCEL)) == (80, 95, 100)
    assert budget.reserve(80).allowed
    refused = budget.reserve(1)  # READ by default
    assert not refused.allowed and refused.ceiling == 80 and refused.used == 80
    with pytest.raises(BudgetSpentError) as spent:
        budget.spend(1, READ)
    assert spent.value.ceiling == 80 and spent.value.retry_after > 0 and spent.value.paused_by is None
    assert budget.reserve(15, ORDER).allowed
    assert not budget.reserve(1, ORDER).allowed
    assert budget.reserve(5, CANCEL).allowed
    assert not budget.reserve(1, CANCEL).allowed
    budget.pause(5, 429)  # Binance's own 429 stops every kind of call
    with pytest.raises(BudgetSpentError) as paused:
        WeightBudget(conn, prefix, limit=1000).spend(1, CANCEL)
    assert paused.value.paused_by == 429
    with pytest.raises(ValueError):
        WeightBudget(conn, prefix, limit=100, order_reserve=0.1, cancel_reserve=0.2)
    conn.close()


def test_proxy_settings_come_from_the_environment_as_requests_reads_them(monkeypatch):
    """The client skips Session.request's per-call environment merge, so it resolves the proxy (and
    no_proxy) for its one host when it is made; an operator's HTTPS_PROXY must still apply."""
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert BinanceClient("https://api.binance.com").session.proxies["https"] == "http://proxy.internal:3128"
    monkeypatch.setenv("NO_PROXY", "api.binance.com")
    assert "https" not in BinanceClient("https://api.binance.com").session.proxies
