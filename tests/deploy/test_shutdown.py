"""SIGTERM, as Heroku sends it to every process of a dyno before SIGKILL 30 s later: each process
(web, worker, beat, stream) exits 0 well within that, under light load, and nothing a client asked
for is lost or done twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from decimal import Decimal

import pytest
import redis
import requests
from websockets.exceptions import ConnectionClosed

from services.contract.keys import Keys
from tests.processes import (
    FAST_RECONNECT,
    TEST_JWT_SECRET,
    PaperProcess,
    ProcfileProcess,
    WebProcess,
    WorkerProcess,
    free_port,
    wait_until_answers,
)
from tests.support import delete_prefix, eventually, new_prefix
from tests.ws.support import Client, Relay

from .test_web_concurrency import serving_pid

pytestmark = pytest.mark.integration

HEROKU_GRACE = 30  # seconds between Heroku's SIGTERM and its SIGKILL
KNOWN_SANIC_SHUTDOWN_ERROR = "Event loop stopped before Future completed"


def sigterm_group(proc: subprocess.Popen, timeout: float = HEROKU_GRACE) -> int:
    """SIGTERM every process of the group (as a dyno's are signalled) and wait for the leader."""
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running {timeout} s after SIGTERM")


def test_worker_sigterm_mid_order_loses_and_doubles_nothing(redis_url):
    """SIGTERM to the whole worker (main process and pool children, as on a dyno) while orders are in
    flight on a slow exchange: the orders being placed are finished, the one still queued is left for
    the next worker, the worker exits 0, and every order exists on the exchange exactly once."""
    latency_ms, upstream_timeout = 3000, "10"
    prefix = new_prefix()
    paper = PaperProcess(seed=95)
    web = worker = None
    try:
        env = {"UPSTREAM_TIMEOUT": upstream_timeout}
        web = WebProcess(paper.url, redis_url, prefix, **env)
        worker = WorkerProcess(paper.url, redis_url, prefix, beat=False, **env)
        trader = {"Authorization": f"Bearer {web.token('trader')}", "Prefer": "respond-async"}
        rule = paper.admin(
            "POST", "faults", {"kind": "latency", "method": "POST", "path": "/api/v3/order", "latency_ms": latency_ms}
        ).json()
        bid = Decimal(paper.get("/api/v3/ticker/bookTicker", symbol="BTCUSDT").json()["bidPrice"])
        price = str((bid * Decimal("0.9")).quantize(Decimal("0.01")))
        jobs = []
        for _ in range(3):
            answer = web.http.post(
                web.url + "/api/v1/order",
                headers=trader,
                timeout=10,
                json={"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.001", "price": price},
            )
            assert answer.status_code == 202, answer.text
            jobs.append(answer.json()["data"])

        def job(job_id):
            return web.get(f"/api/v1/jobs/{job_id}", role="trader").json()["data"]

        eventually(lambda: any(job(j["id"])["status"] == "running" for j in jobs), 20, what="an order in flight")
        started = time.monotonic()
        assert sigterm_group(worker.proc) == 0
        stopped_after = time.monotonic() - started
        assert "Traceback" not in worker.log_text(), worker.log_text()[-6000:]
        paper.admin("DELETE", "faults")

        worker.stop()
        worker = WorkerProcess(paper.url, redis_url, prefix, beat=False, **env)
        final = eventually(
            lambda: (
                all(job(j["id"])["status"] in ("succeeded", "failed") for j in jobs) and [job(j["id"]) for j in jobs]
            ),
            60,
            what="every job final",
        )
        assert [j["status"] for j in final] == ["succeeded"] * 3, final
        for j in final:
            placed = paper.admin("GET", f"orders?symbol=BTCUSDT&clientOrderId={j['clientOrderId']}").json()
            assert len(placed) == 1, (j["clientOrderId"], placed)
        print(f"worker stopped {stopped_after:.1f} s after SIGTERM (fault rule {rule})")
    finally:
        for part in (worker, web):
            if part is not None:
                part.stop()
        paper.stop()
        client = redis.Redis.from_url(redis_url)
        delete_prefix(client, prefix)
        client.close()


class RecordingUpstream:
    """A stand-in for Binance's stream endpoint: answers SUBSCRIBE / UNSUBSCRIBE and records how each
    connection ended (the close code the client sent; 1006 when it just dropped the socket)."""

    def __init__(self):
        import asyncio
        import threading

        self.ended: list[tuple[str, int | None]] = []
        self.opened = 0
        self._loop = asyncio.new_event_loop()
        started = threading.Event()

        async def handler(ws):
            self.opened += 1
            try:
                async for raw in ws:
                    message = json.loads(raw)
                    if isinstance(message, dict) and "id" in message:
                        await ws.send(json.dumps({"result": None, "id": message["id"]}))
            except ConnectionClosed:
                pass
            finally:
                self.ended.append((ws.request.path, ws.close_code))

        async def main():
            from websockets.asyncio.server import serve

            self._server = await serve(handler, "127.0.0.1", 0)
            self.port = self._server.sockets[0].getsockname()[1]
            started.set()
            await self._server.serve_forever()

        self._thread = threading.Thread(target=lambda: self._loop.run_until_complete(main()), daemon=True)
        self._thread.start()
        assert started.wait(10)

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._server.close)
        self._thread.join(5)


