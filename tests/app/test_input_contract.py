"""What the gateway accepts, and how it refuses the rest: bounded integers, canonical forms only,
405 with Allow, 415 and 413 as JSON, and errors that always render (real web process, Redis, paper)."""

from __future__ import annotations

import logging
import uuid

import orjson
import pytest
import redis
from sanic import Sanic
from sanic_testing.reusable import ReusableClient

from app.errors import BadRequest, render, setup_errors
from app.observability import setup_observability
from config.settings import Settings
from tests.processes import free_port

HUGE = "99999999999999999999999"  # beyond 64 bits


def bearer(gateway, role: str) -> dict:
    return {"Authorization": f"Bearer {gateway.token(role)}"}


def assert_json_error(answer, status: int, code: str | None = None) -> dict:
    assert answer.status_code == status, answer.text
    assert answer.headers["Content-Type"].startswith("application/json"), answer.headers
    error = answer.json()["error"]
    if code is not None:
        assert error["code"] == code, error
    return error


# -- item 16: integers beyond 64 bits, and a renderer that cannot fail -----------------------------------


@pytest.mark.parametrize(
    "method, path, params",
    [
        ("GET", "/api/v1/order", {"symbol": "BTCUSDT", "orderId": HUGE}),
        ("DELETE", "/api/v1/order", {"symbol": "BTCUSDT", "orderId": HUGE}),
        ("GET", "/api/v1/allOrders", {"symbol": "BTCUSDT", "orderId": HUGE}),
        ("GET", "/api/v1/myTrades", {"symbol": "BTCUSDT", "fromId": HUGE}),
        ("GET", "/api/v1/myTrades", {"symbol": "BTCUSDT", "orderId": str(2**63)}),
        ("GET", "/api/v1/klines", {"symbol": "BTCUSDT", "interval": "1m", "startTime": HUGE}),
        ("GET", "/api/v1/klines", {"symbol": "BTCUSDT", "interval": "1m", "endTime": HUGE}),
    ],
)
def test_integers_beyond_64_bits_are_a_json_400_naming_the_field(gateway, method, path, params):
    answer = gateway.http.request(
        method, gateway.url + path, params=params, headers=bearer(gateway, "trader"), timeout=30
    )
    error = assert_json_error(answer, 400, "INVALID_PARAMETER")
    field = next(name for name in params if name != "symbol" and name != "interval")
    assert error["details"]["field"] == field and error["details"]["value"] == params[field]


def test_the_error_renderer_survives_details_it_cannot_encode():
    app = Sanic(f"render_{uuid.uuid4().hex[:8]}")

    @app.get("/")
    async def index(request):
        return render(request, BadRequest("bad", code="INVALID_PARAMETER", details={"value": 2**70}))

    with ReusableClient(app, port=free_port()) as client:  # a port of its own: the suite runs beside others
        _, answer = client.get("/")
    assert answer.status == 400 and answer.json["error"]["code"] == "INVALID_PARAMETER"
    assert answer.headers["content-type"] == "application/json"


def test_a_server_error_is_json_and_logged_once_with_its_request_id_and_traceback(caplog):
    # The gateway's own error handling on an app with a route that has a bug (none of ours can be
    # made to fail on purpose): request ids from app.observability, errors from app.errors.
    app = Sanic(f"crash_{uuid.uuid4().hex[:8]}")
    app.ctx.settings = Settings.from_env({})
    setup_observability(app)
    setup_errors(app)

    @app.get("/boom")
    async def boom(request):
        raise RuntimeError("a bug")

    with caplog.at_level(logging.ERROR, logger="spotgate.errors"), ReusableClient(app, port=free_port()) as client:
        _, answer = client.get("/boom", headers={"X-Request-ID": "crash-42"})
    assert answer.status == 500 and answer.json["error"] == {
        "code": "INTERNAL_ERROR",
        "message": "Internal error",
        "details": {},
    }
    assert answer.headers["X-Request-ID"] == "crash-42" and "a bug" not in answer.text
    records = [r for r in caplog.records if "crash-42" in r.getMessage()]
    assert len(records) == 1 and records[0].exc_info and records[0].exc_info[0] is RuntimeError


