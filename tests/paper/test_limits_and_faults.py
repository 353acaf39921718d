"""Binance's rate limits (request weight per minute, orders per 10 s and per day, 429 then a 418 ban),
the faults the paper exchange injects through /_paper/faults, and legacy listen keys: what a client
sees, header by header."""

from __future__ import annotations

import math
import re
import time
from decimal import ROUND_DOWN, Decimal

import pytest
import requests

from tests.paper.binance_errors import assert_error, error_body
from tests.processes import PaperProcess

WEIGHT = "X-MBX-USED-WEIGHT-1M"


def resting_order(px: PaperProcess, **extra) -> dict:
    """A LIMIT BUY far under the book: it rests, never fills, costs about 30 USDT."""
    best_bid = Decimal(px.get("/api/v3/depth", symbol="BTCUSDT", limit=5).json()["bids"][0][0])
    price = (best_bid / 2).quantize(Decimal("0.01"), rounding=ROUND_DOWN)
    return dict(
        symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.001", price=str(price), **extra
    )


def wait_for_fresh_window(length_s: int, margin_s: float) -> None:
    """Binance's windows are aligned to the clock; start a sequence that must not straddle a window
    boundary only when at least `margin_s` of the current one is left (waits at most `margin_s`)."""
    left = length_s - time.time() % length_s
    if left < margin_s:
        time.sleep(left + 0.05)


# -- REQUEST_WEIGHT -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def weigher():
    """An exchange of our own, so no other test's traffic shares its weight counter."""
    px = PaperProcess(seed=17)
    order = px.signed("POST", "/api/v3/order", **resting_order(px))
    assert order.status_code == 200, order.text
    px.order_id = order.json()["orderId"]
    yield px
    px.stop()


def weight_of(px: PaperProcess, send) -> int:
    """How much X-MBX-USED-WEIGHT-1M grows for one request (a ping, weight 1, gives the base)."""
    for _ in range(3):
        minute = time.time() // 60
        base = int(px.get("/api/v3/ping").headers[WEIGHT])
        resp = send()
        if time.time() // 60 == minute:  # else the window reset in between: measure again
            assert resp.headers["X-MBX-USED-WEIGHT"] == resp.headers[WEIGHT]
            return int(resp.headers[WEIGHT]) - base
    raise AssertionError("could not measure within one minute window")


PUBLIC_WEIGHTS = [  # rest-api.md, "Weight" of each endpoint
    ("/api/v3/ping", {}, 1),
    ("/api/v3/time", {}, 1),
    ("/api/v3/exchangeInfo", {}, 20),
    ("/api/v3/exchangeInfo", {"symbol": "BTCUSDT"}, 20),
    ("/api/v3/depth", {"symbol": "BTCUSDT"}, 5),
    ("/api/v3/depth", {"symbol": "BTCUSDT", "limit": 5}, 5),
    ("/api/v3/depth", {"symbol": "BTCUSDT", "limit": 100}, 5),
    ("/api/v3/depth", {"symbol": "BTCUSDT", "limit": 101}, 25),
    ("/api/v3/depth", {"symbol": "BTCUSDT", "limit": 500}, 25),
    ("/api/v3/depth", {"symbol": "BTCUSDT", "limit": 501}, 50),
    ("/api/v3/depth", {"symbol": "BTCUSDT", "limit": 1000}, 50),
    ("/api/v3/depth", {"symbol": "BTCUSDT", "limit": 1001}, 250),
    ("/api/v3/depth", {"symbol": "BTCUSDT", "limit": 5000}, 250),
    ("/api/v3/trades", {"symbol": "BTCUSDT"}, 25),
    ("/api/v3/aggTrades", {"symbol": "BTCUSDT"}, 4),
    ("/api/v3/klines", {"symbol": "BTCUSDT", "interval": "1m"}, 2),
    ("/api/v3/uiKlines", {"symbol": "BTCUSDT", "interval": "1m"}, 2),
    ("/api/v3/avgPrice", {"symbol": "BTCUSDT"}, 2),
    ("/api/v3/ticker/price", {"symbol": "BTCUSDT"}, 2),
    ("/api/v3/ticker/price", {}, 4),
    ("/api/v3/ticker/price", {"symbols": '["BTCUSDT","ETHUSDT"]'}, 4),
    ("/api/v3/ticker/bookTicker", {"symbol": "BTCUSDT"}, 2),
    ("/api/v3/ticker/bookTicker", {}, 4),
    ("/api/v3/ticker/24hr", {"symbol": "BTCUSDT"}, 2),
    ("/api/v3/ticker/24hr", {"symbols": '["BTCUSDT","ETHUSDT"]'}, 2),
    ("/api/v3/ticker/24hr", {}, 80),
]


