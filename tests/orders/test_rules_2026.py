"""Binance's 2026 rules through the gateway (web → Redis → worker → paper exchange): successful orders
and cancels take nothing from the shared weight budget while failed ones are counted, an expired
order says why, and a CANCEL_ONLY symbol refuses new orders before Binance is called."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from .conftest import Stack


def budget_used(stack) -> int:
    """The shared budget's count this minute, as an operator reads it (it pings Binance: weight 1)."""
    return stack.web.get("/api/v1/status", role="admin").json()["data"]["weight"]["usedThisMinute"]


def far_below(stack) -> str:
    bid = Decimal(stack.paper.get("/api/v3/ticker/bookTicker", symbol="BTCUSDT").json()["bidPrice"])
    return str((bid * Decimal("0.5")).quantize(Decimal("0.01")))


def round_trip(stack, price: str) -> None:
    placed = stack.post(
        "/api/v1/order", {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.001", "price": price}
    )
    assert placed.status_code == 201, placed.text
    canceled = stack.delete("/api/v1/order", symbol="BTCUSDT", orderId=placed.json()["data"]["orderId"])
    assert canceled.status_code == 200


@pytest.fixture
def one_worker_stack(redis_url):
    """One worker process: its first calls (exchangeInfo, server time) can be made before measuring."""
    s = Stack(redis_url, concurrency=1)
    yield s
    s.stop()


def test_successful_orders_and_cancels_cost_no_budget_failed_ones_do(one_worker_stack):
    stack = one_worker_stack
    price = far_below(stack)
    round_trip(stack, price)  # first calls fetch exchangeInfo (web and worker): weight that is not the orders'
    for _ in range(2):  # again if a new weight minute began in between (the counters restart then)
        minute = time.time() // 60
        before = budget_used(stack)
        round_trip(stack, price)
        after_success = budget_used(stack)
        refused = stack.post(
            "/api/v1/order", {"symbol": "BTCUSDT", "side": "SELL", "type": "LIMIT", "quantity": "5", "price": "100000"}
        )
        assert refused.status_code == 400 and refused.json()["error"]["details"]["binanceCode"] == -2010
        unknown = stack.delete("/api/v1/order", symbol="BTCUSDT", orderId=987654321)
        assert unknown.status_code in (400, 404), unknown.text
        after_failures = budget_used(stack)
        if time.time() // 60 == minute:
            break
    # the status call's own ping (1), nothing for the order and its cancel
    assert after_success == before + 1
    # the refused order (1), the failed cancel (1) and its look-up by client id (GET order, 4), the ping (1)
    assert after_failures == after_success + 7


def test_an_expired_order_passes_its_expiry_reason_through(stack):
    ask = Decimal(stack.paper.get("/api/v3/ticker/bookTicker", symbol="BTCUSDT").json()["askPrice"])
    answer = stack.post(
        "/api/v1/order",
        {
            "symbol": "BTCUSDT",
            "side": "SELL",
            "type": "LIMIT",
            "timeInForce": "IOC",
            "quantity": "0.001",
            "price": str(ask * 2),
        },
    )
    assert answer.status_code == 201, answer.text
    order = answer.json()["data"]
    assert (order["status"], order["expiryReason"]) == ("EXPIRED", "UNFILLED_IOC_QUANTITY_EXPIRED")
    queried = stack.web.get("/api/v1/order", symbol="BTCUSDT", orderId=order["orderId"]).json()["data"]
    assert queried["expiryReason"] == "UNFILLED_IOC_QUANTITY_EXPIRED"


@pytest.fixture
def quiet_stack(redis_url):
    s = Stack(redis_url)
    yield s
    s.stop()


def test_a_cancel_only_symbol_refuses_new_orders_before_binance_and_allows_cancels(quiet_stack):
    stack = quiet_stack
    resting = stack.paper.signed(
        "POST",
        "/api/v3/order",
        symbol="ETHUSDT",
        side="BUY",
        type="LIMIT",
        timeInForce="GTC",
        quantity="0.01",
        price="1000.00",
    ).json()
    stack.paper.admin("POST", "symbols", {"symbol": "ETHUSDT", "status": "CANCEL_ONLY"})
    sent_before = len(stack.paper.admin("GET", "orders?symbol=ETHUSDT").json())

    refused = stack.post(
        "/api/v1/order", {"symbol": "ETHUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.01", "price": "1000"}
    )
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert "CANCEL_ONLY" in error["message"] and error["details"]["field"] == "symbol", error
    assert len(stack.paper.admin("GET", "orders?symbol=ETHUSDT").json()) == sent_before  # Binance never called

    canceled = stack.delete("/api/v1/order", symbol="ETHUSDT", orderId=resting["orderId"])
    assert canceled.status_code == 200 and canceled.json()["data"]["status"] == "CANCELED"
    listed = stack.web.get("/api/v1/symbols", status="CANCEL_ONLY").json()["data"]
    assert [s["symbol"] for s in listed] == ["ETHUSDT"]