def test_stream_relay_sigterm_closes_upstream_sockets_and_exits_0(redis_url):
    upstream = RecordingUpstream()
    paper = PaperProcess(seed=97)
    prefix = new_prefix()
    relay = None
    try:
        relay = ProcfileProcess(
            "stream",
            {
                "SPOTGATE_MODE": "paper",
                "REDIS_URL": redis_url,
                "REDIS_KEY_PREFIX": prefix,
                "LOG_LEVEL": "INFO",
                "BINANCE_API_URL": paper.url,
                "BINANCE_STREAM_URL": f"ws://127.0.0.1:{upstream.port}",
                "BINANCE_WS_API_URL": f"ws://127.0.0.1:{paper.port}/ws-api/v3",
                **FAST_RECONNECT,
            },
        )
        client = redis.Redis.from_url(redis_url)
        eventually(
            lambda: client.get(Keys(prefix).ticker("BTCUSDT")) is not None or upstream.opened,
            20,
            what="the relay connected upstream",
        )
        eventually(lambda: client.get(Keys(prefix).stream_status), 20, what="the relay's status report")
        ended_before = len(upstream.ended)  # (a connection the relay itself replaced earlier is not at stake)
        assert relay.sigterm(HEROKU_GRACE) == 0, relay.log_text()[-3000:]
        eventually(lambda: len(upstream.ended) >= upstream.opened, 5, what="every upstream connection ended")
        market = [code for path, code in upstream.ended[ended_before:] if not path.startswith("/ws-api")]
        assert market and set(market) == {1001}, upstream.ended
        assert "Traceback" not in relay.log_text()
        client.close()
    finally:
        if relay is not None:
            relay.stop()
        paper.stop()
        upstream.stop()


def test_beat_sigterm_exits_0(redis_url, tmp_path):
    beat = ProcfileProcess(
        "beat",
        {"SPOTGATE_MODE": "paper", "REDIS_URL": redis_url, "REDIS_KEY_PREFIX": new_prefix()},
        replace={"/tmp/celerybeat-schedule": str(tmp_path / "beat-schedule")},
    )
    try:
        eventually(lambda: "beat: Starting" in beat.log_text() or beat.proc.poll() is not None, 20, what="beat started")
        assert beat.proc.poll() is None, beat.log_text()
        assert beat.sigterm(HEROKU_GRACE) == 0, beat.log_text()[-3000:]
    finally:
        beat.stop()


def test_web_binds_port_and_sigterm_closes_websockets_with_1001(redis_url):
    """The Procfile's web line with $PORT and WEB_CONCURRENCY=2: it answers on $PORT; on SIGTERM every
    WebSocket client gets close 1001 ("going away": reconnect) and the process exits 0."""
    paper = PaperProcess(seed=99)
    prefix = new_prefix()
    port = free_port()
    web = ProcfileProcess(
        "web",
        {
            "PORT": str(port),
            "WEB_CONCURRENCY": "2",
            "SPOTGATE_MODE": "paper",
            "BINANCE_API_URL": paper.url,
            "REDIS_URL": redis_url,
            "REDIS_KEY_PREFIX": prefix,
            "JWT_SECRET": TEST_JWT_SECRET,
            "LOG_LEVEL": "WARNING",
        },
    )
    relay = Relay(redis_url, prefix)
    clients = []
    try:
        wait_until_answers(f"http://127.0.0.1:{port}/health", web.proc, timeout=60, log=web.log_file.name)
        # until both workers serve some (and so have both started): SIGTERM under light load, not mid-boot
        serving = set()
        while len(serving) < 2 or len(clients) < 4:
            assert len(clients) < 24, "every connection went to one worker"
            client = Client(f"ws://127.0.0.1:{port}/ws/ticker/btcusdt")
            client.open(["ticker:BTCUSDT"])
            clients.append(client)
            serving.add(serving_pid(port, client.ws.socket.getsockname()[1]))
        eventually(
            lambda: relay.ticker("BTCUSDT", "65000.00") or all(_got_ticker(c) for c in clients),
            10,
            interval=0.2,
            what="tickers on every client",
        )
        for _ in range(5):
            assert requests.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200
        web_pid = web.proc.pid
        os.killpg(web_pid, signal.SIGTERM)
        codes = [client.close_code(HEROKU_GRACE)[0] for client in clients]
        assert codes == [1001] * len(clients)
        try:
            assert web.proc.wait(HEROKU_GRACE) == 0, web.log_text()[-3000:]
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running {HEROKU_GRACE} s after SIGTERM:\n{web.log_text()[-3000:]}")
        # Sanic logs one known ERROR per worker here: the dyno's SIGTERM and then the main process's
        # SIGINT both stop a worker, and the second interrupts its cleanup. Anything else is a failure.
        errors = [line for line in web.log_text().splitlines() if "level=ERROR" in line]
        assert all(KNOWN_SANIC_SHUTDOWN_ERROR in line for line in errors), errors
    finally:
        for client in clients:
            client.close()
        web.stop()
        relay.close()
        paper.stop()
        client = redis.Redis.from_url(redis_url)
        delete_prefix(client, prefix)
        client.close()


def _got_ticker(client) -> bool:
    try:
        return client.recv(timeout=0.1)["type"] == "ticker"
    except TimeoutError:
        return False
