"""Paper exchange throughput and latency: the baseline later gateway benchmarks compare against.

    python bench/paper_exchange.py [--repeat 3] [--clients 4] [--seconds 3]

Prints one JSON object: for `/api/v3/ping` (the bare-server baseline of the same run),
`/api/v3/ticker/price` and signed `POST /api/v3/order` (small MARKET orders, alternating sides),
requests/s with p50/p99 latency in ms. Traffic goes to a paper exchange on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _loadgen import run_load, start_paper, stop  # noqa: E402

from paper_exchange.config import DEMO_API_KEY, DEMO_API_SECRET  # noqa: E402


def ping(i: int):
    return "GET", "/api/v3/ping", None, {}


def ticker(i: int):
    return "GET", "/api/v3/ticker/price?symbol=BTCUSDT", None, {}


def order(i: int):
    side = "BUY" if i % 2 == 0 else "SELL"
    query = (
        f"symbol=BTCUSDT&side={side}&type=MARKET&quantity=0.0002&newOrderRespType=RESULT"
        f"&timestamp={int(time.time() * 1000)}"
    )
    signature = hmac.new(DEMO_API_SECRET.encode(), query.encode(), hashlib.sha256).hexdigest()
    body = f"{query}&signature={signature}".encode()
    headers = {"X-MBX-APIKEY": DEMO_API_KEY, "Content-Type": "application/x-www-form-urlencoded"}
    return "POST", "/api/v3/order", body, headers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    proc, url = start_paper(env={"PAPER_BALANCES": "USDT:100000000,BTC:1000"})
    reps = []
    try:
        for _ in range(args.repeat):
            reps.append(
                {
                    name: run_load(url, factory, args.clients, args.seconds)
                    for name, factory in (("ping", ping), ("ticker_price", ticker), ("order_market", order))
                }
            )
    finally:
        stop(proc)
    results = reps[-1]
    base = results["ping"]["rps"] or 1
    ping_rps = [r["ping"]["rps"] for r in reps]
    figures = [
        {
            "id": f"paper_{name}_rps",
            "label": label,
            "unit": "req/s",
            "values": [r[name]["rps"] for r in reps],
            "floor": {"label": "paper exchange `ping` req/s", "values": ping_rps},
            "target": None,
        }
        for name, label in (
            ("ticker_price", "paper exchange `ticker/price` req/s"),
            ("order_market", "paper exchange signed MARKET order req/s"),
        )
    ]
    print(
        json.dumps(
            {
                "benchmark": "paper_exchange",
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                "clients": args.clients,
                "seconds": args.seconds,
                "results": results,
                "repetitions": reps,
                "figures": figures,
                "relative_to_ping": {name: round(r["rps"] / base, 3) for name, r in results.items()},
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
