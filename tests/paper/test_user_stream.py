"""User data on the paper exchange, as a Binance client sees it: the WebSocket API subscription
(`userDataStream.subscribe.signature`) and legacy listen-key streams deliver executionReport,
outboundAccountPosition and balanceUpdate events; bad requests get Binance's WS-API errors."""

from __future__ import annotations

import json
import time
from decimal import Decimal

import pytest

from tests.paper.ws_client import api_request, closed_by_server, connect, recv_json, signed_params, user_event
from tests.processes import PaperProcess

EXECUTION_REPORT_FIELDS = [
    "e",
    "E",
    "s",
    "c",
    "S",
    "o",
    "f",
    "q",
    "p",
    "P",
    "F",
    "g",
    "C",
    "x",
    "X",
    "r",
    "i",
    "l",
    "z",
    "L",
    "n",
    "N",
    "T",
    "t",
    "I",
    "w",
    "m",
    "M",
    "O",
    "Z",
    "Y",
    "Q",
    "W",
    "V",
]


@pytest.fixture(scope="module")
def px():
    process = PaperProcess(seed=31)
    process.pause()  # a quiet market: only the test's orders and price moves change the book
    yield process
    process.stop()


@pytest.fixture
def api(px):
    ws = connect(px, "/ws-api/v3")
    yield ws
    ws.close()


def subscribe(px, ws, request_id=1) -> int:
    answer = api_request(ws, request_id, "userDataStream.subscribe.signature", signed_params(px))
    assert answer["status"] == 200, answer
    return answer["result"]["subscriptionId"]


def best(px, symbol="BTCUSDT") -> tuple[Decimal, Decimal]:
    book = px.get("/api/v3/ticker/bookTicker", symbol=symbol).json()
    return Decimal(book["bidPrice"]), Decimal(book["askPrice"])


def test_ping_time_and_request_errors(px, api):
    pong = api_request(api, "a-1", "ping")
    assert pong["id"] == "a-1" and pong["status"] == 200 and pong["result"] == {}
    limits = pong["rateLimits"][0]
    assert {k: limits[k] for k in ("rateLimitType", "interval", "intervalNum")} == {
        "rateLimitType": "REQUEST_WEIGHT",
        "interval": "MINUTE",
        "intervalNum": 1,
    }
    server_time = api_request(api, 2, "time", {"returnRateLimits": False})
    assert list(server_time) == ["id", "status", "result"]
    assert abs(server_time["result"]["serverTime"] - time.time() * 1000) < 5000

    unknown = api_request(api, 3, "order.teleport")
    assert (unknown["status"], unknown["error"]["code"]) == (400, -1020)
    api.send(json.dumps({"id": "not valid!", "method": "ping"}))
    bad_id = recv_json(api)
    assert bad_id["id"] is None and bad_id["status"] == 400 and bad_id["error"]["code"] == -1135
    api.send("{not json")
    assert recv_json(api)["error"] == {"code": -1135, "msg": "Invalid JSON Request"}
    extra = api_request(api, 4, "ping", {"symbol": "BTCUSDT"})
    assert extra["error"]["code"] == -1104
    assert api_request(api, 5, "ping")["status"] == 200  # errors never close the connection


def test_signature_subscription_errors(px, api):
    def error(request_id, params):
        answer = api_request(api, request_id, "userDataStream.subscribe.signature", params)
        return answer["status"], answer["error"]["code"], answer["error"]["msg"]

    good = signed_params(px)
    assert error(1, {**good, "signature": "0" * 64}) == (400, -1022, "Signature for this request is not valid.")
    assert error(2, signed_params(px, key="A" * 64)) == (401, -2015, "Invalid API-key, IP, or permissions for action.")
    stale = signed_params(px, timestamp=int(time.time() * 1000) - 10_000)
    assert error(3, stale) == (400, -1021, "Timestamp for this request is outside of the recvWindow.")
    ahead = signed_params(px, timestamp=int(time.time() * 1000) + 5_000)
    assert error(4, ahead)[1] == -1021
    missing = {k: v for k, v in good.items() if k != "apiKey"}
    assert error(5, missing) == (400, -1102, "Mandatory parameter 'apiKey' was not sent, was empty/null, or malformed.")
    assert error(6, signed_params(px, recvWindow=70_000)) == (
        400,
        -1102,
        "'recvWindow' contains unexpected value. Cannot be greater than 60000.",
    )
    # a signature over params sorted by name, recvWindow included, is accepted; a second one for
    # the same account on the same connection is not
    assert api_request(api, 7, "userDataStream.subscribe.signature", signed_params(px, recvWindow=60_000))[
        "result"
    ] == {"subscriptionId": 0}
    assert error(8, signed_params(px)) == (400, -2035, "User Data Stream subscription already active.")
    assert api_request(api, 9, "ping")["status"] == 200


