"""Orders soak: mixed LIMIT/MARKET orders, sync and async, through the web process, Celery workers
and the paper exchange while ~30 % of sends fail (5xx, -1007 after placing, resets, 429 +
Retry-After, added latency), the worker is SIGKILLed twice and Redis is restarted once with its data.

The judge is the exchange's own order list: one order per accepted request (by client order id),
none doubled, none lost, none placed that no request asked for, and every job final and equal to
the exchange's order. The short form runs in `make test`; the long form (1,000 orders) in `make soak`.
"""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.orders.conftest import Stack
from tests.orders.test_exactly_once import (
    FAULTS,
    LONG_TTL,
    RELAXED,
    assert_placed_once,
    exchange_orders,
    market,
    wait_final,
)
from tests.soak.support import RestartableRedis, scan_logs

# The resting LIMITs are spread over three symbols: a symbol takes no new order at all (MARKET
# included) once 200 of the account's orders rest on it (MAX_NUM_ORDERS, filters.md), and the long
# form rests 500. Each quantity is well over the symbol's 5 USDT minimum notional at half the price.
RESTING = {"BTCUSDT": "0.001", "ETHUSDT": "0.01", "BNBUSDT": "0.1"}
SOAK_FAULTS = [*FAULTS, {"kind": "latency", "probability": 0.15, "latency_ms": 300}]


def submit(stack: Stack, body: dict, client_id: str, sync: bool, deadline: float) -> str:
    """Place one order as a careful client does: every retry (a 429 or 503 with Retry-After, a reset
    connection, a timeout) goes out under the same Idempotency-Key, so it can never make a second
    job. Returns the job id of the accepted request."""
    headers = {"Idempotency-Key": client_id, **({} if sync else {"Prefer": "respond-async"})}
    while True:
        assert time.monotonic() < deadline, f"{client_id} was never accepted"
        try:
            answer = stack.post("/api/v1/order", {**body, "clientOrderId": client_id}, headers=headers)
        except requests.RequestException:
            time.sleep(0.5)
            continue
        data = answer.json()
        if answer.status_code in (201, 202):
            return data["data"].get("jobId") or data["data"]["id"]
        job_id = data.get("error", {}).get("details", {}).get("jobId")
        if job_id:  # a sync request whose job failed: accepted, and judged below
            return job_id
        assert answer.status_code in (429, 503) and "Retry-After" in answer.headers, answer.text
        time.sleep(float(answer.headers["Retry-After"]))


def run_soak(orders: int, budget_s: float, disruptions: tuple[tuple[float, str], ...]) -> None:
    redis_server = RestartableRedis()
    stack = Stack(
        redis_server.url, paper_env=RELAXED, worker_env={"UPSTREAM_TIMEOUT": "4"}, web_env=LONG_TTL, concurrency=4
    )
    killed = []  # workers SIGKILLed; their logs are scanned too
    try:
        for rule in SOAK_FAULTS:
            added = stack.paper.admin("POST", "faults", {**rule, "method": "POST", "path": "/api/v3/order"})
            assert added.status_code == 201, added.text
        prices = {
            symbol: float(stack.paper.get("/api/v3/ticker/price", symbol=symbol).json()["price"]) for symbol in RESTING
        }
        run = uuid.uuid4().hex[:8]
        started = time.monotonic()
        deadline = started + budget_s
        bodies = {}
        for i in range(orders):
            side = "BUY" if i % 2 == 0 else "SELL"
            if i % 4 < 2:
                bodies[f"s{run}-{i}"] = market(side)
            else:  # a LIMIT far from the price: it rests, and its state is checked as NEW
                symbol = list(RESTING)[(i // 4) % len(RESTING)]
                limit = prices[symbol] * (0.5 if side == "BUY" else 2)
                bodies[f"s{run}-{i}"] = {
                    "symbol": symbol,
                    "side": side,
                    "type": "LIMIT",
                    "quantity": RESTING[symbol],
                    "price": f"{limit:.2f}",
                }
        accepted: dict[str, str] = {}
        lock = threading.Lock()

        def one(index_and_id):
            index, client_id = index_and_id
            job_id = submit(stack, bodies[client_id], client_id, sync=index % 3 == 0, deadline=deadline)
            with lock:
                accepted[client_id] = job_id

        # The disruptions happen while orders are going in: at a quarter, a half and three quarters.
        def disrupt():
            for at, action in disruptions:
                while len(accepted) < orders * at:
                    if time.monotonic() > deadline:
                        return
                    time.sleep(0.05)
                if action == "kill":
                    stack.worker.kill()
                    killed.append(stack.worker)
                    stack.restart_worker()
                else:
                    redis_server.restart(down_for=1.0)

        disruptor = threading.Thread(target=disrupt, daemon=True)
        disruptor.start()
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(one, enumerate(bodies)))
        disruptor.join(timeout=max(1.0, deadline - time.monotonic()))
        assert not disruptor.is_alive() and len(killed) == sum(a == "kill" for _, a in disruptions), (
            "the disruptions did not all happen"
        )

        # A run that lost Redis mid-order waits for it and runs the job again (services/placement.py):
        # no job waits for beat's sweep (JOB_REDRIVE_AFTER, 120 s), which the budget leaves no room for.
        jobs = wait_final(stack, list(accepted.values()), deadline)
        fired = sum(r["fired"] for r in stack.paper.admin("GET", "faults").json())
        assert fired >= orders * 0.25, f"only {fired} faults fired for {orders} orders"
        assert len(accepted) == orders
        assert_placed_once(stack, accepted, jobs)
        # nothing on the exchange that no accepted request asked for
        ours = {
            o["clientOrderId"]
            for o in stack.paper.admin("GET", "orders").json()
            if o["clientOrderId"].startswith(f"s{run}-")
        }
        assert ours == set(accepted)
        assert len(exchange_orders(stack, set(accepted))) == orders

        scan_logs(
            web=stack.web,
            worker=stack.worker,
            redis=redis_server.log_text(),
            **{f"killed worker {n + 1}": w for n, w in enumerate(killed)},
        )
    finally:
        for worker in killed:
            worker.stop()
        stack.stop()
        redis_server.close()


@pytest.mark.timeout(330)
def test_orders_soak_short_60_orders_faults_a_redis_restart_then_a_worker_kill():
    run_soak(60, budget_s=270, disruptions=((0.3, "redis"), (0.6, "kill")))


@pytest.mark.soak
@pytest.mark.timeout(1800)
def test_orders_soak_1000_orders_faults_two_worker_kills_and_a_redis_restart():
    # A kill, the restart while the killed run's orders are being redelivered, a kill. Killed runs come
    # back after the visibility timeout (beat's restore_unacked); runs that lose Redis wait for it and
    # run again; the sweep (JOB_REDRIVE_AFTER) is the last resort.
    run_soak(1000, budget_s=1500, disruptions=((0.25, "kill"), (0.5, "redis"), (0.75, "kill")))
