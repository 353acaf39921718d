"""Risk limits and the kill switch, through web → Redis → Celery worker → paper exchange."""

from __future__ import annotations

import time
import uuid
from decimal import Decimal

import pytest

from tests import support
from tests.processes import WebProcess

NO_LIMITS = {"maxOrderNotional": None, "allowedSymbols": None, "maxOpenOrders": None, "maxOrdersPerMinute": None}


def admin(stack, method: str, path: str, body=None, role: str = "admin"):
    return stack.web.http.request(
        method,
        stack.web.url + path,
        json=body,
        timeout=30,
        headers={"Authorization": f"Bearer {stack.web.token(role)}"},
    )


def resting(stack, symbol: str, quantity: str = "0.001", token: str | None = None, **extra):
    """A LIMIT BUY 10 % under the best bid: it rests on the book."""
    book = stack.paper.get("/api/v3/depth", symbol=symbol, limit=5).json()
    price = (Decimal(book["bids"][0][0]) * Decimal("0.9")).quantize(Decimal("0.01"))
    body = {"symbol": symbol, "side": "BUY", "type": "LIMIT", "quantity": quantity, "price": str(price), **extra}
    if token is None:
        return stack.post("/api/v1/order", body)
    return stack.web.http.post(
        stack.web.url + "/api/v1/order",
        json=body,
        timeout=30,
        headers={"Authorization": f"Bearer {token}", "Prefer": "respond-async"},
    )


def exchange_open_orders(stack) -> list[dict]:
    return stack.paper.signed("GET", "/api/v3/openOrders").json()


def error_code(answer) -> str:
    return answer.json()["error"]["code"]


@pytest.fixture(autouse=True)
def reset_risk(stack):
    """Whatever a test does, the stack goes back to no limits, trading allowed and nothing open."""
    yield
    assert admin(stack, "POST", "/api/v1/admin/kill-switch", {"engaged": False}).status_code == 200
    assert admin(stack, "PUT", "/api/v1/risk/limits", {}).status_code == 200
    for symbol in {o["symbol"] for o in exchange_open_orders(stack)}:
        stack.paper.signed("DELETE", "/api/v3/openOrders", symbol=symbol)


def test_limits_round_trip_and_bad_input_names_the_field(stack):
    assert admin(stack, "GET", "/api/v1/risk/limits").json()["data"] == NO_LIMITS
    wanted = {
        "maxOrderNotional": "1000.5",
        "allowedSymbols": ["ethusdt", "BTCUSDT"],
        "maxOpenOrders": 5,
        "maxOrdersPerMinute": 30,
    }
    put = admin(stack, "PUT", "/api/v1/risk/limits", wanted)
    assert put.status_code == 200, put.text
    stored = {**wanted, "allowedSymbols": ["BTCUSDT", "ETHUSDT"]}
    assert put.json()["data"] == stored
    assert admin(stack, "GET", "/api/v1/risk/limits").json()["data"] == stored

    for body, field in [
        ({"maxOrderNotional": "-1"}, "maxOrderNotional"),
        ({"maxOrderNotional": "lots"}, "maxOrderNotional"),
        ({"allowedSymbols": ["NOPEUSDT"]}, "allowedSymbols"),
        ({"allowedSymbols": "BTCUSDT"}, "allowedSymbols"),
        ({"maxOpenOrders": 0}, "maxOpenOrders"),
        ({"maxOrdersPerMinute": "10"}, "maxOrdersPerMinute"),
        ({"maxOrders": 3}, "maxOrders"),
    ]:
        answer = admin(stack, "PUT", "/api/v1/risk/limits", body)
        assert answer.status_code == 400, (body, answer.text)
        assert answer.json()["error"]["details"]["field"] == field
    assert admin(stack, "GET", "/api/v1/risk/limits").json()["data"] == stored  # a bad PUT changes nothing

    cleared = admin(stack, "PUT", "/api/v1/risk/limits", {"maxOpenOrders": 3, "allowedSymbols": None})
    assert cleared.json()["data"] == {**NO_LIMITS, "maxOpenOrders": 3}  # PUT replaces all four


def test_risk_and_kill_switch_routes_are_admin_only(stack):
    calls = [
        ("GET", "/api/v1/risk/limits", None),
        ("PUT", "/api/v1/risk/limits", {"maxOpenOrders": 1}),
        ("GET", "/api/v1/admin/kill-switch", None),
        ("POST", "/api/v1/admin/kill-switch", {"engaged": True}),
    ]
    for role in ("viewer", "trader"):
        for method, path, body in calls:
            answer = admin(stack, method, path, body, role=role)
            assert answer.status_code == 403 and error_code(answer) == "ROLE_REQUIRED", (role, method, path)
    anonymous = stack.web.http.get(stack.web.url + "/api/v1/admin/kill-switch", timeout=10)
    assert anonymous.status_code == 401
    assert admin(stack, "GET", "/api/v1/admin/kill-switch").json()["data"]["engaged"] is False
    assert admin(stack, "GET", "/api/v1/risk/limits").json()["data"] == NO_LIMITS