def test_limit_order_reports_new_then_trade_on_a_ws_api_subscription(px, api):
    sub_id = subscribe(px, api)
    bid, _ = best(px)
    price = bid - Decimal("50")
    order = px.signed(
        "POST",
        "/api/v3/order",
        symbol="BTCUSDT",
        side="BUY",
        type="LIMIT",
        timeInForce="GTC",
        quantity="0.00100",
        price=f"{price:.2f}",
        newClientOrderId="ws-api-buy-1",
    ).json()
    assert order["status"] == "NEW"

    message = user_event(api, "executionReport", i=order["orderId"], x="NEW")
    assert message["subscriptionId"] == sub_id and list(message) == ["subscriptionId", "event"]
    new = message["event"]
    assert list(new) == EXECUTION_REPORT_FIELDS
    assert (new["s"], new["c"], new["S"], new["o"], new["f"], new["X"], new["r"]) == (
        "BTCUSDT",
        "ws-api-buy-1",
        "BUY",
        "LIMIT",
        "GTC",
        "NEW",
        "NONE",
    )
    assert (new["q"], new["p"], new["l"], new["z"], new["n"], new["N"], new["t"], new["C"]) == (
        "0.00100000",
        f"{price:.8f}",
        "0.00000000",
        "0.00000000",
        "0",
        None,
        -1,
        "",
    )
    assert new["w"] is True and new["O"] == order["transactTime"] and new["W"] == order["workingTime"]
    position = user_event(api, "outboundAccountPosition")["event"]
    usdt = {b["a"]: b for b in position["B"]}["USDT"]
    assert Decimal(usdt["l"]) >= price * Decimal("0.001")

    # The price falls through the order: the market maker's new asks trade with it.
    assert px.admin("POST", "market", {"symbol": "BTCUSDT", "price": f"{price - 100:.2f}"}).status_code == 200
    filled = user_event(api, "executionReport", i=order["orderId"], X="FILLED")["event"]
    assert (filled["x"], filled["l"], filled["z"], filled["L"], filled["m"], filled["w"]) == (
        "TRADE",
        "0.00100000",
        "0.00100000",
        f"{price:.8f}",
        True,
        False,
    )
    assert filled["Z"] == filled["Y"] == f"{price * Decimal('0.001'):.8f}"
    assert filled["I"] > new["I"]
    trades = px.signed("GET", "/api/v3/myTrades", symbol="BTCUSDT", orderId=order["orderId"]).json()
    assert [(t["id"], t["commission"], t["commissionAsset"], t["isMaker"]) for t in trades] == [
        (filled["t"], filled["n"], filled["N"], True)
    ]
    position = user_event(api, "outboundAccountPosition")["event"]
    assets = {b["a"]: b for b in position["B"]}
    balances = px.balances()
    assert {a: (b["f"], b["l"]) for a, b in assets.items()} == {a: balances[a] for a in assets}
    assert {"BTC", "USDT"} <= set(assets)