# -- item 17: job ids -------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [":order", ":order:x", "%20", "ABC"])
def test_a_malformed_job_id_is_a_400_even_when_a_key_of_that_name_exists(gateway, redis_url, suffix):
    job_id = uuid.uuid4().hex
    client = redis.Redis.from_url(redis_url)
    try:
        # The stream relay keeps an order's latest state beside its job, under job:<id>:order.
        client.set(f"{gateway.prefix}job:{job_id}:order", orjson.dumps({"orderId": 1, "updateTime": 1}), ex=60)
        answer = gateway.get(f"/api/v1/jobs/{job_id}{suffix}")
    finally:
        client.close()
    error = assert_json_error(answer, 400, "INVALID_PARAMETER")
    assert error["details"]["field"] == "job_id"
    assert_json_error(gateway.get(f"/api/v1/jobs/{job_id}"), 404, "JOB_NOT_FOUND")


# -- item 18: 405 with Allow, 415, canonical forms --------------------------------------------------------


@pytest.mark.parametrize(
    "method, path, allowed",
    [
        ("PATCH", "/api/v1/order", {"GET", "POST", "DELETE"}),
        ("PUT", "/api/v1/ticker/price", {"GET"}),
        ("POST", "/api/v1/risk/limits", {"GET", "PUT"}),
    ],
)
def test_405_names_the_allowed_methods(gateway, method, path, allowed):
    answer = gateway.http.request(method, gateway.url + path, headers=bearer(gateway, "admin"), timeout=10)
    assert_json_error(answer, 405, "METHOD_NOT_ALLOWED")
    listed = {m.strip() for m in answer.headers["Allow"].split(",")}
    assert allowed <= listed and method not in listed


@pytest.mark.parametrize(
    "method, path, role",
    [
        ("POST", "/api/v1/order", "trader"),
        ("PUT", "/api/v1/risk/limits", "admin"),
        ("POST", "/api/v1/admin/kill-switch", "admin"),
        ("POST", "/api/v1/auth/login", "viewer"),
        ("POST", "/api/v1/auth/tokens", "admin"),
    ],
)
@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_a_body_that_is_not_json_is_a_415(gateway, method, path, role, content_type):
    headers = {**bearer(gateway, role), **({"Content-Type": content_type} if content_type else {})}
    answer = gateway.http.request(method, gateway.url + path, data=b'{"engaged": true}', headers=headers, timeout=10)
    assert_json_error(answer, 415, "UNSUPPORTED_MEDIA_TYPE")
    kill = gateway.get("/api/v1/admin/kill-switch", role="admin").json()["data"]
    assert kill["engaged"] is False


def test_a_body_over_request_max_size_is_a_json_413(gateway):
    body = orjson.dumps(
        {
            "symbol": "BTCUSDT",
            "side": "BUY",
            "type": "MARKET",
            "quantity": "0.001",
            "clientOrderId": "x",
            "padding": "p" * 100_000,
        }
    )
    answer = gateway.http.post(
        gateway.url + "/api/v1/order",
        data=body,
        timeout=10,
        headers={**bearer(gateway, "trader"), "Content-Type": "application/json"},
    )
    error = assert_json_error(answer, 413, "PAYLOAD_TOO_LARGE")
    assert error["details"]["limit"] == 65536


ORDER = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.001", "price": "10000"}