@pytest.mark.parametrize(
    "path, params, weight", PUBLIC_WEIGHTS, ids=[f"{p[8:]}{sorted(q.items())}" for p, q, _ in PUBLIC_WEIGHTS]
)
def test_public_request_weight(weigher, path, params, weight):
    assert weight_of(weigher, lambda: weigher.get(path, **params)) == weight


SIGNED_WEIGHTS = [
    ("GET", "/api/v3/account", {}, 20),
    ("GET", "/api/v3/order", {"orderId": "ORDER"}, 4),
    ("GET", "/api/v3/openOrders", {"symbol": "BTCUSDT"}, 6),
    ("GET", "/api/v3/openOrders", {}, 80),
    ("GET", "/api/v3/allOrders", {"symbol": "BTCUSDT"}, 20),
    ("GET", "/api/v3/myTrades", {"symbol": "BTCUSDT"}, 20),
    ("GET", "/api/v3/myTrades", {"symbol": "BTCUSDT", "orderId": "ORDER"}, 5),
    ("POST", "/api/v3/order/test", {"ORDER": True}, 1),
    ("POST", "/api/v3/order/test", {"ORDER": True, "computeCommissionRates": "true"}, 20),
    ("DELETE", "/api/v3/order", {"symbol": "BTCUSDT", "orderId": 987654321}, 1),  # weight counts when refused too
]


@pytest.mark.parametrize(
    "method, path, params, weight", SIGNED_WEIGHTS, ids=[f"{m} {p[8:]}{sorted(q)}" for m, p, q, _ in SIGNED_WEIGHTS]
)
def test_signed_request_weight(weigher, method, path, params, weight):
    params = dict(params)
    if params.pop("ORDER", False):
        params.update(resting_order(weigher))
    if params.get("orderId") == "ORDER":
        params.update(symbol="BTCUSDT", orderId=weigher.order_id)
    assert weight_of(weigher, lambda: weigher.signed(method, path, **params)) == weight


def test_listen_key_weight(weigher):
    assert (
        weight_of(
            weigher,
            lambda: weigher.http.post(weigher.url + "/api/v3/userDataStream", headers={"X-MBX-APIKEY": weigher.key}),
        )
        == 2
    )


def test_exceeding_the_weight_limit_429_then_418(make_paper):
    px = make_paper(PAPER_WEIGHT_LIMIT="50", PAPER_BAN_AFTER="2", PAPER_BAN_SECONDS="2")
    wait_for_fresh_window(60, 5)
    used = [int(px.get("/api/v3/exchangeInfo").headers[WEIGHT]) for _ in range(2)]
    assert used[1] == used[0] + 20 and used[1] <= 50

    over = px.get("/api/v3/exchangeInfo")  # would take it past 50
    assert_error(
        over,
        429,
        -1003,
        "Too much request weight used; current limit is 50 request weight per "
        "1 MINUTE. Please use WebSocket Streams for live updates to avoid polling the API.",
    )
    to_minute = math.ceil(60 - time.time() % 60)
    assert abs(int(over.headers["Retry-After"]) - to_minute) <= 1
    assert int(over.headers[WEIGHT]) == used[1]  # a refused request adds nothing
    assert px.get("/api/v3/ping").status_code == 200  # the limit is weight, not requests: 1 still fits

    second = px.get("/api/v3/exchangeInfo")
    assert second.status_code == 429 and "Retry-After" in second.headers
    banned = px.get("/api/v3/exchangeInfo")  # a third 429 in the window is one too many
    body = assert_error(banned, 418, -1003)
    assert re.fullmatch(
        r"Way too much request weight used; IP banned until \d{13}\. "
        r"Please use WebSocket Streams for live updates to avoid bans\.",
        body["msg"],
    )
    assert banned.headers["Retry-After"] == "2"
    until = int(re.search(r"\d{13}", body["msg"]).group())
    assert 0 < until - time.time() * 1000 <= 2100

    light = px.get("/api/v3/ping")  # banned means banned, whatever the weight
    assert_error(light, 418, -1003)
    assert 1 <= int(light.headers["Retry-After"]) <= 2

    deadline = time.monotonic() + 5
    while px.get("/api/v3/time").status_code == 418:
        assert time.monotonic() < deadline, "the ban did not end"
        time.sleep(0.2)


