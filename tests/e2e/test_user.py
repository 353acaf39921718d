"""Account events end to end, in both user-stream modes (USER_STREAM_MODE=ws-api and listen-key): a
LIMIT order placed over REST comes back as executionReports on `/ws/user`, which needs a token; a
client that reconnects with `lastEventId` gets exactly the events it missed, in order, once."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.support import eventually

from .conftest import System

pytestmark = pytest.mark.integration

MODES = ("ws-api", "listen-key")


@pytest.fixture(scope="module")
def system(redis_url):
    # The worker's mode only decides what its embedded beat schedules: listen-key adds the keepalive
    # the listen-key relay depends on. It signs the ws-api subscription all the same.
    s = System(redis_url, seed=85, worker_env={"USER_STREAM_MODE": "listen-key"})
    yield s
    s.stop()


@pytest.fixture(scope="module", params=MODES)
def mode(request, system):
    """A relay in this mode (one at a time on the deployment), its user stream subscribed upstream:
    an order placed before that would have no stream to come back on."""
    system.start_relay(USER_STREAM_MODE=request.param, STREAM_SYMBOLS="none")
    try:
        eventually(system.user_stream_ready, 30, what=f"the {request.param} user stream subscribed")
        yield request.param
    finally:
        system.stop_relay()


def execution_report(client_order_id: str, status: str):
    # A cancel's executionReport carries the canceled order's client id in C (c is the cancel's own).
    return lambda m: (
        m["type"] == "user"
        and m["data"].get("e") == "executionReport"
        and (m["data"]["C"] or m["data"]["c"]) == client_order_id
        and m["data"]["X"] == status
    )


def event_id(raw: str) -> tuple[int, int]:
    ms, seq = raw.split("-")
    return int(ms), int(seq)


def test_a_limit_order_placed_over_rest_comes_back_on_ws_user(system, mode):
    token = system.web.token("viewer")  # any role may read account events
    with (
        system.connect() as anonymous,
        system.connect("/ws/user", additional_headers={"Authorization": f"Bearer {token}"}) as user,
    ):
        anonymous.next("welcome")
        anonymous.send({"type": "subscribe", "channels": ["user"]})
        error = anonymous.next("error")
        assert (error["code"], error["channel"]) == ("TOKEN_MISSING", "user")
        assert user.next("welcome")["authenticated"] is True
        assert user.next("subscribed")["channels"] == ["user"]

        order = system.place_limit()
        new = user.until(execution_report(order["clientOrderId"], "NEW"), 10, "the order's NEW executionReport")
        report = new["data"]
        assert new["channel"] == "user" and event_id(new["id"])
        assert (report["s"], report["i"], report["S"], report["o"], report["x"]) == (
            "BTCUSDT",
            order["orderId"],
            "BUY",
            "LIMIT",
            "NEW",
        )
        assert Decimal(report["p"]) == Decimal(order["price"]) and Decimal(report["q"]) == Decimal("0.001")

        system.cancel(order)
        canceled = user.until(execution_report(order["clientOrderId"], "CANCELED"), 10, "the cancel's report")
        assert canceled["data"]["x"] == "CANCELED" and event_id(canceled["id"]) > event_id(new["id"])
        # the socket without a token got none of it: its next message answers its own ping
        anonymous.send({"type": "ping"})
        anonymous.next("pong")


def test_reconnecting_with_last_event_id_gets_exactly_the_missed_events(system, mode):
    token = system.web.token("viewer")
    resumed_events: list[dict] = []
    witnessed: list[dict] = []

    def collect(into: list, until):
        return lambda m: into.append(m) or until(m)

    # A second client stays connected throughout: what it sees live is what the first one missed.
    with system.connect(f"/ws/user?token={token}", max_queue=None) as witness:
        witness.open(["user"])
        with system.connect(f"/ws/user?token={token}") as first:
            first.open(["user"])
            a = system.place_limit()
            last_seen = first.until(execution_report(a["clientOrderId"], "NEW"), 10, "A's NEW report")["id"]
        # while nobody is connected on that side: A canceled, B placed
        system.cancel(a)
        b = system.place_limit()
        with system.connect(f"/ws/user?lastEventId={last_seen}&token={token}") as resumed:
            resumed.open(["user"])
            system.cancel(b)  # and one more event once it is back
            resumed.until(
                collect(resumed_events, execution_report(b["clientOrderId"], "CANCELED")),
                10,
                "the missed events and B's cancel",
            )
        witness.until(
            collect(witnessed, execution_report(b["clientOrderId"], "CANCELED")), 10, "B's cancel on the witness"
        )

    missed = [m for m in witnessed if m["type"] == "user" and event_id(m["id"]) > event_id(last_seen)]
    assert [(m["type"], m["id"], m["data"]) for m in resumed_events] == [("user", m["id"], m["data"]) for m in missed]
    ids = [event_id(m["id"]) for m in resumed_events]
    assert ids == sorted(set(ids))  # in order, each once
    reports = [
        ((m["data"]["C"] or m["data"]["c"]), m["data"]["X"])
        for m in resumed_events
        if m["data"]["e"] == "executionReport"
    ]
    assert reports == [(a["clientOrderId"], "CANCELED"), (b["clientOrderId"], "NEW"), (b["clientOrderId"], "CANCELED")]