def test_symbol_and_notional_limits_refuse_before_queueing(stack):
    limits = {"maxOrderNotional": "50", "allowedSymbols": ["ETHUSDT"]}
    assert admin(stack, "PUT", "/api/v1/risk/limits", limits).status_code == 200

    other = resting(stack, "BTCUSDT")
    assert other.status_code == 400 and error_code(other) == "RISK_SYMBOL_NOT_ALLOWED"
    assert other.json()["error"]["details"]["field"] == "symbol"

    big = resting(stack, "ETHUSDT", quantity="0.05")  # ~140 USDT
    assert big.status_code == 400 and error_code(big) == "RISK_MAX_NOTIONAL"
    details = big.json()["error"]["details"]
    assert details["limit"] == "50" and Decimal(details["notional"]) > 50
    market = stack.post("/api/v1/order", {"symbol": "ETHUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.05"})
    assert market.status_code == 400 and error_code(market) == "RISK_MAX_NOTIONAL"  # valued at the last price
    assert exchange_open_orders(stack) == []

    small = resting(stack, "ETHUSDT", quantity="0.01")  # ~28 USDT
    assert small.status_code == 201 and small.json()["data"]["status"] == "NEW", small.text


def test_order_rate_per_token_is_429_with_retry_after(stack):
    assert admin(stack, "PUT", "/api/v1/risk/limits", {"maxOrdersPerMinute": 2}).status_code == 200
    # 50 BTC is more than the account holds: queued (202), then rejected by the exchange
    big = {"quantity": "50"}

    def three_orders():  # from a new token subject, inside one minute (the limit counts per minute)
        bot = stack.web.token("trader", sub=f"bot-{uuid.uuid4().hex[:8]}")
        return [resting(stack, "BTCUSDT", token=bot, **big) for _ in range(3)]

    *first_two, third = support.in_one_minute(three_orders)
    assert [answer.status_code for answer in first_two] == [202, 202]
    assert third.status_code == 429 and error_code(third) == "RISK_ORDER_RATE", third.text
    assert 1 <= int(third.headers["Retry-After"]) <= 60
    assert third.json()["error"]["details"]["limit"] == 2
    another = stack.web.token("trader", sub=f"bot-{uuid.uuid4().hex[:8]}")
    assert resting(stack, "BTCUSDT", token=another, **big).status_code == 202  # the limit is per token subject


def test_max_open_orders_fails_the_job_in_the_worker(stack):
    assert exchange_open_orders(stack) == []
    assert admin(stack, "PUT", "/api/v1/risk/limits", {"maxOpenOrders": 1}).status_code == 200
    first = resting(stack, "BTCUSDT")
    assert first.status_code == 201, first.text
    second = resting(stack, "ETHUSDT", quantity="0.01")
    assert second.status_code == 400 and error_code(second) == "RISK_MAX_OPEN_ORDERS", second.text
    job_id = second.json()["error"]["details"]["jobId"]
    job = stack.web.get(f"/api/v1/jobs/{job_id}", role="trader").json()["data"]
    assert job["status"] == "failed" and job["error"]["code"] == "RISK_MAX_OPEN_ORDERS"
    assert [o["orderId"] for o in exchange_open_orders(stack)] == [first.json()["data"]["orderId"]]


def test_kill_switch_cancels_everything_halts_orders_and_survives_a_web_restart(stack):
    assert admin(stack, "GET", "/api/v1/admin/kill-switch").json()["data"]["engaged"] is False
    placed = [resting(stack, "BTCUSDT"), resting(stack, "BTCUSDT"), resting(stack, "ETHUSDT", quantity="0.01")]
    assert [p.status_code for p in placed] == [201, 201, 201]
    ids = {p.json()["data"]["orderId"] for p in placed}
    assert {o["orderId"] for o in exchange_open_orders(stack)} == ids

    engaged = admin(stack, "POST", "/api/v1/admin/kill-switch", {"engaged": True, "reason": "drill"})
    assert engaged.status_code == 200, engaged.text
    state = engaged.json()["data"]
    assert state["engaged"] is True and state["reason"] == "drill" and state["by"] == "tester"
    assert {o["orderId"] for o in state["canceled"]} == ids
    assert {o["status"] for o in state["canceled"]} == {"CANCELED"}
    assert exchange_open_orders(stack) == []
    on_exchange = {o["orderId"]: o["status"] for o in stack.paper.admin("GET", "orders").json()}
    assert all(on_exchange[i] == "CANCELED" for i in ids)

    refused = resting(stack, "ETHUSDT", quantity="0.01")
    assert refused.status_code == 403 and error_code(refused) == "KILL_SWITCH_ENGAGED"

    old, stack.web = stack.web, WebProcess(stack.paper.url, stack.redis_url, stack.prefix)
    old.stop()
    assert admin(stack, "GET", "/api/v1/admin/kill-switch").json()["data"]["engaged"] is True
    refused = resting(stack, "BTCUSDT")
    assert refused.status_code == 403 and error_code(refused) == "KILL_SWITCH_ENGAGED"

    released = admin(stack, "POST", "/api/v1/admin/kill-switch", {"engaged": False})
    assert released.status_code == 200
    assert released.json()["data"]["engaged"] is False and released.json()["data"]["canceled"] == []
    again = resting(stack, "BTCUSDT")
    assert again.status_code == 201 and again.json()["data"]["status"] == "NEW", again.text


