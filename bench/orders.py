"""Order path cost and throughput, each beside the floor of its own architecture measured in the same run.

    python bench/orders.py [--repeat 3] [--requests 300] [--orders 3000] [--clients 4] [--concurrency 4]
                           [--pool prefork]

Each repetition measures, with one sequential client and small MARKET orders alternating sides:
- direct: a signed `POST /api/v3/order` to the paper exchange, as the worker sends it;
- bare Celery: `delay().get()` of a task that returns its argument, on a bare Celery app
  (bench/_bare_celery.py) over the same Redis, its worker started with the same pool and concurrency;
- sync order: the gateway's `POST /api/v1/order` in sync mode (web → Redis → Celery worker → paper →
  job event → answer). Target: p50 ≤ 1.25 × (bare Celery p50 + direct p50);
- async: `--orders` orders submitted with `Prefer: respond-async` by `--clients` processes, timed from
  the first job created to the last one final (every job must end), paper limits relaxed. Floor: the
  same number of no-op tasks LPUSHed as the web enqueues orders (services/contract/tasks.task_message), timed
  until the bare worker pool has taken and acked them all. Target: orders/s ≥ 0.5 × no-op tasks/s.
Prints one JSON object; `figures` holds every repetition's values beside its floor (bench/report.py
reads them). Needs Redis at REDIS_URL (`make bench` provides one). Traffic goes to 127.0.0.1 only;
counts are bounded.
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
    return jwt.encode(
        {"sub": "bench", "role": "trader", "iat": now, "exp": now + 3600, "jti": uuid.uuid4().hex, "typ": "access"},
        SECRET,
        algorithm="HS256",
    )


def start_worker(paper_url: str, redis_url: str, prefix: str, pool: str, concurrency: int) -> subprocess.Popen:
    """The worker as tests/processes.WorkerProcess starts it, in its own process group."""
    env = {
        **os.environ,
        "SPOTGATE_MODE": "paper",
        "BINANCE_API_URL": paper_url,
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": prefix,
        "LOG_LEVEL": "WARNING",
    }
    return _celery_worker("workers.celery_app", "orders,default", "bench", pool, concurrency, ROOT, env)


def _celery_worker(app: str, queues: str, name: str, pool: str, concurrency: int, cwd, env) -> subprocess.Popen:
    """`celery worker` for `app` on `queues`, quiet, in its own process group (stop_worker stops it)."""
    command = [
        *(sys.executable, "-m", "celery", "-A", app, "worker", "-Q", queues),
        *("-P", pool, "-c", str(concurrency), "-l", "WARNING", "-n", f"{name}-{uuid.uuid4().hex[:8]}@%h"),
        *("--without-gossip", "--without-mingle", "--without-heartbeat"),
    ]
    return subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )


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
    query = (
        f"symbol={order['symbol']}&side={order['side']}&type=MARKET&quantity={order['quantity']}"
        f"&newClientOrderId=d{uuid.uuid4().hex[:20]}&newOrderRespType=FULL"
        f"&timestamp={int(time.time() * 1000)}&recvWindow=5000"
    )
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
        for raw in client.mget(keys[start : start + 500]):
            if raw:
                job = orjson.loads(raw)
                jobs[job["id"]] = job
    return jobs


def start_bare_worker(redis_url: str, prefix: str, pool: str, concurrency: int) -> subprocess.Popen:
    env = {**os.environ, "BARE_CELERY_REDIS_URL": redis_url, "BARE_CELERY_PREFIX": prefix}
    return _celery_worker("_bare_celery", "bare", "bare", pool, concurrency, HERE, env)


def bare_round_trips(n: int) -> list[float]:
    """`delay().get()` of bare.echo, sequentially: the Celery round trip over Redis and nothing else."""
    import _bare_celery

    latencies = []
    for i in range(n):
        started = time.perf_counter()
        if _bare_celery.echo.delay(i).get(timeout=30) != i:
            raise RuntimeError("bare Celery echo answered something else")
        latencies.append(time.perf_counter() - started)
    return latencies


def noop_drain(client: redis.Redis, prefix: str, n: int) -> float:
    """Tasks/s at which the bare worker pool takes and acks `n` no-op tasks LPUSHed as the web does."""
    from services.contract.tasks import task_message

    queue, unacked = f"{prefix}{_bare_queue()}", f"{prefix}unacked"
    messages = [task_message("bare.noop", [], _bare_queue()) for _ in range(n)]
    started = time.perf_counter()
    with client.pipeline(transaction=False) as pipe:
        for start in range(0, n, 500):
            pipe.lpush(queue, *messages[start : start + 500])
        pipe.execute()
    deadline = time.monotonic() + FINAL_WAIT
    while client.llen(queue) or client.hlen(unacked):
        if time.monotonic() > deadline:
            raise RuntimeError(f"no-op tasks not drained after {FINAL_WAIT} s")
        time.sleep(0.002)
    return n / (time.perf_counter() - started)


def _bare_queue() -> str:
    import _bare_celery

    return _bare_celery.QUEUE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="repetitions of every measurement")
    parser.add_argument("--requests", type=int, default=300, help="sequential orders per latency series")
    parser.add_argument("--orders", type=int, default=3000, help="orders in the async throughput run")
    parser.add_argument("--clients", type=int, default=4, help="submitting client processes")
    parser.add_argument("--concurrency", type=int, default=4, help="worker -c")
    parser.add_argument("--pool", default="prefork", choices=("prefork", "threads", "solo"), help="worker -P")
    args = parser.parse_args()
    args.orders = min(args.orders, MAX_ORDERS)
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    prefix = f"sgbench:{uuid.uuid4().hex}:"
    bare_prefix = f"sgbench:{uuid.uuid4().hex}:bare:"
    os.environ["BARE_CELERY_REDIS_URL"], os.environ["BARE_CELERY_PREFIX"] = redis_url, bare_prefix
    client = redis.Redis.from_url(redis_url)

    paper, paper_url = start_paper(env={"PAPER_BALANCES": BALANCES})
    worker = bare_worker = web = None
    reps = []
    try:
        worker = start_worker(paper_url, redis_url, prefix, args.pool, args.concurrency)
        bare_worker = start_bare_worker(redis_url, bare_prefix, args.pool, args.concurrency)
        # The async run queues thousands of MARKET orders at once on purpose: none may reach its
        # time-to-live (ORDER_TTL_MARKET) while the queue drains, or it would measure expiries.
        web, web_url = start_web(
            paper_url, redis_url, {"JWT_SECRET": SECRET, "REDIS_KEY_PREFIX": prefix, "ORDER_TTL_MARKET": "600"}
        )
        headers = {"Authorization": f"Bearer {token()}", "Content-Type": "application/json"}

        def gateway_order(i: int, extra: dict | None = None):
            return "POST", "/api/v1/order", orjson.dumps(market(i)), {**headers, **(extra or {})}

        sequential(web_url, gateway_order, 20, 201)  # warm up: worker forks, caches, connections
        sequential(paper_url, direct_order, 20, 200)
        bare_round_trips(20)
        noop_drain(client, bare_prefix, 200)
        for _ in range(args.repeat):
            # interleaved, so a floor and its figure see the same machine
            direct = sequential(paper_url, direct_order, args.requests, 200)
            bare = bare_round_trips(args.requests)
            via = sequential(web_url, gateway_order, args.requests, 201)
            wait_drained(client, prefix, time.monotonic() + FINAL_WAIT)

            before = set(job_records(client, prefix))
            submitted = run_load(
                web_url,
                lambda i: gateway_order(i, {"Prefer": "respond-async"}),
                args.clients,
                60.0,
                max_requests=args.orders,
                ok_status=202,
            )
            wait_drained(client, prefix, time.monotonic() + FINAL_WAIT)
            jobs = [job for job_id, job in job_records(client, prefix).items() if job_id not in before]
            drain = noop_drain(client, bare_prefix, len(jobs) or args.orders)
            # From the first job created to the last one turning final (both stamped by our processes).
            elapsed = (max(j["updatedAt"] for j in jobs) - min(j["createdAt"] for j in jobs)) / 1000
            outcomes = {status: sum(1 for j in jobs if j["status"] == status) for status in {j["status"] for j in jobs}}
            reps.append(
                {
                    "direct_paper": summarize(direct, sum(direct)),
                    "bare_celery": summarize(bare, sum(bare)),
                    "gateway_sync": summarize(via, sum(via)),
                    "async": {
                        "orders": len(jobs),
                        "submit_errors": submitted["errors"],
                        "submit_rps": submitted["rps"],
                        "seconds_until_all_final": round(elapsed, 3),
                        "orders_per_s": round(len(jobs) / elapsed, 1),
                        "jobs": outcomes,
                        "all_final": all(j["status"] in ("succeeded", "failed") for j in jobs),
                        "noop_tasks_per_s": round(drain, 1),
                    },
                }
            )
            print(json.dumps(reps[-1]), file=sys.stderr)
    finally:
        for proc in (web, paper):
            if proc is not None:
                stop(proc)
        for proc in (worker, bare_worker):
            if proc is not None:
                stop_worker(proc)
        delete_prefix(client, prefix)
        delete_prefix(client, bare_prefix)
        client.close()

    figures = [
        {
            "id": "sync_order_p50",
            "label": "sync order p50 (gateway)",
            "unit": "ms",
            "values": [r["gateway_sync"]["p50_ms"] for r in reps],
            "floor": {
                "label": "bare Celery delay().get() p50 + direct signed call p50",
                "values": [round(r["bare_celery"]["p50_ms"] + r["direct_paper"]["p50_ms"], 3) for r in reps],
            },
            "target": {"op": "<=", "ratio": 1.25},
        },
        {
            "id": "async_orders_per_s",
            "label": "async orders/s until every job is final",
            "unit": "/s",
            "values": [r["async"]["orders_per_s"] for r in reps],
            "floor": {
                "label": "no-op tasks/s drained by the same pool, enqueued as the web does",
                "values": [r["async"]["noop_tasks_per_s"] for r in reps],
            },
            "target": {"op": ">=", "ratio": 0.5},
            "valid": all(r["async"]["all_final"] for r in reps),
        },
    ]
    print(
        json.dumps(
            {
                "benchmark": "orders",
                "machine": {"cpus": os.cpu_count()},
                "worker": {"pool": args.pool, "concurrency": args.concurrency},
                "requests": args.requests,
                "orders": args.orders,
                "clients": args.clients,
                "repetitions": reps,
                "figures": figures,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