# -- ORDERS ---------------------------------------------------------------------------------------


def test_orders_per_10_seconds(make_paper):
    px = make_paper(PAPER_ORDERS_10S="3")
    order = resting_order(px)
    wait_for_fresh_window(10, 3)
    for n in (1, 2, 3):
        placed = px.signed("POST", "/api/v3/order", **order)
        assert placed.status_code == 200, placed.text
        assert placed.headers["X-MBX-ORDER-COUNT-10S"] == str(n)
        assert placed.headers["X-MBX-ORDER-COUNT-1D"] == str(n)

    refused = px.signed("POST", "/api/v3/order", **order, newClientOrderId="one-too-many")
    assert_error(refused, 429, -1015, "Too many new orders; current limit is 3 orders per 10 SECOND.")
    assert 1 <= int(refused.headers["Retry-After"]) <= 10
    assert refused.headers["X-MBX-ORDER-COUNT-10S"] == "3"
    assert len(px.signed("GET", "/api/v3/openOrders", symbol="BTCUSDT").json()) == 3
    assert px.http.get(px.url + "/_paper/orders", params={"clientOrderId": "one-too-many"}).json() == []
    # Test orders never reach the matching engine, so they are not counted.
    assert px.signed("POST", "/api/v3/order/test", **order).status_code == 200


def test_orders_per_day(make_paper):
    px = make_paper(PAPER_ORDERS_1D="2")
    order = resting_order(px)
    for n in (1, 2):
        assert px.signed("POST", "/api/v3/order", **order).headers["X-MBX-ORDER-COUNT-1D"] == str(n)
    refused = px.signed("POST", "/api/v3/order", **order)
    assert_error(refused, 429, -1015, "Too many new orders; current limit is 2 orders per 1 DAY.")
    assert refused.headers["X-MBX-ORDER-COUNT-1D"] == "2"


# -- faults ---------------------------------------------------------------------------------------


def add_fault(px: PaperProcess, **spec) -> dict:
    resp = px.admin("POST", "faults", spec)
    assert resp.status_code == 201, resp.text
    return resp.json()


def exists(px: PaperProcess, client_order_id: str) -> bool:
    """Whether an order was placed, looked up as a client should after an unknown outcome."""
    resp = px.signed("GET", "/api/v3/order", symbol="BTCUSDT", origClientOrderId=client_order_id)
    if resp.status_code == 400:
        assert_error(resp, 400, -2013, "Order does not exist.")
        assert px.http.get(px.url + "/_paper/orders", params={"clientOrderId": client_order_id}).json() == []
        return False
    assert resp.status_code == 200, resp.text
    return True


def test_latency(paper):
    add_fault(paper, kind="latency", latency_ms=300, path="/api/v3/time", count=1)
    started = time.time()
    resp = paper.get("/api/v3/time")
    elapsed = time.time() - started
    assert resp.status_code == 200 and elapsed >= 0.3
    assert resp.json()["serverTime"] >= int(started * 1000) + 300  # answered after the wait
    assert paper.admin("GET", "faults").json() == []


@pytest.mark.parametrize("when, status, placed", [("before", None, False), ("after", 502, True)])
def test_server_error_before_or_after_execution(fresh_paper, when, status, placed):
    spec = dict(kind="error", method="POST", path="/api/v3/order", when=when, count=1)
    if status:
        spec["status"] = status
    add_fault(fresh_paper, **spec)
    client_id = f"fault-error-{when}"
    resp = fresh_paper.signed("POST", "/api/v3/order", **resting_order(fresh_paper), newClientOrderId=client_id)
    assert resp.status_code == (status or 503)
    assert error_body(resp, server_error=True)["code"] == -1001
    assert exists(fresh_paper, client_id) is placed


