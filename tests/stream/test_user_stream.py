"""User data through the relay, in both modes: an order placed through the gateway (web → worker →
paper exchange) comes back as executionReports on `P user:events` (Redis Stream), `P md:user`,
`P md:orders`, and as its job's `orderUpdate`; the stream survives a dropped connection (subscribed
again, with status reconnecting/restored); an expired listen key is replaced, and beat's keepalive
keeps a live one from expiring."""

from __future__ import annotations

import time
import uuid
from decimal import Decimal

import orjson
import pytest
import redis

from services.contract.keys import Keys
from tests.orders.conftest import Stack
from tests.support import eventually

MODES = ("ws-api", "listen-key")
LISTEN_KEY_TTL = 3


class System(Stack):
    def __init__(self, redis_url: str):
        # beat refreshes the listen key every second, well inside its 3 s life
        super().__init__(
            redis_url,
            seed=73,
            paper_env={"PAPER_LISTEN_KEY_TTL": str(LISTEN_KEY_TTL)},
            worker_env={"USER_STREAM_MODE": "listen-key", "LISTEN_KEY_KEEPALIVE": "1"},
        )
        self.redis = redis.Redis.from_url(redis_url)

    def place_limit(self) -> dict:
        bid = Decimal(self.paper.get("/api/v3/ticker/bookTicker", symbol="BTCUSDT").json()["bidPrice"])
        client_id = f"st-{uuid.uuid4().hex[:16]}"
        answer = self.web.http.post(
            self.web.url + "/api/v1/order",
            timeout=30,
            json={
                "symbol": "BTCUSDT",
                "side": "BUY",
                "type": "LIMIT",
                "quantity": "0.001",
                "price": str((bid * Decimal("0.9")).quantize(Decimal("0.01"))),
                "clientOrderId": client_id,
            },
            headers={"Authorization": f"Bearer {self.web.token('trader')}"},
        )
        assert answer.status_code == 201, answer.text
        order = answer.json()["data"]
        assert order["clientOrderId"] == client_id and order["status"] == "NEW"
        return order

    def cancel(self, order: dict) -> None:
        answer = self.web.http.delete(
            self.web.url + "/api/v1/order",
            timeout=30,
            params={"symbol": "BTCUSDT", "orderId": order["orderId"]},
            headers={"Authorization": f"Bearer {self.web.token('trader')}"},
        )
        assert answer.status_code == 200, answer.text

    def job(self, job_id: str) -> dict:
        return self.web.get(f"/api/v1/jobs/{job_id}").json()["data"]

    def user_stream_ready(self) -> bool:
        raw = self.redis.get(Keys(self.prefix).stream_status)
        return bool(raw) and orjson.loads(raw)["user"]["subscribed"]

    def stop(self) -> None:
        try:
            super().stop()
        finally:
            self.redis.close()


@pytest.fixture(scope="module")
def system(redis_url):
    s = System(redis_url)
    yield s
    s.stop()


@pytest.fixture
def start_relay(system, make_relay, make_subscriber):
    """A relay in the given mode sharing the worker's prefix, subscribed; and a subscriber of md:*."""

    def start(mode: str):
        sub = make_subscriber(system.prefix)
        system.redis.delete(Keys(system.prefix).stream_status)  # the previous relay's report
        relay = make_relay(system.paper, prefix=system.prefix, USER_STREAM_MODE=mode, STREAM_SYMBOLS="none")
        eventually(system.user_stream_ready, 20, what=f"the {mode} user stream subscribed")
        sub.drain()
        return relay, sub

    return start


def execution_report(client_id: str, execution: str):
    return lambda ch, m: (
        ch == "user"
        and m["type"] == "user"
        and m["data"].get("e") == "executionReport"
        and (m["data"].get("C") or m["data"]["c"]) == client_id
        and m["data"]["x"] == execution
    )


