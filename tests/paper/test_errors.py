"""Bad requests get Binance's error replies: the HTTP status, code and message Binance sends (clients
such as ccxt choose their exception by the exact text), as JSON, and never a 500 or an HTML page. A
rejected order leaves the account as it was, and signatures are checked over the bytes as sent."""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode

import pytest

from tests.paper.binance_errors import assert_error, error_body

LIMIT_BUY = {
    "symbol": "BTCUSDT",
    "side": "BUY",
    "type": "LIMIT",
    "timeInForce": "GTC",
    "quantity": "0.001",
    "price": "30000",
}
MARKET_BUY = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.001"}
SYMBOL_LEGAL = "^[A-Z0-9-_.]{1,20}$"
DECIMAL_LEGAL = r"^([0-9]{1,20})(\.[0-9]{1,20})?$"
INT_LEGAL = "^[0-9]{1,20}$"


def order(base: dict = LIMIT_BUY, **changes) -> dict:
    """`base` with `changes` applied; a change to None removes the parameter."""
    merged = {**base, **changes}
    return {k: v for k, v in merged.items() if v is not None}


def mandatory(name: str) -> str:
    return f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."


@dataclass
class Case:
    id: str
    method: str
    path: str
    params: dict | list = field(default_factory=dict)
    status: int = 400
    code: int = 0
    msg: str = ""
    signed: bool = False


