"""`GET /metrics` as Prometheus scrapes it: it moves with what users do, it holds every process of the
deployment (web, worker, stream relay) in one answer, it adds up Sanic's workers, and it is closed to
those without the token where it must be."""

from __future__ import annotations

import pytest
import requests

from tests.e2e.conftest import System
from tests.processes import TEST_JWT_SECRET, WebProcess

from .conftest import FAST_REPORTS, Scrape, json_lines, scrape, scrape_until

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def system(redis_url):
    s = System(redis_url, seed=23, worker_env=FAST_REPORTS, web_env=FAST_REPORTS, relay_env=FAST_REPORTS)
    yield s
    s.stop()


def _ready(result: Scrape) -> bool:
    return all(result.processes(role) for role in ("web", "worker", "stream"))


def test_one_scrape_holds_every_process_and_moves_with_traffic(system):
    web = system.web
    before = scrape_until(web, _ready, 60, "reports of the web, worker and stream processes")
    (worker,) = before.processes("worker")
    (stream,) = before.processes("stream")

    viewer = web.token("viewer")
    for _ in range(5):
        assert web.get("/api/v1/ticker/price", token=viewer, symbol="BTCUSDT").status_code == 200
    order = system.web.http.post(
        web.url + "/api/v1/order",
        timeout=30,
        json={"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.001"},
        headers={"Authorization": f"Bearer {web.token('trader')}"},
    )
    assert order.status_code == 201, order.text
    with system.connect("/ws/ticker/btcusdt") as client:
        client.open(["ticker:BTCUSDT"])
        for _ in range(3):
            client.until(lambda m: m["type"] == "ticker", 15, "a ticker")
        connected = scrape(web)
    # the other processes' reports arrive every METRICS_PUSH_INTERVAL: the one after the order, and one of
    # the relay's after the tickers the client got (a ticker is one of several upstream message kinds)
    after = scrape_until(
        web,
        lambda r: (
            r.total("spotgate_order_jobs_total", outcome="succeeded", process=worker)
            > before.total("spotgate_order_jobs_total", outcome="succeeded", process=worker)
            and r.total("spotgate_stream_messages_total", process=stream)
            > before.total("spotgate_stream_messages_total", process=stream)
        ),
        30,
        "the worker's report of the order and the relay's of newer messages",
    )

    def moved(name, **labels):
        return after.total(name, **labels) - before.total(name, **labels)

    # the web process's own series
    assert moved("spotgate_http_requests_total", route="/api/v1/ticker/price", method="GET", status="200") == 5
    assert moved("spotgate_http_request_duration_seconds_count", route="/api/v1/ticker/price", method="GET") == 5
    assert moved("spotgate_http_requests_total", route="/api/v1/order", method="POST", status="201") == 1
    assert moved("spotgate_tasks_published_total", task="orders.place") == 1
    assert moved("spotgate_ws_deliveries_total", kind="ticker") >= 3
    assert moved("spotgate_ws_connections_opened_total") == 1
    assert connected.total("spotgate_ws_connections") == 1
    # the worker's, through Redis
    assert moved("spotgate_order_jobs_total", outcome="succeeded", process=worker) == 1
    assert moved("spotgate_order_job_duration_seconds_count", outcome="succeeded", process=worker) == 1
    assert moved("spotgate_upstream_requests_total", endpoint="POST /api/v3/order", status="200", process=worker) == 1
    assert moved("spotgate_worker_tasks_total", task="orders.place", outcome="succeeded", process=worker) == 1
    # the stream relay's
    assert moved("spotgate_stream_messages_total", process=stream) > 0
    assert after.total("spotgate_stream_connections", link="market", process=stream) >= 1
    assert after.total("spotgate_stream_lag_seconds_count", process=stream) > 0
    # state read from Redis at scrape time
    assert {s.labels["queue"] for s in after.samples if s.name == "spotgate_celery_queue_length"} == {
        "orders",
        "default",
    }
    assert after.total("spotgate_upstream_weight_limit") > 0
    # the connection is gone once the client closed
    scrape_until(web, lambda r: r.total("spotgate_ws_connections") == 0, 30, "the closed WebSocket")


def test_a_second_web_process_scrapes_the_same_deployment(system):
    """Heroku routes a scrape to any web dyno: each answers for all of them."""
    other = system.start_web(**FAST_REPORTS)
    first = system.web
    own = scrape(first).processes("web")[0]
    assert other.get("/nope").status_code == 404
    seen = scrape_until(first, lambda r: len(r.processes("web")) == 2, 30, "the second web process's report")
    (second,) = [p for p in seen.processes("web") if p != own]
    assert seen.total("spotgate_http_requests_total", route="unmatched", process=second) == 1
    assert scrape(other).processes("worker") == seen.processes("worker")


