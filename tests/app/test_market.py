"""Market data through the gateway: what a dashboard or bot sees (real web process, Redis, paper exchange)."""

from __future__ import annotations

import concurrent.futures
import itertools
import time

import orjson
import pytest
import redis
import requests

from services.contract.keys import Keys
from tests.processes import WebProcess
from tests.support import wait_until


def test_price_with_a_token_is_fast_and_enveloped(gateway, upstream):
    started = time.monotonic()
    answer = gateway.get("/api/v1/ticker/price", symbol="BTCUSDT")
    assert time.monotonic() - started < 1.0
    assert answer.status_code == 200
    body = answer.json()
    assert body["data"]["symbol"] == "BTCUSDT" and float(body["data"]["price"]) > 0
    assert abs(body["timestamp"] - time.time() * 1000) < 5000
    assert body["requestId"] == answer.headers["X-Request-ID"]
    direct = upstream.get("/api/v3/ticker/price", symbol="BTCUSDT").json()["price"]
    assert abs(float(body["data"]["price"]) / float(direct) - 1) < 0.01


def test_symbols_are_case_insensitive_and_lists_work(gateway):
    assert gateway.get("/api/v1/ticker/price", symbol="btcusdt").json()["data"]["symbol"] == "BTCUSDT"
    rows = gateway.get("/api/v1/ticker/price", symbols="BTCUSDT,ethusdt").json()["data"]
    assert sorted(r["symbol"] for r in rows) == ["BTCUSDT", "ETHUSDT"]
    everything = gateway.get("/api/v1/ticker/price").json()["data"]
    assert {"BTCUSDT", "ETHUSDT", "BNBUSDT", "ETHBTC"} <= {r["symbol"] for r in everything}


def test_klines_come_as_named_candles(gateway):
    answer = gateway.get("/api/v1/klines", symbol="BTCUSDT", interval="1m", limit=100)
    candles = answer.json()["data"]
    assert answer.status_code == 200 and len(candles) == 100
    first = candles[0]
    assert set(first) >= {"openTime", "open", "high", "low", "close", "volume", "closeTime", "quoteVolume", "trades"}
    assert isinstance(first["open"], str) and isinstance(first["openTime"], int)
    assert all(a["openTime"] < b["openTime"] for a, b in itertools.pairwise(candles))


@pytest.mark.parametrize("interval, limit", [("1h", 100), ("1m", 1000), ("1d", 1000)])
def test_seed_scenario_klines_are_full_pages(gateway, interval, limit):
    # GET /api/v1/klines?symbol=BTCUSDT&interval=1h&limit=100, as a new user tries it first
    answer = gateway.get("/api/v1/klines", symbol="BTCUSDT", interval=interval, limit=limit)
    candles = answer.json()["data"]
    assert answer.status_code == 200 and len(candles) == limit
    length = candles[1]["openTime"] - candles[0]["openTime"]
    assert all(b["openTime"] - a["openTime"] == length for a, b in itertools.pairwise(candles))
    older = gateway.get(
        "/api/v1/klines", symbol="BTCUSDT", interval=interval, limit=limit, endTime=candles[0]["openTime"] - 1
    ).json()["data"]
    assert len(older) == limit and older[-1]["openTime"] == candles[0]["openTime"] - length


def test_depth_trades_24hr_book_ticker_exchange_info_symbols(gateway):
    depth = gateway.get("/api/v1/depth", symbol="ETHUSDT", limit=5).json()["data"]
    assert len(depth["bids"]) == 5 and float(depth["bids"][0][0]) < float(depth["asks"][0][0])
    trades = gateway.get("/api/v1/trades", symbol="ETHUSDT", limit=20).json()["data"]
    assert len(trades) == 20 and {"id", "price", "qty", "time"} <= set(trades[0])
    stats = gateway.get("/api/v1/ticker/24hr", symbol="ETHUSDT").json()["data"]
    assert stats["symbol"] == "ETHUSDT" and float(stats["volume"]) > 0
    book = gateway.get("/api/v1/ticker/bookTicker", symbol="ETHUSDT").json()["data"]
    assert float(book["bidPrice"]) < float(book["askPrice"])
    info = gateway.get("/api/v1/exchangeInfo", symbol="ETHBTC").json()["data"]
    assert [s["symbol"] for s in info["symbols"]] == ["ETHBTC"]
    usdt = gateway.get("/api/v1/symbols", quoteAsset="usdt").json()["data"]
    assert {s["symbol"] for s in usdt} == {"BTCUSDT", "ETHUSDT", "BNBUSDT", "币安人生USDT"}
    assert usdt[0]["tickSize"] and usdt[0]["stepSize"] and usdt[0]["minNotional"]