def test_timeout_after_execution_places_the_order(fresh_paper):
    add_fault(fresh_paper, kind="timeout", method="POST", path="/api/v3/order", when="after", count=1)
    resp = fresh_paper.signed("POST", "/api/v3/order", **resting_order(fresh_paper), newClientOrderId="fault-timeout")
    body = error_body(resp, server_error=True)
    assert resp.status_code == 408
    assert body == {
        "code": -1007,
        "msg": "Timeout waiting for response from backend server. Send status unknown; execution status unknown.",
    }
    assert exists(fresh_paper, "fault-timeout")


def test_rate_limit_fault(paper):
    add_fault(paper, kind="rate_limit", path="/api/v3/ticker/price", retry_after=7, count=1)
    resp = paper.get("/api/v3/ticker/price", symbol="BTCUSDT")
    assert_error(resp, 429, -1003, "Too many requests queued.")
    assert resp.headers["Retry-After"] == "7"
    assert paper.get("/api/v3/ticker/price", symbol="BTCUSDT").status_code == 200


@pytest.mark.parametrize("when, placed", [("before", False), ("after", True)])
def test_dropped_connection(fresh_paper, when, placed):
    add_fault(fresh_paper, kind="drop", method="POST", path="/api/v3/order", when=when, count=1)
    client_id = f"fault-drop-{when}"
    with pytest.raises(requests.ConnectionError):
        fresh_paper.signed("POST", "/api/v3/order", **resting_order(fresh_paper), newClientOrderId=client_id)
    assert exists(fresh_paper, client_id) is placed


def test_count_fires_exactly_n_times(paper):
    rule = add_fault(paper, kind="error", path="/api/v3/time", count=3)
    assert rule["count"] == 3 and rule["fired"] == 0
    statuses = [paper.get("/api/v3/time").status_code for _ in range(6)]
    assert statuses == [503, 503, 503, 200, 200, 200]
    assert paper.admin("GET", "faults").json() == []


def fire_pattern(px: PaperProcess, n: int = 200) -> list[bool]:
    add_fault(px, kind="error", path="/api/v3/ping", probability=0.3)
    return [px.get("/api/v3/ping").status_code == 503 for _ in range(n)]


def test_probability_is_roughly_p_and_seeded(make_paper):
    first = fire_pattern(make_paper(seed=21))
    # 200 draws at p=0.3: mean 60, standard deviation 6.5; ±25 is almost four of them.
    assert 35 <= sum(first) <= 85
    assert fire_pattern(make_paper(seed=21)) == first  # the same seed gives the same faults