def test_worker_refuses_a_queued_order_once_the_kill_switch_is_engaged(stack):
    # A scheduled order passes the web tier's checks now and reaches the worker later.
    execute_at = int(time.time() * 1000) + 3000
    queued = resting(stack, "BTCUSDT", executeAt=execute_at)
    assert queued.status_code == 202, queued.text
    job_id = queued.json()["data"]["id"]
    assert admin(stack, "POST", "/api/v1/admin/kill-switch", {"engaged": True}).status_code == 200

    job = wait_job(stack, job_id)
    assert job["status"] == "failed" and job["error"]["code"] == "KILL_SWITCH_ENGAGED"
    assert stack.paper.admin("GET", f"orders?clientOrderId={job['clientOrderId']}").json() == []


def test_bad_kill_switch_bodies_are_400(stack):
    for body, field in [({}, "engaged"), ({"engaged": "yes"}, "engaged"), ({"engaged": True, "reason": 5}, "reason")]:
        answer = admin(stack, "POST", "/api/v1/admin/kill-switch", body)
        assert answer.status_code == 400 and answer.json()["error"]["details"]["field"] == field
    assert admin(stack, "GET", "/api/v1/admin/kill-switch").json()["data"]["engaged"] is False


# -- valuation (issue 10, item 3) ----------------------------------------------------------------------


def last_price(stack, symbol: str) -> Decimal:
    return Decimal(stack.paper.get("/api/v3/ticker/price", symbol=symbol).json()["price"])


def test_a_limit_sell_far_below_the_market_is_valued_at_the_market(stack):
    assert admin(stack, "PUT", "/api/v1/risk/limits", {"maxOrderNotional": "100"}).status_code == 200
    market = last_price(stack, "ETHUSDT")
    # 0.05 ETH at a limit of 200 USDT is "worth 10 USDT" at its own price, but it sells at the bids
    dumped = stack.post(
        "/api/v1/order", {"symbol": "ETHUSDT", "side": "SELL", "type": "LIMIT", "quantity": "0.05", "price": "200"}
    )
    assert dumped.status_code == 400 and error_code(dumped) == "RISK_MAX_NOTIONAL", dumped.text
    notional = Decimal(dumped.json()["error"]["details"]["notional"])
    assert notional > 100 and abs(notional - Decimal("0.05") * market) < market * Decimal("0.0025")
    # a BUY far above the market is valued at its own (worse) limit price
    bid = stack.post(
        "/api/v1/order",
        {
            "symbol": "ETHUSDT",
            "side": "BUY",
            "type": "LIMIT",
            "quantity": "0.01",
            "price": str((market * 4).quantize(Decimal("0.01"))),
        },
    )
    assert bid.status_code == 400 and error_code(bid) == "RISK_MAX_NOTIONAL", bid.text
    assert Decimal(bid.json()["error"]["details"]["notional"]) == Decimal("0.01") * (market * 4).quantize(
        Decimal("0.01")
    )
    assert exchange_open_orders(stack) == []


def test_limits_are_in_usdt_whatever_the_quote_asset(stack):
    assert admin(stack, "PUT", "/api/v1/risk/limits", {"maxOrderNotional": "1000"}).status_code == 200
    eth_btc, btc_usdt = last_price(stack, "ETHBTC"), last_price(stack, "BTCUSDT")
    price = str((eth_btc * Decimal("0.9")).quantize(Decimal("0.00001")))
    # 1 ETH for ~0.05 BTC: "0.05" in its own quote asset, ~3,000 USDT
    big = stack.post(
        "/api/v1/order", {"symbol": "ETHBTC", "side": "BUY", "type": "LIMIT", "quantity": "1", "price": price}
    )
    assert big.status_code == 400 and error_code(big) == "RISK_MAX_NOTIONAL", big.text
    details = big.json()["error"]["details"]
    assert details["currency"] == "USDT" and details["limit"] == "1000"
    value = Decimal(details["notional"])
    assert abs(value - eth_btc * btc_usdt) < eth_btc * btc_usdt * Decimal("0.01")  # the reference, in USDT
    small = stack.post(
        "/api/v1/order", {"symbol": "ETHBTC", "side": "BUY", "type": "LIMIT", "quantity": "0.1", "price": price}
    )
    assert small.status_code == 201 and small.json()["data"]["status"] == "NEW", small.text


