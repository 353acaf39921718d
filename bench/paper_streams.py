"""Paper exchange market-stream fan-out: messages/s it sustains to N stream clients.

    python bench/paper_streams.py [--repeat 3] [--processes 4] [--connections 25] [--seconds 5]

Every connection subscribes (combined stream) to trade, aggTrade, bookTicker, depth@100ms and
depth20@100ms of all four symbols, on a fast market (PAPER_STEP_MS=50). Client load comes from
separate processes (aiohttp clients on one event loop per process), on 127.0.0.1 only, for a bounded
time. Prints one JSON object: the baseline of the same run (one connection alone: the rate the
market produces per connection), then N = processes x connections clients at once, with total
messages/s, `delivered` (messages per connection / events the server rendered in the same window:
1.0 = every client got every event), the per-connection rate relative to the baseline, and the
delivery lag (receive time - event time `E`) p50/p99 in ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import platform
import statistics
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _loadgen import MAX_SECONDS, start_paper, stop  # noqa: E402

SYMBOLS = ("btcusdt", "ethusdt", "bnbusdt", "ethbtc")
KINDS = ("trade", "aggTrade", "bookTicker", "depth@100ms", "depth20@100ms")
STREAMS = "/".join(f"{s}@{k}" for s in SYMBOLS for k in KINDS)
MAX_CONNECTIONS = 2000


def _event_time(message: str) -> int | None:
    at = message.find('"E":')
    if at < 0:
        return None
    end = at + 4
    while end < len(message) and message[end].isdigit():
        end += 1
    return int(message[at + 4 : end]) if end > at + 4 else None


async def _read(ws, start, seconds: float) -> tuple:
    """Count messages from `start.value` (set once every client is connected) for `seconds`."""
    import aiohttp

    count = size = errors = 0
    lags: list[float] = []
    try:
        while True:
            begin = start.value
            now = time.time()
            if begin and now >= begin + seconds:
                break
            try:
                message = await ws.receive(timeout=(begin + seconds - now) if begin else 0.5)
            except TimeoutError:
                continue
            if message.type != aiohttp.WSMsgType.TEXT:
                errors += 1
                break
            received = time.time()
            if not begin or received < begin:
                continue
            count += 1
            size += len(message.data)
            if count % 8 == 0:
                event_time = _event_time(message.data)
                if event_time is not None:
                    lags.append(received * 1000 - event_time)
    except Exception:
        errors += 1
    finally:
        await ws.close()
    return count, size, errors, lags


def _client(url: str, connections: int, start, seconds: float, queue) -> None:
    """One load process: `connections` sockets on one asyncio loop (aiohttp's C frame reader)."""
    import aiohttp

    async def main():
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            sockets = []
            for _ in range(connections):
                sockets.append(await session.ws_connect(url, max_msg_size=0))
            queue.put(("ready", len(sockets)))
            return await asyncio.gather(*(_read(ws, start, seconds) for ws in sockets))

    try:
        queue.put(("rows", asyncio.run(main())))
    except Exception as exc:  # e.g. refused connections: reported, not hidden
        queue.put(("failed", repr(exc)))


def run(base: str, url: str, processes: int, connections: int, seconds: float) -> dict:
    ctx = mp.get_context("fork")
    queue, start = ctx.Queue(), ctx.Value("d", 0.0)
    procs = [ctx.Process(target=_client, args=(url, connections, start, seconds, queue)) for _ in range(processes)]
    for p in procs:
        p.start()
    rows, ready = [], 0
    try:
        while ready < processes:
            kind, value = queue.get(timeout=120)
            if kind != "ready":
                raise RuntimeError(f"a load process failed before it was connected: {value}")
            ready += 1
        start.value = time.time() + 0.3  # everyone is connected: count from here
        time.sleep(max(0.0, start.value - time.time()))
        before = published(base)
        time.sleep(max(0.0, start.value + seconds - time.time()))
        events = published(base) - before  # events the server rendered (each goes to every connection)
        for _ in procs:
            kind, value = queue.get(timeout=seconds + 120)
            if kind != "rows":
                raise RuntimeError(f"a load process failed: {value}")
            rows.extend(value)
    finally:
        for p in procs:
            p.join(10)
            if p.is_alive():
                p.terminate()
    total = sum(r[0] for r in rows)
    lags = sorted(x for r in rows for x in r[3])
    n = processes * connections
    return {
        "connections": n,
        "messages": total,
        "messages_per_s": round(total / seconds, 1),
        "per_connection_messages_per_s": round(total / seconds / n, 1),
        "server_events_per_s": round(events / seconds, 1),
        "delivered": round(total / n / events, 3) if events else None,
        "mbytes_per_s": round(sum(r[1] for r in rows) / seconds / 1e6, 2),
        "errors": sum(r[2] for r in rows),
        "lag_p50_ms": round(statistics.median(lags), 1) if lags else None,
        "lag_p99_ms": round(lags[min(len(lags) - 1, int(len(lags) * 0.99))], 1) if lags else None,
    }


def published(base: str) -> int:
    with urllib.request.urlopen(base + "/_paper/streams", timeout=10) as response:
        return json.loads(response.read())["published"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--connections", type=int, default=25, help="connections per process")
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    seconds = min(args.seconds, MAX_SECONDS)
    if args.processes * args.connections > MAX_CONNECTIONS:
        parser.error(f"at most {MAX_CONNECTIONS} connections")
    proc, base = start_paper(env={"PAPER_STEP_MS": "50"})
    url = base.replace("http://", "ws://") + "/stream?streams=" + STREAMS
    reps = []
    try:
        for _ in range(args.repeat):
            reps.append((run(base, url, 1, 1, seconds), run(base, url, args.processes, args.connections, seconds)))
    finally:
        stop(proc)
    baseline, fanout = reps[-1]
    figures = [
        {
            "id": "paper_streams_per_connection",
            "unit": "msg/s",
            "label": f"paper exchange streams, messages/s per connection at {fanout['connections']} connections",
            "values": [f["per_connection_messages_per_s"] for _, f in reps],
            "floor": {"label": "one connection alone", "values": [b["per_connection_messages_per_s"] for b, _ in reps]},
            "target": None,
        }
    ]
    per_connection = baseline["per_connection_messages_per_s"] or 1
    print(
        json.dumps(
            {
                "benchmark": "paper_streams",
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                "streams_per_connection": len(SYMBOLS) * len(KINDS),
                "seconds": seconds,
                "baseline_one_connection": baseline,
                "fanout": fanout,
                "repetitions": [{"baseline_one_connection": b, "fanout": f} for b, f in reps],
                "figures": figures,
                "relative_to_baseline": round(fanout["per_connection_messages_per_s"] / per_connection, 3),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