CASES = [
    # symbols and intervals
    Case("unknown symbol", "GET", "/api/v3/depth", {"symbol": "NOPEUSDT"}, 400, -1121, "Invalid symbol."),
    Case(
        "unknown symbol in list",
        "GET",
        "/api/v3/ticker/price",
        {"symbols": '["BTCUSDT","NOPE"]'},
        400,
        -1121,
        "Invalid symbol.",
    ),
    Case(
        "unknown symbol on order",
        "POST",
        "/api/v3/order",
        order(symbol="NOPEUSDT"),
        400,
        -1121,
        "Invalid symbol.",
        signed=True,
    ),
    Case(
        "bad interval",
        "GET",
        "/api/v3/klines",
        {"symbol": "BTCUSDT", "interval": "7m"},
        400,
        -1120,
        "Invalid interval.",
    ),
    # missing and empty parameters
    Case("missing symbol", "GET", "/api/v3/depth", {}, 400, -1102, mandatory("symbol")),
    Case("empty symbol", "GET", "/api/v3/avgPrice", {"symbol": ""}, 400, -1102, mandatory("symbol")),
    Case("missing interval", "GET", "/api/v3/uiKlines", {"symbol": "BTCUSDT"}, 400, -1102, mandatory("interval")),
    Case("missing price", "POST", "/api/v3/order", order(price=None), 400, -1102, mandatory("price"), True),
    Case(
        "missing timeInForce",
        "POST",
        "/api/v3/order",
        order(timeInForce=None),
        400,
        -1102,
        mandatory("timeInForce"),
        True,
    ),
    Case("missing side", "POST", "/api/v3/order/test", order(side=None), 400, -1102, mandatory("side"), True),
    Case(
        "neither quantity nor quoteOrderQty",
        "POST",
        "/api/v3/order",
        order(MARKET_BUY, quantity=None),
        400,
        -1102,
        "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!",
        True,
    ),
    Case(
        "both quantity and quoteOrderQty",
        "POST",
        "/api/v3/order",
        order(MARKET_BUY, quoteOrderQty="10"),
        400,
        -1106,
        "Parameter 'quoteOrderQty' sent when not required.",
        True,
    ),
    Case(
        "neither orderId nor origClientOrderId",
        "GET",
        "/api/v3/order",
        {"symbol": "BTCUSDT"},
        400,
        -1102,
        "Param 'orderId' or 'origClientOrderId' must be sent, but both were empty/null!",
        True,
    ),
    Case(
        "empty optional parameter",
        "GET",
        "/api/v3/depth",
        {"symbol": "BTCUSDT", "limit": ""},
        400,
        -1105,
        "Parameter 'limit' was empty.",
    ),
    Case(
        "empty newClientOrderId",
        "POST",
        "/api/v3/order",
        order(newClientOrderId=""),
        400,
        -1118,
        "New client order ID was empty.",
        True,
    ),
    Case(
        "empty origClientOrderId",
        "DELETE",
        "/api/v3/order",
        {"symbol": "BTCUSDT", "origClientOrderId": ""},
        400,
        -1119,
        "Original client order ID was empty.",
        True,
    ),
    # malformed values
    Case(
        "illegal chars in symbol",
        "GET",
        "/api/v3/depth",
        {"symbol": "BTC USDT"},
        400,
        -1100,
        f"Illegal characters found in parameter 'symbol'; legal range is '{SYMBOL_LEGAL}'.",
    ),
    Case(
        "lower-case symbol",
        "GET",
        "/api/v3/ticker/price",
        {"symbol": "btcusdt"},
        400,
        -1100,
        f"Illegal characters found in parameter 'symbol'; legal range is '{SYMBOL_LEGAL}'.",
    ),
    Case(
        "exponent in quantity",
        "POST",
        "/api/v3/order",
        order(quantity="1e-3"),
        400,
        -1100,
        f"Illegal characters found in parameter 'quantity'; legal range is '{DECIMAL_LEGAL}'.",
        True,
    ),
    Case(
        "negative price",
        "POST",
        "/api/v3/order",
        order(price="-30000"),
        400,
        -1100,
        f"Illegal characters found in parameter 'price'; legal range is '{DECIMAL_LEGAL}'.",
        True,
    ),
    Case(
        "letters in limit",
        "GET",
        "/api/v3/trades",
        {"symbol": "BTCUSDT", "limit": "ten"},
        400,
        -1100,
        f"Illegal characters found in parameter 'limit'; legal range is '{INT_LEGAL}'.",
    ),
    Case(
        "letters in orderId",
        "GET",
        "/api/v3/order",
        {"symbol": "BTCUSDT", "orderId": "x1"},
        400,
        -1100,
        f"Illegal characters found in parameter 'orderId'; legal range is '{INT_LEGAL}'.",
        True,
    ),
    Case(
        "too much precision in price",
        "POST",
        "/api/v3/order",
        order(price="30000.123456789"),
        400,
        -1111,
        "Parameter 'price' has too much precision.",
        True,
    ),
    Case(
        "too much precision in quantity",
        "POST",
        "/api/v3/order/test",
        order(quantity="0.000000001"),
        400,
        -1111,
        "Parameter 'quantity' has too much precision.",
        True,
    ),
    Case(
        "integer overflow",
        "GET",
        "/api/v3/depth",
        {"symbol": "BTCUSDT", "limit": "9" * 20},
        400,
        -1108,
        "Parameter 'limit' overflowed.",
    ),
    Case(
        "limit out of range",
        "GET",
        "/api/v3/trades",
        {"symbol": "BTCUSDT", "limit": 1001},
        400,
        -1130,
        "Data sent for parameter 'limit' is not valid.",
    ),
    Case(
        "bad ticker type",
        "GET",
        "/api/v3/ticker/24hr",
        {"symbol": "BTCUSDT", "type": "TINY"},
        400,
        -1130,
        "Data sent for parameter 'type' is not valid.",
    ),
    Case(
        "symbols not JSON",
        "GET",
        "/api/v3/ticker/24hr",
        {"symbols": "BTCUSDT"},
        400,
        -1135,
        "JSON sent for parameter 'symbols' is not valid",
    ),
    Case(
        "symbol listed twice",
        "GET",
        "/api/v3/ticker/bookTicker",
        {"symbols": '["BTCUSDT","BTCUSDT"]'},
        400,
        -1151,
        "Symbol is present multiple times in the list.",
    ),
    Case(
        "symbol and symbols",
        "GET",
        "/api/v3/ticker/price",
        {"symbol": "BTCUSDT", "symbols": '["BTCUSDT"]'},
        400,
        -1128,
        "Combination of optional parameters invalid.",
    ),
    Case(
        "aggTrades window over an hour",
        "GET",
        "/api/v3/aggTrades",
        {"symbol": "BTCUSDT", "startTime": 0, "endTime": 3_600_001},
        400,
        -1127,
        "More than 1 hours between startTime and endTime.",
    ),
    # enums
    Case("bad side", "POST", "/api/v3/order", order(side="LONG"), 400, -1117, "Invalid side.", True),
    Case("bad order type", "POST", "/api/v3/order", order(type="LIMITED"), 400, -1116, "Invalid orderType.", True),
    Case(
        "bad timeInForce", "POST", "/api/v3/order", order(timeInForce="GTX"), 400, -1115, "Invalid timeInForce.", True
    ),
    Case(
        "timeInForce on MARKET",
        "POST",
        "/api/v3/order",
        order(MARKET_BUY, timeInForce="GTC"),
        400,
        -1114,
        "TimeInForce parameter sent when not required.",
        True,
    ),
    Case(
        "price on MARKET",
        "POST",
        "/api/v3/order",
        order(MARKET_BUY, price="30000"),
        400,
        -1106,
        "Parameter 'price' sent when not required.",
        True,
    ),
    Case(
        "iceberg",
        "POST",
        "/api/v3/order",
        order(icebergQty="0.0005"),
        400,
        -1014,
        "Unsupported order combination.",
        True,
    ),
    # parameters nobody reads, and repeated ones
    Case(
        "unknown parameter",
        "GET",
        "/api/v3/ping",
        {"foo": "1"},
        400,
        -1104,
        "Not all sent parameters were read; read '0' parameter(s) but was sent '1'.",
    ),
    Case(
        "unknown parameter next to known ones",
        "GET",
        "/api/v3/depth",
        {"symbol": "BTCUSDT", "depth": 5},
        400,
        -1104,
        "Not all sent parameters were read; read '1' parameter(s) but was sent '2'.",
    ),
    Case(
        "unknown order parameter",
        "POST",
        "/api/v3/order",
        order(MARKET_BUY, leverage="3"),
        400,
        -1104,
        "Not all sent parameters were read; read '6' parameter(s) but was sent '7'.",
        True,
    ),
    Case(
        "duplicate parameter",
        "GET",
        "/api/v3/depth",
        [("symbol", "BTCUSDT"), ("symbol", "ETHUSDT")],
        400,
        -1101,
        "Duplicate values for a parameter detected.",
    ),
    Case(
        "duplicate signed parameter",
        "GET",
        "/api/v3/openOrders",
        [("symbol", "BTCUSDT"), ("symbol", "BTCUSDT")],
        400,
        -1101,
        "Duplicate values for a parameter detected.",
        True,
    ),
    # timing security
    Case(
        "recvWindow over 60000",
        "GET",
        "/api/v3/account",
        {"recvWindow": 60001},
        400,
        -1102,
        "'recvWindow' contains unexpected value. Cannot be greater than 60000.",
        True,
    ),
    Case(
        "recvWindow zero",
        "GET",
        "/api/v3/account",
        {"recvWindow": 0},
        400,
        -1130,
        "Data sent for parameter 'recvWindow' is not valid.",
        True,
    ),
    Case(
        "recvWindow below a microsecond",
        "GET",
        "/api/v3/account",
        {"recvWindow": "5000.0001"},
        400,
        -1111,
        "Parameter 'recvWindow' has too much precision.",
        True,
    ),
    Case(
        "timestamp not a number",
        "GET",
        "/api/v3/account",
        {"timestamp": "now"},
        400,
        -1100,
        f"Illegal characters found in parameter 'timestamp'; legal range is '{INT_LEGAL}'.",
        True,
    ),
    # orders the matching engine refuses
    Case(
        "GET unknown order",
        "GET",
        "/api/v3/order",
        {"symbol": "BTCUSDT", "orderId": 987654321},
        400,
        -2013,
        "Order does not exist.",
        True,
    ),
    Case(
        "GET unknown client order id",
        "GET",
        "/api/v3/order",
        {"symbol": "ETHBTC", "origClientOrderId": "no-such"},
        400,
        -2013,
        "Order does not exist.",
        True,
    ),
    Case(
        "cancel unknown order",
        "DELETE",
        "/api/v3/order",
        {"symbol": "BTCUSDT", "orderId": 987654321},
        400,
        -2011,
        "Unknown order sent.",
        True,
    ),
    Case(
        "cancel all without open orders",
        "DELETE",
        "/api/v3/openOrders",
        {"symbol": "BNBUSDT"},
        400,
        -2011,
        "Unknown order sent.",
        True,
    ),
    Case(
        "insufficient balance",
        "POST",
        "/api/v3/order",
        order(quantity="100", price="60000"),
        400,
        -2010,
        "Account has insufficient balance for requested action.",
        True,
    ),
    Case(
        "price off the tick",
        "POST",
        "/api/v3/order",
        order(price="30000.001"),
        400,
        -1013,
        "Filter failure: PRICE_FILTER",
        True,
    ),
    Case(
        "price above maxPrice",
        "POST",
        "/api/v3/order/test",
        order(price="2000000"),
        400,
        -1013,
        "Filter failure: PRICE_FILTER",
        True,
    ),
    Case(
        "quantity below minQty",
        "POST",
        "/api/v3/order",
        order(quantity="0.000001"),
        400,
        -1013,
        "Filter failure: LOT_SIZE",
        True,
    ),
    Case(
        "market quantity above the market max",
        "POST",
        "/api/v3/order",
        order(MARKET_BUY, quantity="200"),
        400,
        -1013,
        "Filter failure: MARKET_LOT_SIZE",
        True,
    ),
    Case(
        "notional below the minimum",
        "POST",
        "/api/v3/order",
        order(quantity="0.0001", price="30000"),
        400,
        -1013,
        "Filter failure: MIN_NOTIONAL",
        True,
    ),
    Case(
        "notional above the maximum",
        "POST",
        "/api/v3/order",
        order(quantity="1000", price="10000"),
        400,
        -1013,
        "Filter failure: NOTIONAL",
        True,
    ),
    # routes that do not exist
    Case("unknown path", "GET", "/api/v3/nothing", {}, 404, -1020, "This operation is not supported."),
    Case("unknown version", "GET", "/api/v9/ping", {}, 404, -1020, "This operation is not supported."),
    Case(
        "wrong method",
        "POST",
        "/api/v3/ticker/price",
        {"symbol": "BTCUSDT"},
        405,
        -1020,
        "This operation is not supported.",
    ),
    Case("wrong method on a signed path", "PUT", "/api/v3/order", {}, 405, -1020, "This operation is not supported."),
    Case("OPTIONS", "OPTIONS", "/api/v3/ping", {}, 405, -1020, "This operation is not supported."),
    Case("framework docs page", "GET", "/docs", {}, 404, -1020, "This operation is not supported."),
    Case("framework OpenAPI file", "GET", "/docs/openapi.json", {}, 404, -1020, "This operation is not supported."),
]


