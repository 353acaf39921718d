"""Order path cost and throughput, against a direct paper exchange call measured in the same run.

    python bench/orders.py [--requests 300] [--orders 3000] [--clients 4] [--concurrency 4] [--pool prefork]

Prints one JSON object with:
- sync_order: a direct signed `POST /api/v3/order` to the paper exchange vs the gateway's
  `POST /api/v1/order` in sync mode (web → Redis → Celery worker → paper → job event → answer), one
  sequential client, small MARKET orders alternating sides — added p50/p99 (targets ≤ 5 ms / ≤ 15 ms);
- async_throughput: `--orders` orders submitted with `Prefer: respond-async` by `--clients` processes,
  timed from the first submission until every job is final (target ≥ 500 orders/s), with paper
  limits relaxed; also the submission rate alone, and how many jobs failed.
The worker is started as `celery -A workers.celery_app worker -P <pool> -c <concurrency>`. Needs Redis
at REDIS_URL (`make bench` provides one). Traffic goes to 127.0.0.1 only; counts are bounded.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import http.client
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import jwt
import orjson
import redis

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from _loadgen import delete_prefix, run_load, start_paper, start_web, stop, summarize  # noqa: E402

from paper_exchange.config import DEMO_API_KEY, DEMO_API_SECRET  # noqa: E402

SECRET = "bench-only-jwt-secret-" + uuid.uuid4().hex
BALANCES = "USDT:1000000000,BTC:100000"
MAX_ORDERS = 20_000
FINAL_WAIT = 120.0  # seconds the async run may take to drain before the bench gives up


def token() -> str:
    now = int(time.time())
    return jwt.encode({"sub": "bench", "role": "trader", "iat": now, "exp": now + 3600, "jti": uuid.uuid4().hex,
                       "typ": "access"}, SECRET, algorithm="HS256")


def start_worker(paper_url: str, redis_url: str, prefix: str, pool: str, concurrency: int) -> subprocess.Popen:
    """The worker as tests/processes.WorkerProcess starts it, in its own process group."""
    env = {**os.environ, "SPOTGATE_MODE": "paper", "BINANCE_API_URL": paper_url, "REDIS_URL": redis_url,
           "REDIS_KEY_PREFIX": prefix, "LOG_LEVEL": "WARNING"}
    command = [sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker", "-Q", "orders,default",
               "-P", pool, "-c", str(concurrency), "-l", "WARNING", "-n", f"bench-{uuid.uuid4().hex[:8]}@%h",
               "--without-gossip", "--without-mingle", "--without-heartbeat"]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def stop_worker(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


def market(i: int) -> dict:
    return {"symbol": "BTCUSDT", "side": "BUY" if i % 2 == 0 else "SELL", "type": "MARKET", "quantity": "0.001"}


def direct_order(i: int) -> tuple[str, str, bytes | None, dict]:
    """What the worker sends: a signed MARKET order in the query string, FULL response."""
    order = market(i)
    query = (f"symbol={order['symbol']}&side={order['side']}&type=MARKET&quantity={order['quantity']}"
             f"&newClientOrderId=d{uuid.uuid4().hex[:20]}&newOrderRespType=FULL"
             f"&timestamp={int(time.time() * 1000)}&recvWindow=5000")
    signature = hmac.new(DEMO_API_SECRET.encode(), query.encode(), hashlib.sha256).hexdigest()
    return "POST", f"/api/v3/order?{query}&signature={signature}", None, {"X-MBX-APIKEY": DEMO_API_KEY}


def sequential(base: str, factory, n: int, expect: int) -> list[float]:
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    latencies = []
    try:
        for i in range(n):
            method, path, body, headers = factory(i)
            started = time.perf_counter()
            conn.request(method, path, body=body, headers=headers)
            answer = conn.getresponse()
            data = answer.read()
            latencies.append(time.perf_counter() - started)
            if answer.status != expect:
                raise RuntimeError(f"{method} {path[:60]} -> {answer.status} {data[:300]!r}")
    finally:
        conn.close()
    return latencies


def wait_drained(client: redis.Redis, prefix: str, deadline: float) -> None:
    """Wait until no job is open (queued or running)."""
    open_key = f"{prefix}jobs:open"
    while client.zcard(open_key):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{client.zcard(open_key)} jobs still open after {FINAL_WAIT} s")
        time.sleep(0.005)


def job_records(client: redis.Redis, prefix: str) -> dict[str, dict]:
    jobs: dict[str, dict] = {}
    keys = list(client.scan_iter(match=f"{prefix}job:*", count=1000))
    for start in range(0, len(keys), 500):
        for raw in client.mget(keys[start:start + 500]):
            if raw:
                job = orjson.loads(raw)
                jobs[job["id"]] = job
    return jobs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="sequential orders per latency series")
    parser.add_argument("--orders", type=int, default=3000, help="orders in the async throughput run")
    parser.add_argument("--clients", type=int, default=4, help="submitting client processes")
    parser.add_argument("--concurrency", type=int, default=4, help="worker -c")
    parser.add_argument("--pool", default="prefork", choices=("prefork", "threads", "solo"), help="worker -P")
    args = parser.parse_args()
    args.orders = min(args.orders, MAX_ORDERS)
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    prefix = f"sgbench:{uuid.uuid4().hex}:"
    client = redis.Redis.from_url(redis_url)

    paper, paper_url = start_paper(env={"PAPER_BALANCES": BALANCES})
    worker = web = None
    try:
        worker = start_worker(paper_url, redis_url, prefix, args.pool, args.concurrency)
        # The async run queues thousands of MARKET orders at once on purpose: none may reach its
        # time-to-live (ORDER_TTL_MARKET) while the queue drains, or it would measure expiries.
        web, web_url = start_web(paper_url, redis_url, {"JWT_SECRET": SECRET, "REDIS_KEY_PREFIX": prefix,
                                                        "ORDER_TTL_MARKET": "600"})
        headers = {"Authorization": f"Bearer {token()}", "Content-Type": "application/json"}

        def gateway_order(i: int, extra: dict | None = None):
            return "POST", "/api/v1/order", orjson.dumps(market(i)), {**headers, **(extra or {})}

        sequential(web_url, gateway_order, 20, 201)  # warm up: worker forks, caches, connections
        sequential(paper_url, direct_order, 20, 200)
        direct = sequential(paper_url, direct_order, args.requests, 200)
        via = sequential(web_url, gateway_order, args.requests, 201)
        direct_s, via_s = summarize(direct, sum(direct)), summarize(via, sum(via))
        wait_drained(client, prefix, time.monotonic() + FINAL_WAIT)

        before = set(job_records(client, prefix))
        submitted = run_load(web_url, lambda i: gateway_order(i, {"Prefer": "respond-async"}), args.clients, 60.0,
                             max_requests=args.orders, ok_status=202)
        wait_drained(client, prefix, time.monotonic() + FINAL_WAIT)
        jobs = [job for job_id, job in job_records(client, prefix).items() if job_id not in before]
    finally:
        for proc in (web, paper):
            if proc is not None:
                stop(proc)
        if worker is not None:
            stop_worker(worker)
        delete_prefix(client, prefix)
        client.close()

    # From the first job created to the last one turning final (both stamped by our processes).
    elapsed = (max(j["updatedAt"] for j in jobs) - min(j["createdAt"] for j in jobs)) / 1000
    outcomes = {status: sum(1 for j in jobs if j["status"] == status) for status in {j["status"] for j in jobs}}
    throughput = round(len(jobs) / elapsed, 1)
    added_p50 = round(via_s["p50_ms"] - direct_s["p50_ms"], 3)
    added_p99 = round(via_s["p99_ms"] - direct_s["p99_ms"], 3)
    print(json.dumps({
        "benchmark": "orders",
        "machine": {"cpus": os.cpu_count()},
        "worker": {"pool": args.pool, "concurrency": args.concurrency},
        "sync_order": {"direct_paper": direct_s, "gateway": via_s, "added_p50_ms": added_p50,
                       "added_p99_ms": added_p99, "targets_ms": {"p50": 5.0, "p99": 15.0},
                       "meets_target": added_p50 <= 5.0 and added_p99 <= 15.0},
        "async_throughput": {"orders": len(jobs), "submit_errors": submitted["errors"],
                             "clients": args.clients, "submit_rps": submitted["rps"],
                             "seconds_until_all_final": round(elapsed, 3), "orders_per_s": throughput,
                             "jobs": outcomes, "target_orders_per_s": 500, "meets_target": throughput >= 500},
    }, indent=2))


if __name__ == "__main__":
    main()