@pytest.mark.parametrize(
    "path,params,field",
    [
        ("/api/v1/ticker/price", {"symbol": "INVALID"}, "symbol"),
        ("/api/v1/klines", {"symbol": "INVALID", "interval": "1m"}, "symbol"),
        ("/api/v1/klines", {"symbol": "BTCUSDT", "interval": "7m"}, "interval"),
        ("/api/v1/klines", {"symbol": "BTCUSDT", "interval": "1m", "limit": 1001}, "limit"),
        ("/api/v1/klines", {"symbol": "BTCUSDT", "interval": "1m", "limit": "ten"}, "limit"),
        ("/api/v1/depth", {"symbol": "BTCUSDT", "limit": 0}, "limit"),
        ("/api/v1/depth", {}, "symbol"),
        ("/api/v1/ticker/price", {"symbols": "BTCUSDT,NOPE"}, "symbols"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(gateway, path, params, field):
    answer = gateway.get(path, **params)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["details"]["field"] == field
    assert field in error["message"] or "symbol" in error["message"].lower()
    if params.get("symbol") == "INVALID":
        assert "INVALID" in error["message"] and error["code"] == "INVALID_SYMBOL"


def test_no_token_is_401_and_health_is_open(gateway):
    answer = gateway.get("/api/v1/ticker/price", token="", symbol="BTCUSDT")
    assert answer.status_code == 401 and answer.json()["error"]["code"].startswith("TOKEN")
    assert requests.get(gateway.url + "/health", timeout=5).json()["data"]["status"] == "ok"
    ready = requests.get(gateway.url + "/health/ready", timeout=5).json()["data"]
    assert ready["checks"]["redis"]["ok"] and ready["checks"]["upstream"]["ok"]
    assert ready["checks"]["upstream"]["latencyMs"] >= 0


def test_status_reports_upstream_weight_and_clock(gateway):
    status = gateway.get("/api/v1/status").json()["data"]
    assert status["upstream"]["reachable"] and status["upstream"]["latencyMs"] >= 0
    assert status["weight"]["usedThisMinute"] >= 1
    assert "serverTimeOffsetMs" in status


def test_unknown_route_is_a_json_404(gateway):
    answer = gateway.get("/api/v1/nope")
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "NOT_FOUND"


def test_request_id_is_echoed(gateway):
    answer = requests.get(gateway.url + "/health", headers={"X-Request-ID": "abc-123"}, timeout=5)
    assert answer.headers["X-Request-ID"] == "abc-123" and answer.json()["requestId"] == "abc-123"


def test_upstream_429_becomes_429_with_retry_after(upstream, redis_url):
    web = WebProcess(upstream.url, redis_url)  # its own: the pause it causes is shared by design
    try:
        assert web.get("/api/v1/exchangeInfo").status_code == 200
        upstream.admin("POST", "faults", {"kind": "rate_limit", "path": "/api/v3/depth", "retry_after": 3, "count": 1})
        answer = web.get("/api/v1/depth", symbol="BNBUSDT", limit=7)
        assert answer.status_code == 429
        assert 1 <= int(answer.headers["Retry-After"]) <= 3
        assert answer.json()["error"]["code"] == "UPSTREAM_RATE_LIMITED"
        # the pause is shared: the next upstream call is refused without reaching Binance
        upstream.admin("DELETE", "faults")
        again = web.get("/api/v1/depth", symbol="BNBUSDT", limit=8)
        assert again.status_code == 429 and "Retry-After" in again.headers
    finally:
        web.stop()


def test_concurrent_identical_requests_make_one_upstream_call(gateway):
    def calls():
        return gateway.get("/api/v1/status").json()["data"]["upstream"]["calls"]

    before = calls()
    with concurrent.futures.ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(pool.map(lambda _: gateway.get("/api/v1/trades", symbol="BNBUSDT", limit=33), range(50)))
    assert all(a.status_code == 200 for a in answers)
    assert calls() - before <= 2  # one fetch (plus at most one if the TTL lapsed mid-burst)


def test_hundred_concurrent_requests_all_succeed(gateway):
    symbols = ["BTCUSDT", "ETHUSDT", "BNBUSDT", "ETHBTC"]
    with concurrent.futures.ThreadPoolExecutor(max_workers=100) as pool:
        answers = list(pool.map(lambda i: gateway.get("/api/v1/ticker/24hr", symbol=symbols[i % 4]), range(100)))
    assert [a.status_code for a in answers] == [200] * 100


def test_fresh_stream_ticker_is_served_from_redis(gateway, redis_url):
    conn = redis.Redis.from_url(redis_url)
    key = Keys(gateway.prefix).ticker("BNBUSDT")
    conn.set(key, orjson.dumps({"symbol": "BNBUSDT", "price": "123.45000000", "updatedAt": int(time.time() * 1000)}))
    try:
        assert gateway.get("/api/v1/ticker/price", symbol="BNBUSDT").json()["data"]["price"] == "123.45000000"
        conn.set(
            key,
            orjson.dumps({"symbol": "BNBUSDT", "price": "123.45000000", "updatedAt": int(time.time() * 1000) - 60_000}),
        )
        # once the 1 s REST cache entry lapses the next read decides afresh, and a stale stream ticker
        # is not what it serves
        wait_until(
            lambda: gateway.get("/api/v1/ticker/price", symbol="BNBUSDT").json()["data"]["price"] != "123.45000000",
            5,
            "the stale stream ticker replaced by the exchange's",
            interval=0.1,
        )
    finally:
        conn.delete(key)
        conn.close()


def test_upstream_slower_than_timeout_is_504(upstream, redis_url):
    web = WebProcess(upstream.url, redis_url, UPSTREAM_TIMEOUT="1")
    try:
        assert web.get("/api/v1/exchangeInfo").status_code == 200  # warm the symbol cache
        upstream.admin("POST", "faults", {"kind": "latency", "path": "/api/v3/klines", "latency_ms": 2500, "count": 1})
        started = time.monotonic()
        answer = web.get("/api/v1/klines", symbol="BTCUSDT", interval="5m", limit=3)
        assert answer.status_code == 504 and time.monotonic() - started < 2.5
        assert answer.json()["error"]["code"] == "UPSTREAM_TIMEOUT" and "Retry-After" in answer.headers
    finally:
        web.stop()


def test_spent_budget_answers_429_without_calling_binance(redis_url, spawn):
    from tests.processes import PaperProcess

    px = spawn(PaperProcess, seed=9, PAPER_WEIGHT_LIMIT="200")
    web = spawn(WebProcess, px.url, redis_url)
    statuses = [web.get("/api/v1/depth", symbol="BTCUSDT", limit=limit).status_code for limit in range(1, 60)]
    assert 429 in statuses
    refused = web.get("/api/v1/depth", symbol="BTCUSDT", limit=99)
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "UPSTREAM_BUDGET_SPENT"
    assert int(refused.headers["Retry-After"]) <= 60
    # Binance itself never had to refuse us
    used = int(px.get("/api/v3/ping").headers["X-MBX-USED-WEIGHT-1M"])
    assert used <= 200


def test_upstream_ban_becomes_503_for_everyone(upstream, redis_url):
    web = WebProcess(upstream.url, redis_url)
    try:
        assert web.get("/api/v1/exchangeInfo").status_code == 200
        upstream.admin("POST", "faults", {"kind": "error", "status": 418, "path": "/api/v3/trades", "count": 1})
        answer = web.get("/api/v1/trades", symbol="ETHBTC", limit=3)
        assert answer.status_code == 503 and answer.json()["error"]["code"] == "UPSTREAM_BANNED"
        assert int(answer.headers["Retry-After"]) > 0
        # while banned, nothing else goes upstream either
        other = web.get("/api/v1/depth", symbol="ETHBTC", limit=3)
        assert other.status_code == 503 and other.json()["error"]["code"] == "UPSTREAM_BANNED"
    finally:
        web.stop()


def test_docs_describe_every_route_with_the_bearer_scheme(gateway):
    spec = requests.get(gateway.url + "/docs/openapi.json", timeout=10).json()
    assert "bearer" in spec["components"]["securitySchemes"]
    paths = spec["paths"]
    for path in (
        "/api/v1/ticker/price",
        "/api/v1/klines",
        "/api/v1/depth",
        "/api/v1/trades",
        "/api/v1/symbols",
        "/api/v1/exchangeInfo",
        "/api/v1/ticker/24hr",
        "/api/v1/ticker/bookTicker",
        "/health",
        "/health/ready",
        "/api/v1/status",
    ):
        operation = paths[path]["get"]
        assert "200" in operation["responses"], path
    assert paths["/api/v1/klines"]["get"]["security"] == [{"bearer": []}]
    assert requests.get(gateway.url + "/docs", timeout=10).status_code == 200


def test_unreachable_upstream_is_503(redis_url):
    from tests.processes import free_port

    web = WebProcess(f"http://127.0.0.1:{free_port()}", redis_url)
    try:
        answer = web.get("/api/v1/ticker/price", symbol="BTCUSDT")
        assert answer.status_code == 503 and answer.json()["error"]["code"] == "UPSTREAM_UNAVAILABLE"
        ready = requests.get(web.url + "/health/ready", timeout=10)
        assert ready.status_code == 503 and not ready.json()["data"]["checks"]["upstream"]["ok"]
    finally:
        web.stop()


def test_cors_preflight_allows_configured_origins(upstream, redis_url):
    web = WebProcess(upstream.url, redis_url, CORS_ORIGINS="https://dash.example")
    try:
        preflight = requests.options(
            web.url + "/api/v1/ticker/price",
            timeout=5,
            headers={
                "Origin": "https://dash.example",
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "authorization",
            },
        )
        assert preflight.status_code in (200, 204)
        assert preflight.headers["Access-Control-Allow-Origin"] == "https://dash.example"
        answer = web.http.get(
            web.url + "/api/v1/ticker/price",
            params={"symbol": "BTCUSDT"},
            timeout=5,
            headers={"Origin": "https://dash.example", "Authorization": f"Bearer {web.token()}"},
        )
        assert answer.headers["Access-Control-Allow-Origin"] == "https://dash.example"
        other = requests.options(
            web.url + "/api/v1/ticker/price",
            timeout=5,
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
        )
        assert other.headers.get("Access-Control-Allow-Origin") != "https://evil.example"
    finally:
        web.stop()