@pytest.mark.parametrize("mode", MODES)
def test_an_order_comes_back_as_events_orders_and_its_jobs_order_update(system, start_relay, mode):
    relay, sub = start_relay(mode)
    order = system.place_limit()
    cid = order["clientOrderId"]

    _, user = sub.wait_for(execution_report(cid, "NEW"), 10, "the NEW executionReport on md:user")
    assert user["channel"] == "user" and user["data"]["i"] == order["orderId"] and user["data"]["X"] == "NEW"
    entries = system.redis.xrange(Keys(system.prefix).user_events, min=user["id"], max=user["id"])
    assert len(entries) == 1 and orjson.loads(entries[0][1][b"event"]) == user["data"]
    _, placed = sub.wait_for(lambda ch, m: ch == "orders" and m["data"]["clientOrderId"] == cid, 5, "md:orders")
    assert placed["type"] == "order" and placed["id"] == user["id"]
    assert placed["data"]["status"] == "NEW" and placed["data"]["orderId"] == order["orderId"]
    assert placed["data"]["executionType"] == "NEW" and placed["data"]["origQty"] == "0.00100000"
    # the balance change follows as its own event
    sub.wait_for(
        lambda ch, m: ch == "user" and m["data"].get("e") == "outboundAccountPosition", 5, "outboundAccountPosition"
    )
    job = eventually(lambda: (j := system.job(order["jobId"])).get("orderUpdate") and j, 5, what="orderUpdate")
    assert job["orderUpdate"]["status"] == "NEW" and job["status"] == "succeeded"

    system.cancel(order)
    sub.wait_for(
        lambda ch, m: ch == "orders" and m["data"]["clientOrderId"] == cid and m["data"]["status"] == "CANCELED",
        10,
        "the cancel on md:orders",
    )
    job = eventually(
        lambda: (j := system.job(order["jobId"]))["orderUpdate"]["status"] == "CANCELED" and j,
        5,
        what="the canceled orderUpdate",
    )
    assert job["status"] == "succeeded" and job["order"]["status"] == "NEW"  # the final job is untouched
    assert "Traceback" not in relay.log_text()


@pytest.mark.parametrize("mode", MODES)
def test_the_user_stream_survives_a_drop(system, start_relay, mode):
    relay, sub = start_relay(mode)
    target = "ws-api" if mode == "ws-api" else "streams"
    cut = system.paper.admin("POST", "streams/faults", {"kind": "drop", "target": target}).json()
    assert cut["connections"] >= 1
    dropped = time.monotonic()
    sub.wait_for(
        lambda ch, m: ch == "user" and m["type"] == "status" and m["data"]["state"] == "reconnecting",
        5,
        "reconnecting on md:user",
    )
    sub.wait_for(
        lambda ch, m: ch == "user" and m["type"] == "status" and m["data"]["state"] == "restored",
        5,
        "restored on md:user",
    )
    assert time.monotonic() - dropped < 5
    if mode == "ws-api":  # subscribed again on the new connection
        api = [c for c in system.paper.admin("GET", "streams").json()["connections"] if c["kind"] == "api"]
        assert [c["subscriptions"] for c in api] == [[0]]
    order = system.place_limit()
    sub.wait_for(execution_report(order["clientOrderId"], "NEW"), 10, "an executionReport after the drop")
    system.cancel(order)


def test_listen_keys_are_kept_alive_and_replaced_when_they_expire(system, start_relay):
    relay, sub = start_relay("listen-key")
    slot = f"{system.prefix}user-stream:listen-key"
    key = system.redis.get(slot)
    assert key  # created by the worker for the relay, kept for beat's keepalive
    # beat's keepalive: the key outlives its TTL (nothing on md:user says otherwise)
    assert sub.next(LISTEN_KEY_TTL + 1.5) is None

    # with nothing left to keep alive, the key expires: the relay gets a new one and carries on
    system.redis.delete(slot)
    sub.wait_for(
        lambda ch, m: m["type"] == "status" and m["data"]["state"] == "reconnecting",
        LISTEN_KEY_TTL + 3,
        "reconnecting after listenKeyExpired",
    )
    sub.wait_for(lambda ch, m: m["type"] == "status" and m["data"]["state"] == "restored", 5, "restored")
    assert "listen key expired" in relay.log_text()
    assert system.redis.get(slot) not in (None, key)
    order = system.place_limit()
    sub.wait_for(execution_report(order["clientOrderId"], "NEW"), 10, "an executionReport with the new key")
    system.cancel(order)
