"""The shared weight budget and the waits for workers (issue 10, items 6-8), through web → Redis →
Celery worker → paper exchange: one client cannot spend what everyone shares, positions are served
from a cache, a worker that finds the budget spent answers what the web tier would, and a request
waits for a worker as long as UPSTREAM_TIMEOUT says — then 504, with a cancel's outcome named unknown
and never carried out behind the client's back."""

from __future__ import annotations

import itertools
import time
import uuid
from decimal import Decimal

import pytest

from tests.orders.conftest import Stack
from tests.support import in_one_minute, wait_until

SYMBOLS = ("BTCUSDT", "ETHUSDT", "BNBUSDT", "ETHBTC")


def within_one_minute(seconds_needed: float) -> None:
    """Budgets and quotas count per calendar minute: start a test that must stay inside one early."""
    if time.time() % 60 > 60 - seconds_needed:
        time.sleep(60.5 - time.time() % 60)


def used_weight(stack) -> int:
    """The shared budget's weight this minute, as GET /api/v1/status shows it (its own ping included)."""
    return stack.web.get("/api/v1/status").json()["data"]["weight"]["usedThisMinute"]


def resting(stack, **extra) -> dict:
    price = Decimal(stack.paper.get("/api/v3/ticker/price", symbol="BTCUSDT").json()["price"])
    answer = stack.post(
        "/api/v1/order",
        {
            "symbol": "BTCUSDT",
            "side": "BUY",
            "type": "LIMIT",
            "quantity": "0.001",
            "price": str((price / 2).quantize(Decimal("0.01"))),
            **extra,
        },
    )
    assert answer.status_code == 201, answer.text
    return answer.json()["data"]


def test_one_token_cannot_spend_the_shared_budget_on_expensive_reads(stack):
    # GET /openOrders without a symbol weighs 80: CLIENT_WEIGHT_PER_MINUTE (1200) allows 15 a minute
    def spend():  # from a new viewer, inside one minute
        token = stack.web.token("viewer", sub=f"dash-{uuid.uuid4().hex[:8]}")
        answers = [stack.web.get("/api/v1/openOrders", token=token) for _ in range(16)]
        before = used_weight(stack)
        account = stack.web.get("/api/v1/account", token=token)
        return answers, account, used_weight(stack) - before

    answers, account, spent_meanwhile = in_one_minute(spend)
    assert [a.status_code for a in answers] == [200] * 15 + [429], [a.text for a in answers[-2:]]
    refused = answers[-1]
    assert refused.json()["error"]["code"] == "CLIENT_WEIGHT_LIMIT"
    assert refused.json()["error"]["details"]["limit"] == 1200
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert account.status_code == 429
    assert spent_meanwhile <= 2  # refused before anything was spent (status pings aside)
    # every other client is served as before
    other = stack.web.token("viewer", sub=f"dash-{uuid.uuid4().hex[:8]}")
    assert stack.web.get("/api/v1/openOrders", token=other).status_code == 200
    assert stack.web.get("/api/v1/account", token=other).status_code == 200


def exchange_requests(stack) -> dict[str, int]:
    """REST requests the paper exchange has served, per endpoint (counted where they arrive: no
    minute window to stay inside)."""
    return stack.paper.get("/_paper/requests").json()


def test_positions_are_read_once_for_everyone_within_the_cache_ttl(stack):
    before = exchange_requests(stack)
    first = stack.web.get("/api/v1/positions", token=stack.web.token("viewer", sub="a"))
    assert first.status_code == 200, first.text
    after_first = exchange_requests(stack)
    read = {k: n - before.get(k, 0) for k, n in after_first.items() if n != before.get(k, 0)}
    assert read.get("GET /api/v3/account") == 1 and read.get("GET /api/v3/myTrades", 0) >= 1, read
    again = stack.web.get("/api/v1/positions", token=stack.web.token("viewer", sub="b"))
    assert again.status_code == 200 and again.json()["data"] == first.json()["data"]
    after = exchange_requests(stack)
    # served from the cache: not one more account or trade read
    assert [after.get(k, 0) for k in read] == [after_first[k] for k in read]