def send(px, case: Case):
    if not case.signed:
        return px.http.request(case.method, px.url + case.path, params=case.params, timeout=10)
    if isinstance(case.params, list):  # repeated names: sign the exact query by hand
        query = urlencode(case.params + [("timestamp", int(time.time() * 1000))])
        return px.http.request(
            case.method,
            f"{px.url}{case.path}?{query}&signature={px.sign(query)}",
            headers={"X-MBX-APIKEY": px.key},
            timeout=10,
        )
    return px.signed(case.method, case.path, **case.params)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_request_gets_binance_error(paper, case):
    assert_error(send(paper, case), case.status, case.code, case.msg)


# -- API key and signature ------------------------------------------------------------------------


def signed_url(px, path: str, params: dict, secret: str | None = None) -> str:
    query = urlencode({"timestamp": int(time.time() * 1000), **params})
    return f"{px.url}{path}?{query}&signature={px.sign(query, secret)}"


@pytest.mark.parametrize(
    "headers, code, msg",
    [
        ({}, -2014, "API-key format invalid."),
        ({"X-MBX-APIKEY": ""}, -2014, "API-key format invalid."),
        ({"X-MBX-APIKEY": "not a key!"}, -2014, "API-key format invalid."),
        ({"X-MBX-APIKEY": "A" * 64}, -2015, "Invalid API-key, IP, or permissions for action."),
    ],
    ids=["no key", "empty key", "malformed key", "unknown key"],
)
@pytest.mark.parametrize("method, path", [("GET", "/api/v3/account"), ("POST", "/api/v3/userDataStream")])
def test_api_key_refused(paper, headers, code, msg, method, path):
    resp = paper.http.request(
        method,
        signed_url(paper, path, {}) if path.endswith("account") else paper.url + path,
        headers=headers,
        timeout=10,
    )
    assert_error(resp, 401, code, msg)


