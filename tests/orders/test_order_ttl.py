"""Orders that wait too long are not sent (issue 10, item 5): each job gets `expiresAt` — ORDER_TTL_MARKET
seconds after it is due for MARKET orders, ORDER_TTL for the others — and a run that could only send
it later fails it with 409 ORDER_EXPIRED instead. Here the account's daily ORDERS limit is tiny, so
once it is used up every further order would wait for the next day: it expires at once."""

from __future__ import annotations

import time
import uuid

import pytest

from tests.orders.conftest import Stack
from tests.support import wait_job


@pytest.fixture(scope="module")
def paced(redis_url):
    # PAPER_ORDERS_1D=3: the gateway paces at 90 % of it, 2 orders a day
    s = Stack(redis_url, paper_env={"PAPER_ORDERS_1D": "3"}, web_env={"ORDER_TTL_MARKET": "2", "ORDER_TTL": "20"})
    yield s
    s.stop()


def test_an_order_that_could_only_be_sent_after_its_ttl_fails_order_expired(paced):
    market = {"symbol": "BNBUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.01"}
    first = [paced.post("/api/v1/order", market) for _ in range(2)]
    assert [a.status_code for a in first] == [201, 201], [a.text for a in first]  # the day's two slots

    started = time.time() * 1000
    late = paced.post("/api/v1/order", {**market, "clientOrderId": f"late-{uuid.uuid4().hex[:8]}"})
    assert late.status_code == 409, late.text  # sync: answered as soon as the worker knows
    error = late.json()["error"]
    assert error["code"] == "ORDER_EXPIRED"
    job = paced.web.get(f"/api/v1/jobs/{error['details']['jobId']}", role="trader").json()["data"]
    assert job["status"] == "failed" and job["error"]["code"] == "ORDER_EXPIRED"
    assert started <= job["expiresAt"] - 2000 <= job["createdAt"]  # ORDER_TTL_MARKET after it was made
    assert paced.paper.admin("GET", f"orders?clientOrderId={job['clientOrderId']}").json() == []

    # other types live ORDER_TTL (20 s here): still far short of the next day's slots
    limit = paced.post(
        "/api/v1/order",
        {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.001", "price": "30000"},
        headers={"Prefer": "respond-async"},
    )
    assert limit.status_code == 202, limit.text
    queued = limit.json()["data"]
    assert queued["expiresAt"] == queued["createdAt"] + 20_000
    assert limit.headers["Location"] == f"/api/v1/jobs/{queued['id']}"
    queued = wait_job(paced.web, queued["id"], 20)
    assert queued["status"] == "failed" and queued["error"]["code"] == "ORDER_EXPIRED", queued
    assert paced.paper.admin("GET", f"orders?clientOrderId={queued['clientOrderId']}").json() == []
