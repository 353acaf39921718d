"""Seed scenarios of queued order automation, through web → Redis → Celery worker → paper exchange."""

from __future__ import annotations

import time
from decimal import Decimal

from tests.support import wait_job


def best(stack, symbol="BTCUSDT"):
    book = stack.paper.get("/api/v3/depth", symbol=symbol, limit=5).json()
    return Decimal(book["bids"][0][0]), Decimal(book["asks"][0][0])


def balances(stack) -> dict[str, tuple[Decimal, Decimal]]:
    data = stack.web.get("/api/v1/account").json()["data"]
    return {b["asset"]: (Decimal(b["free"]), Decimal(b["locked"])) for b in data["balances"]}


def test_limit_order_is_new_with_an_order_id_then_cancel(stack):
    bid, _ = best(stack)
    price = (bid * Decimal("0.9")).quantize(Decimal("0.01"))
    answer = stack.post(
        "/api/v1/order", {"symbol": "btcusdt", "side": "BUY", "type": "LIMIT", "quantity": "0.001", "price": str(price)}
    )
    assert answer.status_code == 201, answer.text
    order = answer.json()["data"]
    assert order["status"] == "NEW" and order["orderId"] > 0 and order["clientOrderId"].startswith("sg-")
    assert answer.headers["Location"] == f"/api/v1/jobs/{order['jobId']}"

    job = stack.web.get(f"/api/v1/jobs/{order['jobId']}").json()["data"]
    assert job["status"] == "succeeded" and job["order"]["orderId"] == order["orderId"]
    state = stack.web.get("/api/v1/order", symbol="BTCUSDT", orderId=order["orderId"]).json()["data"]
    assert state["status"] == "NEW"
    open_orders = stack.web.get("/api/v1/openOrders", symbol="BTCUSDT").json()["data"]
    assert order["orderId"] in [o["orderId"] for o in open_orders]

    canceled = stack.delete("/api/v1/order", symbol="BTCUSDT", orderId=order["orderId"])
    assert canceled.status_code == 200 and canceled.json()["data"]["status"] == "CANCELED"
    by_client_id = stack.web.get("/api/v1/order", symbol="BTCUSDT", clientOrderId=order["clientOrderId"])
    assert by_client_id.json()["data"]["status"] == "CANCELED"
    again = stack.delete("/api/v1/order", symbol="BTCUSDT", orderId=order["orderId"])
    assert again.status_code == 200 and again.json()["data"]["status"] == "CANCELED"  # idempotent


def test_insufficient_balance_is_a_400_and_changes_nothing(stack):
    before = balances(stack)
    answer = stack.post(
        "/api/v1/order", {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "50", "price": "60000"}
    )
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["message"] == "Insufficient balance" and error["details"]["binanceCode"] == -2010
    assert balances(stack) == before


def test_market_fill_moves_balances(stack):
    before = balances(stack)
    answer = stack.post("/api/v1/order", {"symbol": "ETHUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.05"})
    assert answer.status_code == 201, answer.text
    order = answer.json()["data"]
    assert order["status"] == "FILLED"
    after = balances(stack)
    spent = Decimal(order["cummulativeQuoteQty"])
    commission = sum(Decimal(f["commission"]) for f in order["fills"])
    assert after["USDT"][0] == before["USDT"][0] - spent
    assert after["ETH"][0] == before["ETH"][0] + Decimal("0.05") - commission
    trades = stack.web.get("/api/v1/myTrades", symbol="ETHUSDT").json()["data"]
    assert sum(Decimal(t["qty"]) for t in trades if t["orderId"] == order["orderId"]) == Decimal("0.05")
    history = stack.web.get("/api/v1/allOrders", symbol="ETHUSDT").json()["data"]
    assert order["orderId"] in [o["orderId"] for o in history]


def test_filters_are_checked_before_queueing(stack):
    cases = [
        ({"quantity": "0.001", "price": "60000.001"}, "price", "PRICE_FILTER"),
        ({"quantity": "0.0000001", "price": "60000"}, "quantity", "LOT_SIZE"),
        ({"quantity": "0.00001", "price": "60000"}, "quantity", "NOTIONAL"),
    ]
    for extra, field, rule in cases:
        answer = stack.post("/api/v1/order", {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", **extra})
        assert answer.status_code == 400, answer.text
        details = answer.json()["error"]["details"]
        assert details["field"] == field and details["rule"] in (rule, "MIN_NOTIONAL")
    bad = stack.post("/api/v1/order", {"symbol": "BTCUSDT", "side": "HOLD", "type": "LIMIT"})
    assert bad.status_code == 400 and bad.json()["error"]["details"]["field"] == "side"
    viewer = stack.post(
        "/api/v1/order", {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.001"}, role="viewer"
    )
    assert viewer.status_code == 403


def test_async_mode_answers_202_and_the_job_finishes(stack):
    answer = stack.post(
        "/api/v1/order",
        {"symbol": "BNBUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.1"},
        headers={"Prefer": "respond-async"},
    )
    assert answer.status_code == 202
    job = answer.json()["data"]
    assert job["status"] in ("queued", "running", "succeeded")
    assert answer.headers["Location"] == f"/api/v1/jobs/{job['id']}"
    job = wait_job(stack.web, job["id"], 15, role="viewer")
    assert job["status"] == "succeeded" and job["order"]["status"] == "FILLED"


def test_repeated_idempotency_key_places_one_order(stack):
    key = f"idem-{time.time_ns()}"
    body = {"symbol": "BNBUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.02"}
    first = stack.post("/api/v1/order", body, headers={"Idempotency-Key": key})
    second = stack.post("/api/v1/order", body, headers={"Idempotency-Key": key})
    assert first.status_code == second.status_code == 201
    assert first.json()["data"]["orderId"] == second.json()["data"]["orderId"]
    client_id = first.json()["data"]["clientOrderId"]
    assert len(stack.paper.admin("GET", f"orders?clientOrderId={client_id}").json()) == 1


def test_execute_at_schedules_the_order(stack):
    at = int(time.time() * 1000) + 2000
    answer = stack.post(
        "/api/v1/order", {"symbol": "BNBUSDT", "side": "SELL", "type": "MARKET", "quantity": "0.02", "executeAt": at}
    )
    assert answer.status_code == 202 and answer.json()["data"]["status"] == "queued"
    assert answer.headers["Location"] == f"/api/v1/jobs/{answer.json()['data']['id']}"
    job = wait_job(stack.web, answer.json()["data"]["id"], 20, role="viewer")
    assert job["status"] == "succeeded"
    assert job["order"]["transactTime"] >= at