def test_bad_signature(paper):
    wrong_secret = paper.http.get(
        signed_url(paper, "/api/v3/account", {}, secret="x" * 64), headers={"X-MBX-APIKEY": paper.key}
    )
    assert_error(wrong_secret, 400, -1022, "Signature for this request is not valid.")
    tampered = signed_url(paper, "/api/v3/openOrders", {"symbol": "BTCUSDT"}).replace("BTCUSDT", "ETHUSDT")
    assert_error(
        paper.http.get(tampered, headers={"X-MBX-APIKEY": paper.key}),
        400,
        -1022,
        "Signature for this request is not valid.",
    )
    missing = paper.http.get(
        paper.url + "/api/v3/account",
        params={"timestamp": int(time.time() * 1000)},
        headers={"X-MBX-APIKEY": paper.key},
    )
    assert_error(missing, 400, -1102, mandatory("signature"))
    no_timestamp = paper.http.get(
        f"{paper.url}/api/v3/account?recvWindow=5000&signature={paper.sign('recvWindow=5000')}",
        headers={"X-MBX-APIKEY": paper.key},
    )
    assert_error(no_timestamp, 400, -1102, mandatory("timestamp"))


@pytest.mark.parametrize(
    "offset_ms, recv_window, msg",
    [
        (-10_000, None, "Timestamp for this request is outside of the recvWindow."),
        (-3_000, 2_000, "Timestamp for this request is outside of the recvWindow."),
        (5_000, None, "Timestamp for this request was 1000ms ahead of the server's time."),
        (1_500, 60_000, "Timestamp for this request was 1000ms ahead of the server's time."),
    ],
    ids=["old", "older than recvWindow", "ahead", "ahead whatever the recvWindow"],
)
def test_timestamp_outside_window(paper, offset_ms, recv_window, msg):
    params = {"timestamp": int(time.time() * 1000) + offset_ms}
    if recv_window is not None:
        params["recvWindow"] = recv_window
    assert_error(paper.signed("GET", "/api/v3/account", **params), 400, -1021, msg)


