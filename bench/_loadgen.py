"""Closed-loop HTTP load from separate processes, for the benchmarks in bench/ (loopback only).

Each client process holds one keep-alive connection and sends requests back to back for a fixed
duration; latencies are merged into requests/s and p50/p99. Counts and durations are bounded.
"""

from __future__ import annotations

import http.client
import multiprocessing as mp
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
MAX_SECONDS = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_paper(env: dict[str, str] | None = None, seed: int = 1) -> tuple[subprocess.Popen, str]:
    """A paper exchange on a free loopback port with limits relaxed for load; returns (proc, url)."""
    port = free_port()
    environ = {
        **os.environ,
        "PAPER_SEED": str(seed),
        "PAPER_HISTORY_MINUTES": "120",
        "PAPER_WEIGHT_LIMIT": "1000000000",
        "PAPER_ORDERS_10S": "1000000000",
        "PAPER_ORDERS_1D": "1000000000",
        **(env or {}),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "paper_exchange", "--port", str(port)],
        cwd=ROOT,
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/api/v3/ping", proc)
    return proc, url


def start_web(
    binance_url: str, redis_url: str, env: dict[str, str] | None = None, workers: int = 1
) -> tuple[subprocess.Popen, str]:
    """The gateway's web process on a free port: `sanic app:create_app --factory --single-process`, or
    with `workers` > 1 as the Procfile runs WEB_CONCURRENCY=N (`python -m app.serve --workers N`, its own
    process group so stop() ends the workers too)."""
    port = free_port()
    environ = {
        **os.environ,
        "SPOTGATE_MODE": "paper",
        "BINANCE_API_URL": binance_url,
        "REDIS_URL": redis_url,
        "LOG_LEVEL": "WARNING",
        **(env or {}),
    }
    environ.pop("BINANCE_API_KEY", None)
    environ.pop("BINANCE_API_SECRET", None)
    if workers > 1:
        environ["WEB_CONCURRENCY"] = str(workers)
        command = [sys.executable, "-m", "app.serve", "--workers", str(workers)]
    else:
        command = [sys.executable, "-m", "sanic", "app:create_app", "--factory", "--single-process"]
    proc = subprocess.Popen(
        [*command, "--host", "127.0.0.1", "--port", str(port), "--no-motd", "--no-access-logs"],
        cwd=ROOT,
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=workers > 1,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/health", proc, timeout=20.0 if workers == 1 else 60.0)
    except RuntimeError:
        stop(proc)
        raise
    return proc, url


def delete_prefix(client, prefix: str) -> None:
    """Remove a run's Redis keys (SCAN, not KEYS: the Redis may be shared; UNLINK in batches). The
    tests clean up with it too (tests/support.delete_prefix)."""
    batch = []
    for key in client.scan_iter(match=f"{prefix}*", count=1000):
        batch.append(key)
        if len(batch) >= 500:
            client.unlink(*batch)
            batch.clear()
    if batch:
        client.unlink(*batch)


def wait_http(url: str, proc: subprocess.Popen | None = None, timeout: float = 20.0) -> None:
    parts = urlsplit(url)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{url}: process exited with {proc.returncode}")
        try:
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=1)
            conn.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""))
            if conn.getresponse().status == 200:
                conn.close()
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def stop(proc: subprocess.Popen) -> None:
    """Stop a process; one started in its own process group (a multi-worker web) with its group."""
    try:
        group = proc.pid if os.getpgid(proc.pid) == proc.pid else None
    except ProcessLookupError:
        group = None
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if group is not None:
        try:
            os.killpg(group, signal.SIGKILL)  # workers must not outlive their main process
        except ProcessLookupError:
            pass


# A request factory returns (method, path-with-query, body, headers) for the i-th request.
RequestFactory = Callable[[int], tuple[str, str, bytes | None, dict]]


def _client(
    base: str,
    factory: RequestFactory,
    seconds: float,
    start_at: float,
    out,
    max_requests: int | None,
    ok_status: int = 200,
) -> None:
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    latencies, errors, i = [], 0, 0
    while time.time() < start_at:
        time.sleep(0.001)
    end = time.perf_counter() + seconds
    while True:
        now = time.perf_counter()
        if now >= end or (max_requests is not None and i >= max_requests):
            break
        method, path, body, headers = factory(i)
        i += 1
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            if response.status != ok_status:
                errors += 1
        except OSError:
            errors += 1
            conn.close()
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
            continue
        latencies.append(time.perf_counter() - now)
    conn.close()
    out.put((latencies, errors, time.perf_counter() - (end - seconds)))


def run_load(
    base: str,
    factory: RequestFactory,
    clients: int = 4,
    seconds: float = 3.0,
    max_requests: int | None = None,
    ok_status: int = 200,
) -> dict:
    """Run `clients` processes for `seconds` (or until `max_requests` in all); returns requests/s,
    p50/p99 in ms and error count (answers other than `ok_status`)."""
    seconds = min(seconds, MAX_SECONDS)
    ctx = mp.get_context("fork")
    out = ctx.Queue()
    start_at = time.time() + 0.3
    per_client = None if max_requests is None else -(-max_requests // clients)
    procs = [
        ctx.Process(target=_client, args=(base, factory, seconds, start_at, out, per_client, ok_status))
        for _ in range(clients)
    ]
    for p in procs:
        p.start()
    results = [out.get(timeout=seconds + 60) for _ in procs]
    for p in procs:
        p.join()
    latencies = sorted(x for r in results for x in r[0])
    errors = sum(r[1] for r in results)
    elapsed = max(r[2] for r in results)
    return summarize(latencies, elapsed, errors)


def summarize(latencies: list[float], seconds: float, errors: int = 0) -> dict:
    if not latencies:
        return {"requests": 0, "errors": errors, "rps": 0.0, "p50_ms": None, "p99_ms": None}
    latencies = sorted(latencies)
    return {
        "requests": len(latencies),
        "errors": errors,
        "rps": round(len(latencies) / seconds, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 3),
        "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000, 3),
    }