@pytest.mark.parametrize(
    "change, field, code",
    [
        ({"quantity": " 0.001"}, "quantity", "INVALID_PARAMETER"),
        ({"quantity": "0.001 "}, "quantity", "INVALID_PARAMETER"),
        ({"quantity": "+0.001"}, "quantity", "INVALID_PARAMETER"),
        ({"quantity": "1e-3"}, "quantity", "INVALID_PARAMETER"),
        ({"quantity": "00.001"}, "quantity", "INVALID_PARAMETER"),
        ({"quantity": 0.001}, "quantity", "INVALID_PARAMETER"),
        ({"price": "10000\u0660"}, "price", "INVALID_PARAMETER"),
        ({"side": "buy"}, "side", "INVALID_PARAMETER"),
        ({"side": "\u017fell"}, "side", "INVALID_PARAMETER"),  # "ſell".upper() == "SELL"
        ({"type": "limit"}, "type", "INVALID_PARAMETER"),
        ({"timeInForce": "gtc"}, "timeInForce", "INVALID_PARAMETER"),
        ({"symbol": "btcu\u017fdt"}, "symbol", "INVALID_SYMBOL"),  # "btcuſdt".upper() == "BTCUSDT"
        ({"symbol": " BTCUSDT"}, "symbol", "INVALID_SYMBOL"),
        ({"stopprice": "1"}, "stopprice", "INVALID_PARAMETER"),  # a typo is not dropped silently
    ],
)
def test_only_canonical_order_fields_are_accepted(gateway, upstream, change, field, code):
    before = upstream.admin("GET", "orders").json()
    answer = gateway.http.post(
        gateway.url + "/api/v1/order", json={**ORDER, **change}, timeout=30, headers=bearer(gateway, "trader")
    )
    error = assert_json_error(answer, 400, code)
    assert error["details"]["field"] == field
    assert upstream.admin("GET", "orders").json() == before


@pytest.mark.parametrize("raw", ["+5", " 5", "5 ", "1_0", "\u0663", "05", "-1", "0x10"])
def test_only_canonical_integers_are_accepted(gateway, raw):
    error = assert_json_error(
        gateway.get("/api/v1/klines", symbol="BTCUSDT", interval="1m", limit=raw), 400, "INVALID_PARAMETER"
    )
    assert error["details"]["field"] == "limit"


def test_lowercase_ascii_symbols_still_fold(gateway):
    assert gateway.get("/api/v1/ticker/price", symbol="btcusdt").json()["data"]["symbol"] == "BTCUSDT"
    assert_json_error(gateway.get("/api/v1/ticker/price", symbol="btcu\u017fdt"), 400, "INVALID_SYMBOL")
    assert_json_error(gateway.get("/api/v1/ticker/price", symbols="BTCUSDT,btcu\u017fdt"), 400, "INVALID_SYMBOL")


# -- the OpenAPI document --------------------------------------------------------------------------------


def test_the_openapi_document_describes_bodies_statuses_and_bounds(gateway):
    doc = gateway.http.get(gateway.url + "/docs/openapi.json", timeout=10).json()
    assert doc["openapi"].startswith("3.1")
    order = doc["paths"]["/api/v1/order"]["post"]
    assert order["requestBody"]["required"] is True
    variants = order["requestBody"]["content"]["application/json"]["schema"]["oneOf"]
    listed = ["BNBUSDT", "BTCUSDT", "ETHBTC", "ETHUSDT", "币安人生USDT"]
    assert all(v["properties"]["symbol"]["enum"] == listed for v in variants)
    assert {"201", "202", "400", "401", "403", "413", "415", "429", "503"} <= set(order["responses"])
    klines = {p["name"]: p["schema"] for p in doc["paths"]["/api/v1/klines"]["get"]["parameters"]}
    assert klines["limit"] == {"type": "integer", "format": "int64", "minimum": 1, "maximum": 1000, "default": 500}
    assert klines["startTime"]["format"] == "int64" and klines["startTime"]["maximum"] <= 2**63 - 1
    text = orjson.dumps(doc).decode()
    assert "int32" not in text
    error = order["responses"]["400"]["content"]["application/json"]["schema"]["properties"]["error"]
    assert error["properties"]["details"] == {"type": "object"} and set(error["required"]) == {
        "code",
        "message",
        "details",
    }
    assert "security" not in doc["paths"]["/health"]["get"]
    assert doc["paths"]["/api/v1/risk/limits"]["put"]["security"] == [{"bearer": []}]