def test_recv_window_accepts_microseconds_and_timestamp_in_microseconds(paper):
    # rest-api.md: recvWindow is a DECIMAL with up to three places; timestamps may be microseconds.
    assert paper.signed("GET", "/api/v3/account", recvWindow="5000.125").status_code == 200
    assert paper.signed("GET", "/api/v3/account", recvWindow=60000).status_code == 200
    assert paper.signed("GET", "/api/v3/account", timestamp=int(time.time() * 1_000_000)).status_code == 200
    stale_us = int(time.time() * 1_000_000) - 10_000_000
    assert_error(
        paper.signed("GET", "/api/v3/account", timestamp=stale_us),
        400,
        -1021,
        "Timestamp for this request is outside of the recvWindow.",
    )


TEST_ORDER = [
    ("symbol", "BTCUSDT"),
    ("side", "BUY"),
    ("type", "LIMIT"),
    ("timeInForce", "GTC"),
    ("quantity", "0.001"),
    ("price", "30000"),
]


def post_test_order(px, query: str, body: str):
    url = f"{px.url}/api/v3/order/test" + (f"?{query}" if query else "")
    return px.http.post(
        url,
        data=body.encode(),
        timeout=10,
        headers={"X-MBX-APIKEY": px.key, "Content-Type": "application/x-www-form-urlencoded"},
    )


@pytest.mark.parametrize("split", [0, 3, len(TEST_ORDER) + 1], ids=["all in body", "split", "all in query"])
def test_same_signed_request_in_query_body_or_both(paper, split):
    params = TEST_ORDER + [("recvWindow", "5000"), ("timestamp", str(int(time.time() * 1000)))]
    query, body = urlencode(params[:split]), urlencode(params[split:])
    # rest-api.md: the signature covers the query string and the body concatenated without a separator.
    signature = paper.sign(query + body)
    if body:
        body += f"&signature={signature}"
    else:
        query += f"&signature={signature}"
    resp = post_test_order(paper, query, body)
    assert resp.status_code == 200, resp.text
    assert resp.json() == {}


def test_split_request_signed_with_a_separator_is_refused(paper):
    params = TEST_ORDER + [("timestamp", str(int(time.time() * 1000)))]
    query, body = urlencode(params[:3]), urlencode(params[3:])
    resp = post_test_order(paper, query, f"{body}&signature={paper.sign(query + '&' + body)}")
    assert_error(resp, 400, -1022, "Signature for this request is not valid.")


def test_signature_covers_the_percent_encoded_bytes(paper):
    # Since 2026-01-15 Binance signs the payload as sent, percent-encoded; a signature computed over
    # the decoded text is refused.
    params = TEST_ORDER + [("newClientOrderId", "grid:1/a"), ("timestamp", str(int(time.time() * 1000)))]
    encoded = urlencode(params)
    assert "grid%3A1%2Fa" in encoded
    decoded = "&".join(f"{k}={v}" for k, v in params)
    refused = post_test_order(paper, "", f"{encoded}&signature={paper.sign(decoded)}")
    assert_error(refused, 400, -1022, "Signature for this request is not valid.")
    accepted = post_test_order(paper, "", f"{encoded}&signature={paper.sign(encoded)}")
    assert accepted.status_code == 200, accepted.text