# -- the worker's check at send time (issue 10, item 4) ------------------------------------------------


def wait_job(stack, job_id: str, timeout: float = 20, token: str | None = None) -> dict:
    return support.wait_job(stack.web, job_id, timeout, token)


def scheduled(stack, body: dict, delay_ms: int = 2500) -> dict:
    answer = stack.post("/api/v1/order", {**body, "executeAt": int(time.time() * 1000) + delay_ms})
    assert answer.status_code == 202, answer.text
    return answer.json()["data"]


def test_a_scheduled_order_meets_the_limits_as_they_are_when_it_is_sent(stack):
    symbol_job = scheduled(stack, {"symbol": "BNBUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.02"})
    size_job = scheduled(stack, {"symbol": "ETHUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.01"})
    # after queueing: BNBUSDT is no longer allowed, and ~30 USDT is over the notional cap
    limits = {"allowedSymbols": ["ETHUSDT", "BTCUSDT"], "maxOrderNotional": "10"}
    assert admin(stack, "PUT", "/api/v1/risk/limits", limits).status_code == 200

    refused = wait_job(stack, symbol_job["id"])
    assert refused["status"] == "failed" and refused["error"]["code"] == "RISK_SYMBOL_NOT_ALLOWED", refused
    assert refused["error"]["httpStatus"] == 400  # what the web tier answers for the same order
    too_big = wait_job(stack, size_job["id"])
    assert too_big["status"] == "failed" and too_big["error"]["code"] == "RISK_MAX_NOTIONAL", too_big
    assert too_big["error"]["details"]["currency"] == "USDT"
    for job in (refused, too_big):
        assert stack.paper.admin("GET", f"orders?clientOrderId={job['clientOrderId']}").json() == []


def test_a_scheduled_order_is_valued_at_the_price_when_it_is_sent(stack):
    start = last_price(stack, "BNBUSDT")
    assert admin(stack, "PUT", "/api/v1/risk/limits", {"maxOrderNotional": "100"}).status_code == 200
    job = scheduled(stack, {"symbol": "BNBUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.1"}, 3000)  # ~60
    try:
        stack.paper.admin("POST", "market", {"symbol": "BNBUSDT", "price": str(start * 3)})
        # a trade at the new quotes makes it the last price
        assert (
            stack.paper.signed(
                "POST", "/api/v3/order", symbol="BNBUSDT", side="BUY", type="MARKET", quantity="0.01"
            ).status_code
            == 200
        )
        assert last_price(stack, "BNBUSDT") > start * 2
        final = wait_job(stack, job["id"])
        assert final["status"] == "failed" and final["error"]["code"] == "RISK_MAX_NOTIONAL", final
        assert Decimal(final["error"]["details"]["notional"]) > 150
        assert stack.paper.admin("GET", f"orders?clientOrderId={final['clientOrderId']}").json() == []
    finally:
        stack.paper.admin("POST", "market", {"symbol": "BNBUSDT", "price": str(start)})
        stack.paper.signed("POST", "/api/v3/order", symbol="BNBUSDT", side="SELL", type="MARKET", quantity="0.01")


def test_max_open_orders_holds_across_workers_sending_at_once(stack):
    assert exchange_open_orders(stack) == []
    assert admin(stack, "PUT", "/api/v1/risk/limits", {"maxOpenOrders": 1}).status_code == 200
    # a slow count: every worker is counting open orders before any of them sends
    stack.paper.admin(
        "POST", "faults", {"kind": "latency", "latency_ms": 700, "method": "GET", "path": "/api/v3/openOrders"}
    )
    try:
        bot = stack.web.token("trader", sub=f"bot-{uuid.uuid4().hex[:8]}")
        queued = [resting(stack, "BTCUSDT", token=bot) for _ in range(4)]
        assert [q.status_code for q in queued] == [202] * 4, [q.text for q in queued]
        jobs = [wait_job(stack, q.json()["data"]["id"], token=bot) for q in queued]
    finally:
        stack.paper.admin("DELETE", "faults")
    assert sorted(j["status"] for j in jobs) == ["failed", "failed", "failed", "succeeded"], jobs
    assert {j["error"]["code"] for j in jobs if j["status"] == "failed"} == {"RISK_MAX_OPEN_ORDERS"}
    placed = [j["order"]["orderId"] for j in jobs if j["status"] == "succeeded"]
    assert [o["orderId"] for o in exchange_open_orders(stack)] == placed