def test_listen_key_stream_reports_new_and_cancel(px):
    response = px.http.post(px.url + "/api/v3/userDataStream", headers={"X-MBX-APIKEY": px.key}, timeout=10)
    key = response.json()["listenKey"]
    raw = connect(px, f"/ws/{key}")
    combined = connect(px, f"/stream?streams={key}")
    try:
        _, ask = best(px)
        price = ask + Decimal("80")
        order = px.signed(
            "POST",
            "/api/v3/order",
            symbol="BTCUSDT",
            side="SELL",
            type="LIMIT",
            timeInForce="GTC",
            quantity="0.00200",
            price=f"{price:.2f}",
            newClientOrderId="lk-sell-1",
        ).json()
        new = user_event(raw, "executionReport", i=order["orderId"])
        assert list(new) == EXECUTION_REPORT_FIELDS and new["x"] == "NEW"  # legacy streams: unwrapped
        wrapped = user_event(combined, "executionReport", i=order["orderId"])
        assert wrapped["stream"] == key and wrapped["data"]["c"] == "lk-sell-1"

        px.signed(
            "DELETE", "/api/v3/order", symbol="BTCUSDT", origClientOrderId="lk-sell-1", newClientOrderId="lk-cancel-1"
        )
        canceled = user_event(raw, "executionReport", i=order["orderId"], x="CANCELED")
        assert (canceled["X"], canceled["c"], canceled["C"], canceled["w"]) == (
            "CANCELED",
            "lk-cancel-1",
            "lk-sell-1",
            False,
        )
        position = user_event(raw, "outboundAccountPosition")
        btc = {b["a"]: b for b in position["B"]}["BTC"]
        assert (btc["f"], btc["l"]) == px.balances()["BTC"]
    finally:
        raw.close()
        combined.close()


def test_deposits_and_withdrawals_emit_balance_update(px, api):
    subscribe(px, api)
    totals = px.admin("GET", "totals").json()
    before = Decimal(px.balances()["USDT"][0])
    answer = px.admin("POST", "deposit", {"asset": "USDT", "amount": "250.5"})
    assert answer.status_code == 200
    update = user_event(api, "balanceUpdate")["event"]
    assert list(update) == ["e", "E", "a", "d", "T"] and (update["a"], update["d"]) == ("USDT", "250.50000000")
    position = user_event(api, "outboundAccountPosition")["event"]
    assert position["B"] == [{"a": "USDT", "f": f"{before + Decimal('250.5'):.8f}", "l": px.balances()["USDT"][1]}]

    assert px.admin("POST", "deposit", {"asset": "USDT", "amount": "-100"}).status_code == 200
    assert user_event(api, "balanceUpdate")["event"]["d"] == "-100.00000000"
    assert Decimal(px.balances()["USDT"][0]) == before + Decimal("150.5")
    too_much = px.admin("POST", "deposit", {"asset": "USDT", "amount": "-100000000"})
    assert too_much.status_code == 400
    assert px.admin("POST", "deposit", {"asset": "usdt", "amount": "1"}).status_code == 400
    assert px.admin("GET", "totals").json() == totals  # moved from the treasury, not created


def test_unsubscribe_ends_with_event_stream_terminated(px, api):
    first = subscribe(px, api, 1)
    assert api_request(api, 2, "session.subscriptions")["result"] == [{"subscriptionId": first}]
    assert api_request(api, 3, "userDataStream.unsubscribe", {"subscriptionId": 99})["error"]["code"] == -2036
    assert api_request(api, 4, "userDataStream.unsubscribe", {"subscriptionId": first})["result"] == {}
    ended = user_event(api, "eventStreamTerminated")
    assert ended["subscriptionId"] == first and list(ended["event"]) == ["e", "E"]
    assert api_request(api, 5, "session.subscriptions")["result"] == []
    # a new subscription gets a new id; events flow again
    second = subscribe(px, api, 6)
    assert second == first + 1
    assert px.admin("POST", "deposit", {"asset": "BNB", "amount": "1"}).status_code == 200
    assert user_event(api, "balanceUpdate")["subscriptionId"] == second


def test_listen_key_expires_without_keepalive():
    px = PaperProcess(seed=33, PAPER_LISTEN_KEY_TTL="2")
    try:
        headers = {"X-MBX-APIKEY": px.key}
        key = px.http.post(px.url + "/api/v3/userDataStream", headers=headers, timeout=10).json()["listenKey"]
        ws = connect(px, f"/ws/{key}")
        try:
            started = time.monotonic()
            assert (
                px.http.put(
                    px.url + "/api/v3/userDataStream", params={"listenKey": key}, headers=headers, timeout=10
                ).status_code
                == 200
            )
            expired = user_event(ws, "listenKeyExpired", timeout=10)
            assert expired["listenKey"] == key and list(expired) == ["e", "E", "listenKey"]
            assert time.monotonic() - started >= 1.5
            assert closed_by_server(ws, timeout=5) == 1000
        finally:
            ws.close()
        assert (
            px.http.put(
                px.url + "/api/v3/userDataStream", params={"listenKey": key}, headers=headers, timeout=10
            ).json()["code"]
            == -1125
        )
    finally:
        px.stop()