def test_web_concurrency_2_counts_both_workers(paper, redis_url):
    """`sanic --workers 2` (WEB_CONCURRENCY=2): each worker's requests are in the count whichever
    worker answers the scrape (prometheus_client's multiprocess mode)."""
    web = WebProcess(paper.url, redis_url, workers=2, LOG_FORMAT="json", LOG_LEVEL="INFO")
    try:
        sent, pids = 0, set()
        while len(pids) < 2 and sent < 400:
            # a new connection each time, so the kernel hands requests to either worker
            assert requests.get(web.url + "/nope", headers={"Connection": "close"}, timeout=10).status_code == 404
            sent += 1
            if sent % 10 == 0:
                pids = {line["pid"] for line in json_lines(web.log_text()) if line.get("route") == "unmatched"}
        assert len(pids) == 2, f"all {sent} requests went to one worker"
        totals = set()
        for _ in range(6):
            answer = requests.get(web.url + "/metrics", headers={"Connection": "close"}, timeout=10)
            totals.add(Scrape(answer.text).total("spotgate_http_requests_total", route="unmatched"))
        assert totals == {sent}
    finally:
        web.stop()


def test_metrics_need_the_token_when_one_is_set(paper, redis_url):
    token = "metrics-token-" + "y" * 16
    web = WebProcess(paper.url, redis_url, METRICS_TOKEN=token)
    try:
        missing = requests.get(web.url + "/metrics", timeout=10)
        wrong = requests.get(web.url + "/metrics", headers={"Authorization": "Bearer nope"}, timeout=10)
        for answer in (missing, wrong):
            assert answer.status_code == 401
            assert answer.json()["error"]["code"] == "METRICS_TOKEN_INVALID"
        # a JWT, even an admin's, is not the metrics token
        admin = requests.get(
            web.url + "/metrics", headers={"Authorization": f"Bearer {web.token('admin')}"}, timeout=10
        )
        assert admin.status_code == 401
        result = scrape(web, token)
        assert result.total("spotgate_auth_failures_total", code="METRICS_TOKEN_INVALID", transport="http") == 3
        assert token not in web.log_text()
    finally:
        web.stop()


def test_live_mode_without_a_token_refuses_metrics(paper, redis_url):
    web = WebProcess(paper.url, redis_url, SPOTGATE_MODE="live", JWT_SECRET=TEST_JWT_SECRET)
    try:
        answer = requests.get(web.url + "/metrics", timeout=10)
        assert answer.status_code == 403
        assert answer.json()["error"]["code"] == "METRICS_TOKEN_REQUIRED"
    finally:
        web.stop()


def test_websocket_metrics_count_deliveries_slow_clients_and_token_failures(paper, redis_url):
    """The fan-out's counters, with the relay stood in for (tests.ws): what a slow client and a bad token
    do shows in the scrape."""
    from tests.ws.conftest import Gateway

    gateway = Gateway(paper, redis_url)
    try:
        with gateway.connect("/ws/user?token=not-a-jwt") as refused:
            assert refused.next("error")["code"] == "TOKEN_INVALID"
            assert refused.close_code()[0] == 4401
        relay = gateway.relay
        slow = gateway.connect("/ws", rcvbuf=4096, max_queue=1)
        with gateway.connect("/ws/trades/btcusdt", max_queue=None) as fast, slow:
            fast.open(["trades:BTCUSDT"])
            slow.next("welcome")
            slow.send({"type": "subscribe", "channels": ["trades:BTCUSDT", "ticker:ETHBTC"]})
            slow.next("subscribed")
            published = 0
            while relay.subscribers("ticker:ETHBTC"):  # publish until the slow client is cut
                assert published < 2000, "the slow client was never cut"
                for _ in range(20):
                    relay.trade("BTCUSDT", published, padding=16_000)
                    published += 1
            for trade_id in range(published):
                assert fast.next("trade", timeout=10)["data"]["id"] == trade_id
            assert slow.close_code()[0] == 4008
            during = scrape(gateway.web)
        scrape_until(gateway.web, lambda r: r.total("spotgate_ws_connections") == 0, 10, "both clients gone")
    finally:
        gateway.stop()
    assert during.total("spotgate_ws_slow_client_closes_total") == 1
    assert during.total("spotgate_auth_failures_total", code="TOKEN_INVALID", transport="ws") == 1
    assert published <= during.total("spotgate_ws_deliveries_total", kind="trades") <= 2 * published
    assert during.total("spotgate_ws_connections") == 1  # the fast client, still connected
    assert during.total("spotgate_ws_connections_opened_total") == 3
