"""Gateway REST overhead, measured against baselines taken in the same run.

    python bench/rest.py [--repeat 3] [--clients 4] [--seconds 3] [--latency-requests 1000]

Each measurement is repeated `--repeat` times, floors and figures interleaved. Prints one JSON object with:
- cached_ticker: a bare Sanic endpoint vs the gateway's cached `GET /api/v1/ticker/price` (auth,
  validation, envelope included) — req/s and their ratio (target ≥ 0.6);
- passthrough_klines: a direct paper exchange `klines` call vs the gateway's uncached `klines`
  (each request a distinct startTime, so every one goes upstream) — added p50/p99 (targets ≤ 1.5 ms /
  ≤ 5 ms), measured with one sequential client so queueing does not blur latency;
- coalescing: upstream calls the gateway made for 10,000 client requests on one symbol.
Needs Redis at REDIS_URL (`make bench` provides one). Traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import jwt
import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _loadgen import delete_prefix, free_port, run_load, start_paper, start_web, stop, summarize, wait_http  # noqa: E402

SECRET = "bench-only-jwt-secret-" + uuid.uuid4().hex


def token() -> str:
    now = int(time.time())
    return jwt.encode(
        {"sub": "bench", "role": "viewer", "iat": now, "exp": now + 3600, "jti": uuid.uuid4().hex, "typ": "access"},
        SECRET,
        algorithm="HS256",
    )


def sequential(url_for, n: int, headers: dict | None = None) -> list[float]:
    session = requests.Session()
    latencies = []
    for i in range(n):
        started = time.perf_counter()
        answer = session.get(url_for(i), headers=headers, timeout=10)
        latencies.append(time.perf_counter() - started)
        if answer.status_code != 200:
            raise RuntimeError(f"{url_for(i)} -> {answer.status_code} {answer.text[:200]}")
    session.close()
    return latencies


def upstream_calls(web_url: str, auth: dict) -> int:
    """The web process's count of upstream calls so far (GET /api/v1/status)."""
    return requests.get(f"{web_url}/api/v1/status", headers=auth, timeout=10).json()["data"]["upstream"]["calls"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--latency-requests", type=int, default=1000)
    args = parser.parse_args()
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    prefix = f"sgbench:{uuid.uuid4().hex}:"

    paper, paper_url = start_paper()
    bare_port = free_port()
    bare = subprocess.Popen(
        [sys.executable, str(HERE / "_bare_sanic.py"), str(bare_port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    web = None
    try:
        wait_http(f"http://127.0.0.1:{bare_port}/health", bare)
        # one client makes every pass-through call: its per-client weight quota must not be what is measured
        web, web_url = start_web(
            paper_url,
            redis_url,
            {"JWT_SECRET": SECRET, "REDIS_KEY_PREFIX": prefix, "CLIENT_WEIGHT_PER_MINUTE": "1000000000"},
        )
        auth = {"Authorization": f"Bearer {token()}"}

        start = int(time.time() * 1000) - 3_600_000
        reps = []
        for rep in range(args.repeat):
            bare_result = run_load(
                f"http://127.0.0.1:{bare_port}", lambda i: ("GET", "/ticker", None, {}), args.clients, args.seconds
            )
            gateway_result = run_load(
                web_url,
                lambda i: ("GET", "/api/v1/ticker/price?symbol=BTCUSDT", None, auth),
                args.clients,
                args.seconds,
            )
            # every request a startTime not asked before, so each one goes upstream
            offset = rep * 2 * args.latency_requests
            direct = sequential(
                lambda i, offset=offset: (
                    f"{paper_url}/api/v3/klines?symbol=BTCUSDT&interval=1m&limit=10&startTime={start + offset + i}"
                ),
                args.latency_requests,
            )
            via = sequential(
                lambda i, offset=offset: (
                    f"{web_url}/api/v1/klines?symbol=BTCUSDT&interval=1m&limit=10"
                    f"&startTime={start + offset + args.latency_requests + i}"
                ),
                args.latency_requests,
                auth,
            )
            direct_s, via_s = summarize(direct, sum(direct)), summarize(via, sum(via))
            reps.append(
                {
                    "bare_sanic": bare_result,
                    "gateway_ticker": gateway_result,
                    "ratio": round(gateway_result["rps"] / bare_result["rps"], 3) if bare_result["rps"] else None,
                    "direct_klines": direct_s,
                    "gateway_klines": via_s,
                    "added_p50_ms": round(via_s["p50_ms"] - direct_s["p50_ms"], 3),
                    "added_p99_ms": round(via_s["p99_ms"] - direct_s["p99_ms"], 3),
                }
            )
            print(json.dumps(reps[-1]), file=sys.stderr)

        calls_before = upstream_calls(web_url, auth)
        coalesce = run_load(
            web_url,
            lambda i: ("GET", "/api/v1/ticker/24hr?symbol=ETHUSDT", None, auth),
            args.clients,
            60.0,
            max_requests=10_000,
        )
        calls_after = upstream_calls(web_url, auth)
    finally:
        for proc in (web, bare, paper):
            if proc is not None:
                stop(proc)
        import redis

        client = redis.Redis.from_url(redis_url)
        delete_prefix(client, prefix)
        client.close()

    figures = [
        {
            "id": "rest_cached_ticker_rps",
            "label": "REST cached ticker/price req/s",
            "unit": "req/s",
            "values": [r["gateway_ticker"]["rps"] for r in reps],
            "floor": {"label": "bare Sanic JSON endpoint req/s", "values": [r["bare_sanic"]["rps"] for r in reps]},
            "target": {"op": ">=", "ratio": 0.6},
            "valid": all(r["gateway_ticker"]["errors"] == 0 for r in reps),
        },
        {
            "id": "rest_passthrough_added_p50",
            "label": "REST pass-through klines, added p50",
            "unit": "ms",
            "values": [r["added_p50_ms"] for r in reps],
            "floor": {
                "label": "direct paper exchange klines p50",
                "values": [r["direct_klines"]["p50_ms"] for r in reps],
            },
            "target": {"op": "<=", "value": 1.5},
        },
    ]
    print(
        json.dumps(
            {
                "benchmark": "rest",
                "machine": {"cpus": os.cpu_count()},
                "clients": args.clients,
                "seconds": args.seconds,
                "latency_requests": args.latency_requests,
                "repetitions": reps,
                "coalescing": {
                    "client_requests": coalesce["requests"],
                    "errors": coalesce["errors"],
                    "upstream_calls": calls_after - calls_before,
                    "upstream_calls_per_10k": round(
                        (calls_after - calls_before) * 10_000 / max(1, coalesce["requests"]), 1
                    ),
                },
                "figures": figures,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