def spend_market_share(stack) -> None:
    """Spend the budget's market-data share for real: uncached depth snapshots of 250 weight, then
    smaller reads, from as many viewer tokens as it takes (each may cause 1200 weight a minute)."""
    tokens = (stack.web.token("viewer", sub=f"md-{uuid.uuid4().hex[:8]}") for _ in itertools.count())
    token = next(tokens)
    now = int(time.time() * 1000)
    queries = itertools.chain(
        *(({"path": "/api/v1/depth", "symbol": s, "limit": limit} for s in SYMBOLS * 50) for limit in (5000, 1000)),
        (
            {"path": "/api/v1/klines", "symbol": "BTCUSDT", "interval": "1m", "limit": 1, "startTime": now - i * 60_000}
            for i in range(10_000)
        ),
    )
    for query in queries:
        answer = stack.web.get(query.pop("path"), token=token, **query)
        if answer.status_code == 429:
            code = answer.json()["error"]["code"]
            if code == "UPSTREAM_BUDGET_SPENT" and query.get("interval"):
                return  # even a 2-weight read is refused now
            if code == "CLIENT_WEIGHT_LIMIT":
                token = next(tokens)
            continue
        assert answer.status_code == 200, answer.text
    raise AssertionError("the market-data share was never spent")


def test_a_worker_finding_the_budget_spent_answers_429_with_retry_after_and_orders_still_go(stack):
    within_one_minute(25)
    order = resting(stack)
    spend_market_share(stack)
    # a signed read: the worker's reservation is refused — the same answer the web tier gives
    account = stack.web.get("/api/v1/account", token=stack.web.token("viewer", sub="late-reader"))
    assert account.status_code == 429, account.text
    assert account.json()["error"]["code"] == "UPSTREAM_BUDGET_SPENT"
    assert int(account.headers["Retry-After"]) >= 1
    # orders and cancels draw on the share kept for them
    second = resting(stack)
    assert second["status"] == "NEW"
    for placed in (order, second):
        canceled = stack.delete("/api/v1/order", symbol="BTCUSDT", orderId=placed["orderId"])
        assert canceled.status_code == 200 and canceled.json()["data"]["status"] == "CANCELED", canceled.text


# -- waiting for a worker (item 8) -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def slow(redis_url):
    """UPSTREAM_TIMEOUT=4 in the web process: a signed call waits up to 4 s for its worker (the
    kill switch 3 × 4 s)."""
    s = Stack(redis_url, web_env={"UPSTREAM_TIMEOUT": "4"})
    yield s
    s.stop()


def test_a_kill_switch_taking_longer_than_five_seconds_is_waited_for(slow):
    # every listing of open orders takes 3 s: canceling everything takes two, and a cancel
    slow.paper.admin(
        "POST", "faults", {"kind": "latency", "latency_ms": 3000, "method": "GET", "path": "/api/v3/openOrders"}
    )
    placed = [resting(slow) for _ in range(2)]
    admin = {"Authorization": f"Bearer {slow.web.token('admin')}"}
    try:
        engaged = slow.web.http.post(
            slow.web.url + "/api/v1/admin/kill-switch", json={"engaged": True}, headers=admin, timeout=60
        )
    finally:
        slow.paper.admin("DELETE", "faults")
        slow.web.http.post(
            slow.web.url + "/api/v1/admin/kill-switch", json={"engaged": False}, headers=admin, timeout=30
        )
    assert engaged.status_code == 200, engaged.text  # not 503 REDIS_UNAVAILABLE at 5 s
    assert {o["orderId"] for o in engaged.json()["data"]["canceled"]} == {o["orderId"] for o in placed}


def test_a_cancel_nobody_answered_is_504_outcome_unknown_and_never_runs_later(slow):
    order = resting(slow)
    slow.worker.stop()
    try:
        answer = slow.delete("/api/v1/order", symbol="BTCUSDT", orderId=order["orderId"])
        assert answer.status_code == 504, answer.text
        error = answer.json()["error"]
        assert error["code"] == "OUTCOME_UNKNOWN" and error["details"]["outcome"] == "unknown"
        assert error["details"]["lookUp"] == f"/api/v1/order?symbol=BTCUSDT&orderId={order['orderId']}"
        assert answer.json()["requestId"] == answer.headers["X-Request-ID"]
        read = slow.web.get("/api/v1/account")
        assert read.status_code == 504 and read.json()["error"]["code"] == "WORKER_TIMEOUT", read.text
    finally:
        slow.restart_worker()
    # the worker takes the cancel up now, after its requester gave up: it must not run it
    wait_until(
        lambda: "orders.cancel: not run" in slow.worker.log_text(),
        30,
        "the worker refusing the late cancel",
        interval=0.1,
        detail=lambda: slow.worker.log_text()[-2000:],
    )
    state = slow.web.get("/api/v1/order", symbol="BTCUSDT", orderId=order["orderId"])
    assert state.status_code == 200 and state.json()["data"]["status"] == "NEW", state.text
    # and looked up, then canceled again, it is canceled once
    again = slow.delete("/api/v1/order", symbol="BTCUSDT", orderId=order["orderId"])
    assert again.status_code == 200 and again.json()["data"]["status"] == "CANCELED", again.text
