"""Redis restart: Redis stopped and started again on the same port with its data (as a managed
Redis's maintenance restart does) while the web process, the worker with its embedded beat and the
stream relay keep running. Nothing is restarted but Redis.

During the outage every REST request is answered at once with 503 + Retry-After (never a hang), and
each WebSocket client is either kept or closed with 1013 "try again later". Afterwards, without a
restart of anything: a client (reconnected if it was closed) gets tickers again, a sync order is
placed (web + worker), and a scheduled order is released (beat).
"""

from __future__ import annotations

import time
import uuid

import pytest
from websockets.exceptions import ConnectionClosed

from tests.e2e.conftest import System
from tests.soak.support import RestartableRedis, scan_logs
from tests.support import wait_until

TRY_AGAIN_LATER = 1013  # the web tier's close code when Redis is unavailable (README "WebSocket API")


def ticker_after(client, after_ms: int, timeout: float) -> dict:
    return client.until(
        lambda m: m["type"] == "ticker" and m["data"]["updatedAt"] > after_ms, timeout, "a fresh ticker"
    )


def order(system: System, body: dict, timeout: float = 30):
    return system.web.http.post(
        system.web.url + "/api/v1/order",
        json=body,
        timeout=timeout,
        headers={"Authorization": f"Bearer {system.web.token('trader')}"},
    )


def wait_succeeded(system: System, job_id: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        answer = system.web.get(f"/api/v1/jobs/{job_id}", role="trader")
        # right after a restart a web process's pool may still be reconnecting: 503 + Retry-After
        assert answer.status_code in (200, 503), answer.text
        job = answer.json().get("data") or {}
        if job.get("status") == "succeeded":
            return
        assert time.monotonic() < deadline and job.get("status") != "failed", answer.text
        time.sleep(0.2)


def restart_cycle(system: System, redis_server: RestartableRedis, down_for: float) -> None:
    market = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.001"}
    client = system.connect("/ws/ticker/btcusdt")
    first = ticker_after(client, 0, 20)
    assert order(system, market).status_code == 201

    redis_server.stop()
    down_at = time.monotonic()
    answers = []
    while time.monotonic() - down_at < down_for:
        for send in (
            lambda: order(system, market, timeout=10),
            lambda: system.web.get("/api/v1/account", role="trader"),
            lambda: system.web.get("/api/v1/ticker/price", symbol="BTCUSDT"),
        ):
            started = time.monotonic()
            answer = send()
            answers.append((answer, time.monotonic() - started))
    refused = [a for a, _ in answers if a.status_code != 200]
    assert refused, "no request went out during the outage"
    for answer, took in answers:
        # a ticker may still be served from the web process's own cache; anything needing Redis is a 503
        assert answer.status_code == 200 or (answer.status_code == 503 and "Retry-After" in answer.headers), (
            answer.status_code,
            answer.text,
        )
        assert took < 10, f"a request during the outage took {took:.1f} s"
    assert any(a.status_code == 503 for a in refused)

    redis_server.start()
    try:
        ticker_after(client, first["data"]["updatedAt"], 30)
    except ConnectionClosed as closed:
        assert closed.rcvd is not None and closed.rcvd.code == TRY_AGAIN_LATER, closed
        client.ws.close()
        client = system.connect("/ws/ticker/btcusdt")
        ticker_after(client, first["data"]["updatedAt"], 30)
    finally:
        client.ws.close()

    deadline = time.monotonic() + 30
    while True:  # the first requests after the restart may still meet a reconnecting pool
        placed = order(system, market)
        if placed.status_code in (201, 202) or time.monotonic() > deadline:
            break
        assert placed.status_code == 503 and "Retry-After" in placed.headers, placed.text
        time.sleep(float(placed.headers["Retry-After"]))
    assert placed.status_code in (201, 202), placed.text  # 202: the worker was still reconnecting
    wait_succeeded(system, placed.json()["data"].get("jobId") or placed.json()["data"]["id"])

    scheduled = order(system, {**market, "executeAt": int(time.time() * 1000) + 1500})
    assert scheduled.status_code == 202, scheduled.text
    wait_succeeded(system, scheduled.json()["data"]["id"])  # beat released it

    for name, process in (("web", system.web), ("worker", system.worker), ("relay", system.relay)):
        assert process.proc.poll() is None, f"the {name} process exited"


def run(cycles: int, down_for: float) -> None:
    redis_server = RestartableRedis()
    system = System(redis_server.url, seed=29, relay_env={"STREAM_SYMBOLS": "BTCUSDT"})
    try:
        for _ in range(cycles):
            restart_cycle(system, redis_server, down_for)
        scan_logs(web=system.web, worker=system.worker, relay=system.relay, redis=redis_server.log_text())
    finally:
        system.stop()
        redis_server.close()


@pytest.mark.timeout(120)
def test_an_order_answered_while_redis_is_down_is_finished_once_redis_is_back_not_left_running():
    """The exchange answers an order while Redis is down, so the worker cannot record the outcome:
    the worker waits for Redis, then the job's next run looks the order up by its client order id
    and the job succeeds with that order within seconds of the restart (not only after the sweep's
    JOB_REDRIVE_AFTER, 120 s by default), and the exchange has exactly one order."""
    redis_server = RestartableRedis()
    system = System(redis_server.url, seed=31)
    try:
        # the exchange holds the order request for 1 s before placing it and answering: into the outage
        latency_ms = 1000
        rule = {"kind": "latency", "latency_ms": latency_ms, "count": 1, "method": "POST", "path": "/api/v3/order"}
        assert system.paper.admin("POST", "faults", rule).status_code == 201
        client_id = f"rr-{uuid.uuid4().hex[:12]}"
        body = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.001", "clientOrderId": client_id}
        accepted = system.web.http.post(
            system.web.url + "/api/v1/order",
            json=body,
            timeout=10,
            headers={"Authorization": f"Bearer {system.web.token('trader')}", "Prefer": "respond-async"},
        )
        assert accepted.status_code == 202, accepted.text
        job_id = accepted.json()["data"]["id"]

        def on_exchange() -> list[dict]:
            return [o for o in system.paper.admin("GET", "orders").json() if o["clientOrderId"] == client_id]

        # the rule retires once it fired: the worker's request is then being held by the exchange
        wait_until(lambda: system.paper.admin("GET", "faults").json() == [], 15, "the order request at the exchange")
        redis_server.stop()  # the worker is still waiting for the exchange's answer
        wait_until(on_exchange, 10, "the order on the paper exchange")
        # the outage goes on: the worker has its answer and cannot record it, for longer than the
        # Redis client's own retries (about 4 s) last
        time.sleep(8)
        redis_server.start()
        back = time.monotonic()
        wait_succeeded(system, job_id, timeout=20)
        assert time.monotonic() - back < 20
        job = system.web.get(f"/api/v1/jobs/{job_id}", role="trader").json()["data"]
        assert job["order"]["clientOrderId"] == client_id
        assert [o["orderId"] for o in on_exchange()] == [job["order"]["orderId"]]
        assert system.worker.proc.poll() is None, "the worker exited"
        scan_logs(web=system.web, worker=system.worker, redis=redis_server.log_text())
    finally:
        system.stop()
        redis_server.close()


@pytest.mark.timeout(150)
def test_redis_restart_every_process_recovers_and_the_outage_is_503_not_a_hang():
    run(cycles=1, down_for=3.0)


@pytest.mark.soak
@pytest.mark.timeout(900)
def test_redis_restarted_ten_times_every_process_recovers_each_time():
    run(cycles=10, down_for=5.0)