def test_query_string_wins_over_body(paper):
    # rest-api.md: a parameter sent in both places is taken from the query string (not a duplicate).
    timestamp = str(int(time.time() * 1000))
    query = urlencode([("symbol", "NOPEUSDT"), ("timestamp", timestamp)])
    body = urlencode([("symbol", "BTCUSDT"), ("side", "BUY"), ("type", "MARKET"), ("quantity", "0.001")])
    resp = post_test_order(paper, f"{query}&signature={paper.sign(query + body)}", body)
    assert_error(resp, 400, -1121, "Invalid symbol.")


# -- no 500s, no HTML -----------------------------------------------------------------------------

MALFORMED = [
    b"GET /api/v3/ping HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    b"NONSENSE\r\n\r\n",
    b"POST /api/v3/order/test HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
]


@pytest.mark.parametrize("raw", MALFORMED, ids=["bad content-length", "no request line", "bad chunk"])
def test_malformed_http_is_a_json_4xx(paper, raw):
    with socket.create_connection(("127.0.0.1", paper.port), timeout=5) as sock:
        sock.sendall(raw)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    status = int(head.split()[1])
    assert 400 <= status < 500, reply[:300]
    assert b"content-type: application/json" in head.lower()
    assert set(json.loads(body)) == {"code", "msg"}


def test_head_is_refused_not_crashed(paper):
    resp = paper.http.head(paper.url + "/api/v3/ping", timeout=10)
    assert resp.status_code == 405  # a HEAD reply has no body to check


def test_non_utf8_body(paper):
    resp = paper.http.post(
        paper.url + "/api/v3/order/test",
        data=b"symbol=\xff\xfe",
        headers={"X-MBX-APIKEY": paper.key, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert error_body(resp)["code"] == -1100


# -- a rejected order changes nothing ------------------------------------------------------------


def snapshot(px) -> dict:
    account = px.signed("GET", "/api/v3/account").json()
    return {
        "balances": account["balances"],
        "open": px.signed("GET", "/api/v3/openOrders").json(),
        "orders": px.admin("GET", "orders").json(),
        "totals": px.admin("GET", "totals").json(),
    }


def test_rejected_orders_change_nothing(fresh_paper):
    px = fresh_paper
    px.pause()
    resting = px.signed("POST", "/api/v3/order", **order(newClientOrderId="keep-1"))
    assert resting.status_code == 200, resting.text
    before = snapshot(px)
    assert len(before["open"]) == 1

    rejections = [
        (
            order(quantity="100", price="60000", newClientOrderId="rej-balance"),
            -2010,
            "Account has insufficient balance for requested action.",
        ),
        (
            order(MARKET_BUY, side="SELL", quantity="50", newClientOrderId="rej-sell"),
            -2010,
            "Account has insufficient balance for requested action.",
        ),
        (order(newClientOrderId="keep-1"), -2010, "Duplicate order sent."),
        (
            order(type="LIMIT_MAKER", timeInForce=None, price="200000", newClientOrderId="rej-maker"),
            -2010,
            "Order would immediately match and take.",
        ),
        (order(price="30000.005", newClientOrderId="rej-tick"), -1013, "Filter failure: PRICE_FILTER"),
        (order(quantity="0.0001", newClientOrderId="rej-notional"), -1013, "Filter failure: MIN_NOTIONAL"),
        (order(side="HOLD", newClientOrderId="rej-side"), -1117, "Invalid side."),
    ]
    for params, code, msg in rejections:
        assert_error(px.signed("POST", "/api/v3/order", **params), 400, code, msg)
    assert_error(
        px.signed("DELETE", "/api/v3/order", symbol="BTCUSDT", orderId=resting.json()["orderId"] + 99),
        400,
        -2011,
        "Unknown order sent.",
    )

    assert snapshot(px) == before
    for params, _, _ in rejections:
        if params["newClientOrderId"] != "keep-1":
            assert_error(
                px.signed("GET", "/api/v3/order", symbol="BTCUSDT", origClientOrderId=params["newClientOrderId"]),
                400,
                -2013,
                "Order does not exist.",
            )
