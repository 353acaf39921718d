"""Idempotency-Keys and client order ids through web → Redis → Celery worker → paper exchange: a request
retried (or sent twice at once) makes one order and gets the same answer; a client order id names one
order only; key parts chosen by clients cannot collide. The paper exchange's own order list is the judge."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from itertools import repeat

import requests

from tests.processes import WebProcess
from tests.support import wait_job


def orders_on_exchange(stack, **filters) -> list[dict]:
    query = "&".join(f"{k}={v}" for k, v in filters.items())
    return stack.paper.admin("GET", f"orders?{query}" if query else "orders").json()


def resting(stack, side: str = "BUY", symbol: str = "BTCUSDT") -> dict:
    """A LIMIT that rests (half or double the last price)."""
    price = Decimal(stack.paper.get("/api/v3/ticker/price", symbol=symbol).json()["price"])
    factor = Decimal("0.5") if side == "BUY" else Decimal("2")
    return {
        "symbol": symbol,
        "side": side,
        "type": "LIMIT",
        "quantity": "0.001",
        "price": str((price * factor).quantize(Decimal("0.01"))),
    }


def wait_final(stack, job_id: str, token: str | None = None) -> dict:
    return wait_job(stack.web, job_id, token=token)


def post(stack, body: dict, token: str, **headers) -> requests.Response:
    return requests.post(
        stack.web.url + "/api/v1/order", json=body, timeout=30, headers={"Authorization": f"Bearer {token}", **headers}
    )


def test_twenty_concurrent_requests_with_one_key_make_one_order(stack):
    """Rounds of 20 simultaneous requests with one key, spread over three web processes (as with
    WEB_CONCURRENCY=3): each round makes one job and one order. The race this closes — a second
    request seeing the key claimed but no job yet, and queueing its own — needs two requests to
    interleave between the first one's claim and its write, so several rounds give it its chances."""
    extra = [WebProcess(stack.paper.url, stack.redis_url, stack.prefix) for _ in range(2)]
    webs = [stack.web, *extra]
    token = stack.web.token("trader", sub=f"bot-{uuid.uuid4().hex[:8]}")
    body = {"symbol": "BNBUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.01"}
    sessions = [requests.Session() for _ in range(20)]

    def send(i: int, key: str) -> requests.Response:
        return sessions[i].post(
            webs[i % len(webs)].url + "/api/v1/order",
            json=body,
            timeout=30,
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key, "Prefer": "respond-async"},
        )

    try:
        with ThreadPoolExecutor(20) as pool:
            for _ in range(15):
                key = f"race-{uuid.uuid4().hex}"
                before = len(orders_on_exchange(stack, symbol="BNBUSDT"))
                answers = list(pool.map(send, range(20), repeat(key)))
                assert {a.status_code for a in answers} == {202}, [a.text for a in answers if a.status_code != 202]
                job_ids = {a.json()["data"]["id"] for a in answers}
                assert len(job_ids) == 1, f"{len(job_ids)} jobs for one Idempotency-Key"
                job = wait_final(stack, job_ids.pop(), token)
                assert job["status"] == "succeeded", job
                placed = orders_on_exchange(stack, symbol="BNBUSDT")
                assert len(placed) == before + 1, f"{len(placed) - before} orders for one Idempotency-Key"
                assert [o["clientOrderId"] for o in placed].count(job["clientOrderId"]) == 1
                assert sum(a.headers.get("Idempotent-Replayed") == "true" for a in answers) == 19
    finally:
        for session in sessions:
            session.close()
        for web in extra:
            web.stop()


def test_a_retried_async_request_gets_the_same_shape_with_the_order_inside(stack):
    token = stack.web.token("trader", sub=f"bot-{uuid.uuid4().hex[:8]}")
    key = f"retry-{uuid.uuid4().hex}"
    body = {"symbol": "BNBUSDT", "side": "SELL", "type": "MARKET", "quantity": "0.01"}
    first = post(stack, body, token, **{"Idempotency-Key": key, "Prefer": "respond-async"})
    assert first.status_code == 202, first.text
    job = wait_final(stack, first.json()["data"]["id"], token)
    assert job["status"] == "succeeded"

    again = post(stack, body, token, **{"Idempotency-Key": key, "Prefer": "respond-async"})
    assert again.status_code == 202, again.text  # not 201 + the bare order
    assert set(again.json()["data"]) == set(first.json()["data"])  # the same shape: a job
    retried = again.json()["data"]
    assert retried["id"] == first.json()["data"]["id"] and retried["status"] == "succeeded"
    assert retried["order"]["orderId"] == job["order"]["orderId"]  # the order inside, once known
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert len(orders_on_exchange(stack, clientOrderId=job["clientOrderId"])) == 1

    # a retry is never an excuse for a body no first request could have sent: its shape is checked
    # (the symbol's filters are not: they may have changed since, and the job stands)
    for bad in ({**body, "clientOrderId": ""}, {**body, "quantity": " 0.01"}, {**body, "note": 1}):
        refused = post(stack, bad, token, **{"Idempotency-Key": key, "Prefer": "respond-async"})
        assert refused.status_code == 400 and refused.json()["error"]["code"] == "INVALID_PARAMETER", refused.text