def test_rule_matches_its_method_and_path_only(paper):
    add_fault(paper, kind="error", method="POST", path="/api/v3/order")
    assert paper.get("/api/v3/ticker/price", symbol="BTCUSDT").status_code == 200
    assert_error(paper.signed("GET", "/api/v3/order", symbol="BTCUSDT", orderId=987654321), 400, -2013)
    hit = paper.signed("POST", "/api/v3/order", symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.001")
    assert hit.status_code == 503 and error_body(hit, server_error=True)["code"] == -1001
    assert paper.admin("GET", "faults").json()[0]["fired"] == 1


@pytest.mark.parametrize(
    "spec",
    [
        None,
        [],
        "error",
        {},
        {"kind": "explode"},
        {"kind": "error", "probability": 1.5},
        {"kind": "error", "probability": "half"},
        {"kind": "error", "count": 0},
        {"kind": "error", "count": 1.5},
        {"kind": "error", "when": "during"},
        {"kind": "error", "status": 99},
        {"kind": "error", "status": True},
        {"kind": "latency", "latency_ms": -1},
        {"kind": "error", "colour": "red"},
    ],
    ids=repr,
)
def test_bad_fault_spec_is_a_400(paper, spec):
    resp = paper.admin("POST", "faults", spec)
    assert resp.status_code == 400 and resp.headers["Content-Type"].startswith("application/json")
    assert isinstance(resp.json()["error"], str)
    assert paper.admin("GET", "faults").json() == []


def test_bad_admin_bodies_are_400s_not_crashes(paper):
    for path in ("faults", "limits", "market"):
        resp = paper.http.post(
            f"{paper.url}/_paper/{path}", data=b"{not json", timeout=10, headers={"Content-Type": "application/json"}
        )
        assert resp.status_code == 400 and "error" in resp.json(), (path, resp.text)
    for body in ([1], {"weight_limit": True}, {"orders_10s": -1}, {"ban_after": "3"}):
        assert paper.admin("POST", "limits", body).status_code == 400, body
    limits = paper.admin("GET", "limits").json()
    assert limits["weight_limit"] == 6000 and limits["ban_after"] == 5


# -- listen keys ----------------------------------------------------------------------------------


def listen_key(px: PaperProcess, method: str, key: str | None = None, api_key: str | None = None):
    params = {"listenKey": key} if key is not None else {}
    return px.http.request(
        method,
        px.url + "/api/v3/userDataStream",
        params=params,
        timeout=10,
        headers={"X-MBX-APIKEY": api_key if api_key is not None else px.key},
    )


def test_listen_key_lifecycle(paper):
    created = listen_key(paper, "POST")
    assert created.status_code == 200
    key = created.json()["listenKey"]
    assert re.fullmatch(r"[A-Za-z0-9]{60}", key)
    assert listen_key(paper, "POST").json() == {"listenKey": key}  # still active: the same key

    kept = listen_key(paper, "PUT", key)
    assert (kept.status_code, kept.json()) == (200, {})
    closed = listen_key(paper, "DELETE", key)
    assert (closed.status_code, closed.json()) == (200, {})
    for method in ("PUT", "DELETE"):
        assert_error(listen_key(paper, method, key), 400, -1125, "This listenKey does not exist.")
    assert listen_key(paper, "POST").json()["listenKey"] != key

    assert_error(listen_key(paper, "PUT", "unknown" * 8), 400, -1125, "This listenKey does not exist.")
    assert_error(
        listen_key(paper, "PUT"),
        400,
        -1102,
        "Mandatory parameter 'listenKey' was not sent, was empty/null, or malformed.",
    )
    assert_error(listen_key(paper, "POST", api_key=""), 401, -2014, "API-key format invalid.")
    assert_error(
        listen_key(paper, "PUT", key, api_key="B" * 64), 401, -2015, "Invalid API-key, IP, or permissions for action."
    )


def test_listen_key_expires_without_keepalive(make_paper):
    px = make_paper(PAPER_LISTEN_KEY_TTL="1")
    key = listen_key(px, "POST").json()["listenKey"]
    started = time.monotonic()
    while time.monotonic() - started < 1.6:  # keepalives carry it past its 1 s lifetime
        assert listen_key(px, "PUT", key).status_code == 200
        time.sleep(0.3)

    # Each successful PUT extends the key again, so wait longer and longer between them until one
    # finds it expired.
    gap, deadline = 0.4, time.monotonic() + 6
    while (resp := listen_key(px, "PUT", key)).status_code == 200:
        assert time.monotonic() < deadline, "the listen key never expired"
        time.sleep(gap)
        gap *= 2
    assert_error(resp, 400, -1125, "This listenKey does not exist.")
    assert listen_key(px, "POST").json()["listenKey"] != key


# -- requests served (/_paper/requests) -------------------------------------------------------------


def test_requests_are_counted_per_endpoint_where_they_arrive_refused_ones_included(paper):
    before = paper.admin("GET", "requests").json()
    assert paper.get("/api/v3/ping").status_code == 200
    assert paper.get("/api/v3/ping").status_code == 200
    assert paper.get("/api/v3/depth", symbol="NOSUCHPAIR").status_code == 400  # refused, still counted
    after = paper.admin("GET", "requests").json()
    moved = {k: n - before.get(k, 0) for k, n in after.items() if n != before.get(k, 0)}
    assert moved == {"GET /api/v3/ping": 2, "GET /api/v3/depth": 1}
