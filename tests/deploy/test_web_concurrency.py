"""WEB_CONCURRENCY=2, as the Procfile runs it: two Sanic workers share $PORT, each with its own Redis
pub/sub reader and job watcher, and WebSocket fan-out and sync orders work on both. Which worker
serves a connection is read from the kernel (`ss`), as an operator would."""

from __future__ import annotations

import http.client
import json
import re
import shutil
import subprocess
import time
import uuid
from decimal import Decimal

import jwt
import pytest

from services.jobs import JobStore
from tests.processes import (
    TEST_JWT_SECRET,
    PaperProcess,
    ProcfileProcess,
    WorkerProcess,
    free_port,
    wait_until_answers,
)
from tests.support import delete_prefix, eventually, new_prefix
from tests.ws.support import Client, Relay

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss (iproute2) to see the serving worker"),
]

MAX_CONNECTIONS = 24  # opened until both workers hold some (the kernel picks the worker)


def serving_pid(server_port: int, client_port: int) -> int:
    """The pid of the process holding the server side of the connection from `client_port`."""
    out = subprocess.run(
        ["ss", "-tnpH", "state", "established", f"( sport = :{server_port} and dport = :{client_port} )"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    pids = {int(p) for p in re.findall(r"pid=(\d+)", out)}
    assert len(pids) == 1, out
    return pids.pop()


@pytest.fixture(scope="module")
def stack(redis_url):
    prefix = new_prefix()
    paper = PaperProcess(seed=101)
    port = free_port()
    worker = WorkerProcess(paper.url, redis_url, prefix)
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
    try:
        wait_until_answers(f"http://127.0.0.1:{port}/health", web.proc, timeout=60, log=web.log_file.name)
        yield {"port": port, "prefix": prefix, "paper": paper, "relay": relay, "web": web}
    finally:
        web.stop()
        worker.stop()
        paper.stop()
        delete_prefix(relay.redis, prefix)
        relay.close()


def test_websocket_fan_out_works_on_both_workers(stack):
    port, relay = stack["port"], stack["relay"]
    clients, by_worker = [], {}
    try:
        while len(by_worker) < 2:
            assert len(clients) < MAX_CONNECTIONS, f"all {len(clients)} connections went to one worker"
            client = Client(f"ws://127.0.0.1:{port}/ws/ticker/btcusdt")
            client.open(["ticker:BTCUSDT"])
            clients.append(client)
            pid = serving_pid(port, client.ws.socket.getsockname()[1])
            by_worker.setdefault(pid, []).append(client)
        # one pub/sub reader per worker, each subscribed for its own clients
        assert relay.subscribers("ticker:BTCUSDT") == 2
        got: set[int] = set()

        def everyone_has_a_ticker():
            relay.ticker("BTCUSDT", "65000.00")
            for index, client in enumerate(clients):
                if index not in got:
                    try:
                        if client.recv(timeout=0.05)["type"] == "ticker":
                            got.add(index)
                    except TimeoutError:
                        pass
            return len(got) == len(clients)

        eventually(everyone_has_a_ticker, 15, interval=0.05, what="a ticker on every client of both workers")
    finally:
        for client in clients:
            client.close()


def test_sync_orders_are_answered_by_both_workers(stack):
    port, paper, prefix = stack["port"], stack["paper"], stack["prefix"]
    # one job watcher (one pub/sub subscription to job events) per worker
    assert stack["relay"].redis.pubsub_numsub(JobStore(stack["relay"].redis, prefix).events)[0][1] == 2
    token = _token()
    bid = Decimal(paper.get("/api/v3/ticker/bookTicker", symbol="BTCUSDT").json()["bidPrice"])
    body = json.dumps(
        {
            "symbol": "BTCUSDT",
            "side": "BUY",
            "type": "LIMIT",
            "quantity": "0.001",
            "price": str((bid * Decimal("0.9")).quantize(Decimal("0.01"))),
        }
    )
    connections, answered = [], {}
    try:
        while len(answered) < 2:
            assert len(connections) < MAX_CONNECTIONS, f"all {len(connections)} connections went to one worker"
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.connect()
            connections.append(conn)
            pid = serving_pid(port, conn.sock.getsockname()[1])
            if pid in answered:
                continue
            conn.request(
                "POST",
                "/api/v1/order",
                body=body,
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            )
            answer = conn.getresponse()
            data = json.loads(answer.read())
            assert answer.status == 201, data  # answered in sync mode (a 202 would mean no job event came)
            assert data["data"]["status"] == "NEW" and data["data"]["orderId"]
            answered[pid] = data["data"]
        for order in answered.values():
            placed = paper.admin("GET", f"orders?symbol=BTCUSDT&clientOrderId={order['clientOrderId']}").json()
            assert len(placed) == 1
    finally:
        for conn in connections:
            conn.close()


def _token() -> str:
    now = int(time.time())
    return jwt.encode(
        {
            "sub": "concurrency",
            "role": "trader",
            "iat": now,
            "exp": now + 600,
            "jti": uuid.uuid4().hex,
            "typ": "access",
        },
        TEST_JWT_SECRET,
        algorithm="HS256",
    )