def test_key_parts_with_colons_do_not_collide(stack):
    # (subject "bot", key "1:k") and (subject "bot:1", key "k") once made the same Redis key
    run = uuid.uuid4().hex[:8]
    first_token = stack.web.token("trader", sub=f"{run}")
    second_token = stack.web.token("trader", sub=f"{run}:1")
    body = resting(stack)
    first = post(stack, body, first_token, **{"Idempotency-Key": "1:k", "Prefer": "respond-async"})
    second = post(stack, body, second_token, **{"Idempotency-Key": "k", "Prefer": "respond-async"})
    assert first.status_code == second.status_code == 202
    assert first.json()["data"]["id"] != second.json()["data"]["id"]  # two requests of two clients: two jobs
    assert "Idempotent-Replayed" not in second.headers
    jobs = [wait_final(stack, a.json()["data"]["id"], t) for a, t in ((first, first_token), (second, second_token))]
    assert [j["status"] for j in jobs] == ["succeeded", "succeeded"]
    # and neither client can read the other's job
    peek = stack.web.get(f"/api/v1/jobs/{jobs[0]['id']}", token=second_token)
    assert peek.status_code == 404
    for job in jobs:
        stack.delete("/api/v1/order", symbol="BTCUSDT", orderId=job["order"]["orderId"])


def test_a_client_order_id_in_use_is_refused_and_names_one_order(stack):
    client_id = f"mine-{uuid.uuid4().hex[:12]}"
    token = stack.web.token("trader", sub=f"bot-{uuid.uuid4().hex[:8]}")
    first = post(
        stack,
        {"symbol": "BNBUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.01", "clientOrderId": client_id},
        token,
    )
    assert first.status_code == 201, first.text
    # filled, so the exchange itself would take the id again: the gateway must not
    second = post(
        stack,
        {"symbol": "BNBUSDT", "side": "SELL", "type": "MARKET", "quantity": "0.01", "clientOrderId": client_id},
        token,
    )
    assert second.status_code == 409, second.text
    error = second.json()["error"]
    assert error["code"] == "CLIENT_ORDER_ID_IN_USE" and error["details"]["field"] == "clientOrderId"
    placed = orders_on_exchange(stack, clientOrderId=client_id)
    assert len(placed) == 1 and placed[0]["side"] == "BUY"
    # the user stream's updates and look-ups still find the first job by that id
    job = stack.web.get(f"/api/v1/jobs/{first.json()['data']['jobId']}", token=token).json()["data"]
    assert job["status"] == "succeeded" and job["order"]["side"] == "BUY"


def test_an_order_placed_elsewhere_under_the_same_client_id_is_never_taken_for_ours(stack):
    client_id = f"ext-{uuid.uuid4().hex[:12]}"
    theirs = resting(stack, "BUY")
    placed = stack.paper.signed("POST", "/api/v3/order", newClientOrderId=client_id, timeInForce="GTC", **theirs)
    assert placed.status_code == 200, placed.text
    try:
        ours = {**resting(stack, "SELL"), "clientOrderId": client_id}
        answer = stack.post("/api/v1/order", ours)
        # the exchange answers "Duplicate order sent." (an open order has that id); the look-up that
        # follows finds the other order, which is not this one
        assert answer.status_code == 409, answer.text
        error = answer.json()["error"]
        assert error["code"] == "CLIENT_ORDER_ID_IN_USE"
        assert error["details"]["orderId"] == placed.json()["orderId"]
        job = stack.web.get(f"/api/v1/jobs/{error['details']['jobId']}", role="trader").json()["data"]
        assert job["status"] == "failed" and job["order"] is None
        assert [o["side"] for o in orders_on_exchange(stack, clientOrderId=client_id)] == ["BUY"]
    finally:
        stack.paper.signed("DELETE", "/api/v3/order", symbol="BTCUSDT", origClientOrderId=client_id)
