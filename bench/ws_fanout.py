"""WebSocket fan-out on one web process: deliveries/s, publish→receive latency, memory per connection.

    python bench/ws_fanout.py [--repeat 3] [--clients 10000] [--rate 24000] [--seconds 5] [--processes 4]
                              [--web-concurrency 2]

Each repetition: the bare baseline, then for each client count (comma-separated), a FRESH web process
(so RSS deltas are not hidden by memory freed earlier) gets that many `/ws/trades/btcusdt` sockets
from `--processes` client processes (bench/_ws_client.py:
an asyncio Protocol per socket under uvloop, so the load generator's own cost per frame stays small
next to the server's on the shared cores), then `P md:trades:BTCUSDT` receives trade messages as the stream relay
publishes them, paced to offer `--rate` deliveries/s (messages/s = rate / clients). Each message
carries its publish time; each client records receive time − publish time. Trades are never
conflated, so every message must reach every socket.

Baseline in the same run: a bare Sanic WebSocket app fanning out the same Redis channel with
`await ws.send()` per socket (bench/_bare_ws.py), at the largest client count. Then the largest count
once more on a web started as the Procfile starts WEB_CONCURRENCY=2 (`python -m app.serve --workers 2`:
two processes sharing the port, each with its own Redis reader; the kernel spreads the sockets).
Targets: p99 ≤ 0.5 × bare Sanic's; with two processes p99 ≤ 100 ms; ≤ 30 KB RSS per socket.

Prints JSON; `figures` holds every repetition's values beside its floor (bench/report.py reads them).
Loopback only, bounded durations; needs Redis (REDIS_URL, `make bench` provides one).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import resource
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from _loadgen import delete_prefix, free_port, start_paper, start_web, stop, wait_http  # noqa: E402

from services.contract.keys import Keys  # noqa: E402

MAX_SECONDS = 20.0
CONNECT_TIMEOUT = 120.0
DRAIN_SECONDS = 3.0


def raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # children (web, clients) inherit it
    return hard


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


# -- client processes ------------------------------------------------------------------------------------


def client_process(url: str, count: int, greeted: bool, conn) -> None:
    import uvloop

    uvloop.run(_clients(url, count, greeted, conn))


async def _clients(url: str, count: int, greeted: bool, conn) -> None:
    from urllib.parse import urlsplit

    from _ws_client import Fleet

    parts = urlsplit(url)
    fleet = Fleet(parts.hostname, parts.port, parts.path, greetings=2 if greeted else 0)
    try:
        await fleet.open(count)
    except Exception as exc:
        conn.send({"error": repr(exc), "opened": len(fleet.sockets)})
        return
    conn.send({"ready": len(fleet.sockets)})
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, conn.recv)  # "stop": the publisher is done
    expected = conn.recv()
    deadline = time.monotonic() + DRAIN_SECONDS
    while len(fleet.latencies) < expected * len(fleet.sockets) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)  # drain: bounded wait for in-flight deliveries
    conn.send({"received": len(fleet.latencies), "closed": fleet.closed, "latencies": fleet.latencies})
    fleet.close()


# -- one measurement ------------------------------------------------------------------------------------


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (a multi-worker web: Sanic's main process, its manager, its workers)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def socket_count(pid: int) -> int:
    count = 0
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                count += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
            except OSError:
                pass
    except OSError:
        pass
    return count


def measure(
    ws_url: str,
    server_pid: int,
    redis_client,
    channel: str,
    clients: int,
    rate: float,
    seconds: float,
    processes: int,
    greeted: bool = True,
) -> dict:
    ctx = mp.get_context("spawn")
    pipes, procs = [], []
    server_pids = process_tree(server_pid)

    def server_rss() -> int:
        return sum(rss(pid) for pid in server_pids if os.path.exists(f"/proc/{pid}"))

    def server_cpu() -> float:
        return sum(cpu_seconds(pid) for pid in server_pids if os.path.exists(f"/proc/{pid}"))

    before = server_rss()
    share = [clients // processes + (1 if i < clients % processes else 0) for i in range(processes)]
    for n in share:
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=client_process, args=(ws_url, n, greeted, child), daemon=True)
        proc.start()
        pipes.append(parent)
        procs.append(proc)
    try:
        opened = 0
        for pipe in pipes:
            if not pipe.poll(CONNECT_TIMEOUT):
                raise RuntimeError("client process did not connect in time")
            answer = pipe.recv()
            if "error" in answer:
                raise RuntimeError(f"client process failed after {answer['opened']} sockets: {answer['error']}")
            opened += answer["ready"]
        connected = server_rss()
        sockets_per_process = sorted((n for n in (socket_count(pid) for pid in server_pids) if n > 10), reverse=True)
        per_second = max(0.5, rate / clients)
        interval = 1.0 / per_second
        published = 0
        cpu_before = [server_cpu()] + [cpu_seconds(p.pid) for p in procs]
        start = time.perf_counter()
        next_at = start
        while time.perf_counter() - start < seconds:
            data = {
                "id": published,
                "price": "65000.00",
                "qty": "0.001",
                "time": int(time.time() * 1000),
                "isBuyerMaker": False,
                "sentAt": time.time_ns(),
            }
            redis_client.publish(channel, json.dumps({"type": "trade", "channel": "trades:BTCUSDT", "data": data}))
            published += 1
            next_at += interval
            pause = next_at - time.perf_counter()
            if pause > 0:
                time.sleep(pause)  # pacing the publisher, not waiting for an event
        elapsed = time.perf_counter() - start
        for pipe in pipes:
            pipe.send("stop")
            pipe.send(published)
        results = [pipe.recv() for pipe in pipes]
        busy = time.perf_counter() - start
        cpu_after = [server_cpu()] + [cpu_seconds(p.pid) for p in procs]
    finally:
        for proc in procs:
            proc.join(timeout=15)
            if proc.is_alive():
                proc.kill()
    latencies = sorted(x for r in results for x in r["latencies"])
    received = sum(r["received"] for r in results)

    def pct(p: float):
        return round(latencies[min(len(latencies) - 1, int(len(latencies) * p))] / 1e6, 2) if latencies else None

    return {
        "clients": opened,
        "messages_published": published,
        "deliveries": received,
        "delivered_ratio": round(received / (published * opened), 4) if published and opened else 0,
        "deliveries_per_s": round(received / elapsed, 1),
        "latency_p50_ms": round(statistics.median(latencies) / 1e6, 2) if latencies else None,
        "latency_p99_ms": pct(0.99),
        "latency_max_ms": round(latencies[-1] / 1e6, 2) if latencies else None,
        "sockets_closed_by_server": sum(r["closed"] for r in results),
        "server_cpu_share": round((cpu_after[0] - cpu_before[0]) / busy, 2),
        "clients_cpu_share": round((sum(cpu_after[1:]) - sum(cpu_before[1:])) / busy, 2),
        "server_processes": len(server_pids),
        "sockets_per_server_process": sockets_per_process,
        "rss_per_connection_kb": round((connected - before) / opened / 1024, 1) if opened else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="repetitions of every measurement")
    parser.add_argument("--clients", default="10000", help="socket counts, comma-separated (e.g. 1000,5000,10000)")
    parser.add_argument("--rate", type=float, default=24000.0, help="offered deliveries per second")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument(
        "--web-concurrency",
        type=int,
        default=2,
        help="also measure the largest count on a web of N worker processes (0: skip)",
    )
    parser.add_argument("--no-baseline", action="store_true")
    args = parser.parse_args()
    seconds = min(args.seconds, MAX_SECONDS)
    counts = [int(c) for c in args.clients.split(",")]
    largest = max(counts)
    fd_limit = raise_fd_limit()
    if largest + 100 > fd_limit:
        raise SystemExit(f"ulimit -n hard limit is {fd_limit}: too low for {largest} sockets")

    import redis

    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    prefix = f"bench:{uuid.uuid4().hex}:"
    channel = Keys(prefix).md("trades:BTCUSDT")
    r = redis.Redis.from_url(redis_url)
    paper, paper_url = start_paper()
    web_env = {
        "REDIS_KEY_PREFIX": prefix,
        "MAX_WS_CONNECTIONS": str(largest + 100),
        # one client address, no tokens: lift both guards
        "WS_MAX_CONNECTIONS_PER_IP": str(largest + 100),
        "WS_RESERVED_AUTHENTICATED": "0",
    }
    report = {
        "bench": "ws_fanout",
        "cpus": os.cpu_count(),
        "seconds": seconds,
        "offered_deliveries_per_s": args.rate,
        "client_processes": args.processes,
        "repetitions": [],
    }

    def gateway(count: int, workers: int = 1) -> dict:
        # a FRESH web process per measurement, so RSS deltas are not hidden by memory freed earlier
        web, url = start_web(paper_url, redis_url, web_env, workers=workers)
        try:
            ws_url = url.replace("http://", "ws://") + "/ws/trades/btcusdt"
            return measure(ws_url, web.pid, r, channel, count, args.rate, seconds, args.processes)
        finally:
            stop(web)

    def bare() -> dict:
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, str(HERE / "_bare_ws.py"), str(port), redis_url, channel],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_http(f"http://127.0.0.1:{port}/health", proc)
            return measure(
                f"ws://127.0.0.1:{port}/ws/trades/btcusdt",
                proc.pid,
                r,
                channel,
                largest,
                args.rate,
                seconds,
                args.processes,
                greeted=False,
            )
        finally:
            stop(proc)

    try:
        for _ in range(args.repeat):  # floor and figures interleaved, so each sees the same machine
            rep = {"gateway": []}
            if not args.no_baseline:
                rep["bare_sanic"] = bare()
            for count in counts:
                rep["gateway"].append(gateway(count))
            if args.web_concurrency > 1:
                rep[f"gateway_web_concurrency_{args.web_concurrency}"] = gateway(largest, args.web_concurrency)
            report["repetitions"].append(rep)
            print(json.dumps(rep), file=sys.stderr)
    finally:
        stop(paper)
        delete_prefix(r, prefix)
        r.close()
    report["figures"] = figures(report["repetitions"], largest, args.web_concurrency, not args.no_baseline)
    print(json.dumps(report, indent=2))


def figures(reps: list[dict], largest: int, concurrency: int, baseline: bool) -> list[dict]:
    at_largest = [next(g for g in rep["gateway"] if g["clients"] >= largest * 0.99) for rep in reps]
    complete = all(g["delivered_ratio"] >= 0.999 for g in at_largest)
    out = []
    bare_p99 = [rep["bare_sanic"]["latency_p99_ms"] for rep in reps] if baseline else None
    if baseline:
        out.append(
            {
                "id": "ws_fanout_p99",
                "label": f"WebSocket fan-out p99 at {largest:,} sockets",
                "unit": "ms",
                "values": [g["latency_p99_ms"] for g in at_largest],
                "floor": {"label": "bare Sanic fan-out p99, same sockets", "values": bare_p99},
                "target": {"op": "<=", "ratio": 0.5},
                "valid": complete,
            }
        )
    if concurrency > 1:
        key = f"gateway_web_concurrency_{concurrency}"
        multi = [rep[key] for rep in reps]
        out.append(
            {
                "id": "ws_fanout_p99_web_concurrency",
                "unit": "ms",
                "label": f"WebSocket fan-out p99 at {largest:,} sockets, WEB_CONCURRENCY={concurrency}",
                "values": [m["latency_p99_ms"] for m in multi],
                "floor": ({"label": "bare Sanic fan-out p99 (one process)", "values": bare_p99} if baseline else None),
                "target": {"op": "<=", "value": 100.0},
                "valid": all(m["delivered_ratio"] >= 0.999 for m in multi),
                "sockets_per_process": [m["sockets_per_server_process"] for m in multi],
            }
        )
    out.append(
        {
            "id": "ws_rss_per_socket",
            "label": f"RSS per socket at {largest:,} sockets",
            "unit": "KB",
            "values": [g["rss_per_connection_kb"] for g in at_largest],
            "floor": {
                "label": "bare Sanic RSS per socket",
                "values": [rep["bare_sanic"]["rss_per_connection_kb"] for rep in reps],
            }
            if baseline
            else None,
            "target": {"op": "<=", "value": 30.0},
        }
    )
    return out


if __name__ == "__main__":
    main()
