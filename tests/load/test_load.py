"""Load: many concurrent REST clients (market reads and orders) against web + worker + paper exchange,
and many WebSocket clients that connect, subscribe and receive — on loopback, bounded in time.

Short forms run in `make test` (100 REST clients for 5 s, 500 sockets); `make soak` runs the long forms
(1,000 REST clients for 30 s, 10,000 sockets). Each reports its p99 on the terminal; timings are
never asserted (the machine is shared), errors are: every answer must be one the API documents for
the request, every order's job must end `succeeded`, every socket must receive."""

from __future__ import annotations

import asyncio
import resource
import statistics
import time

import orjson
import pytest
import requests

from bench._ws_client import Socket, masked_frame
from tests.e2e.conftest import System
from tests.paper.conftest import PaperProcess
from tests.processes import WebProcess
from tests.ws.support import Relay

# Limits lifted for the load's sake, each for a reason: every client is a trader of its own (so
# CLIENT_WEIGHT_PER_MINUTE's 1,200 per subject is not what is measured, but it must not refuse a
# read that missed the cache either), orders queue behind hundreds of others (ORDER_TTL_MARKET's 10 s
# would expire MARKET orders queued that long: a refusal the load would cause, not one to measure),
# and the paper exchange stands in for an account with Binance's limits raised.
UNLIMITED = "1000000000"
PAPER_ENV = {
    "PAPER_WEIGHT_LIMIT": UNLIMITED,
    "PAPER_ORDERS_10S": UNLIMITED,
    "PAPER_ORDERS_1D": UNLIMITED,
    "PAPER_BALANCES": "USDT:1000000000,BTC:100000",
}
WEB_ENV = {"CLIENT_WEIGHT_PER_MINUTE": UNLIMITED, "ORDER_TTL_MARKET": "600"}
READS = [
    "/api/v1/ticker/price?symbol=BTCUSDT",
    "/api/v1/ticker/price?symbol=ETHUSDT",
    "/api/v1/ticker/24hr?symbol=BTCUSDT",
    "/api/v1/ticker/bookTicker?symbol=BNBUSDT",
    "/api/v1/klines?symbol=BTCUSDT&interval=1m&limit=5",
    "/api/v1/depth?symbol=ETHUSDT&limit=5",
    "/api/v1/trades?symbol=BTCUSDT&limit=5",
    "/api/v1/symbols?quoteAsset=USDT",
]
ORDER_EVERY = 8  # one request in 8 is an order (sync and async alternate)
JOB_WAIT = 120.0
RAMP_PER_S = 300


def report(capsys, text: str) -> None:
    with capsys.disabled():
        print(f"\n[load] {text}")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def raise_open_files(needed: int) -> None:
    """Sockets are files: the test process and the web process it starts (which inherits the limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        if hard < needed:
            pytest.skip(f"the open-file hard limit ({hard}) is below the {needed} this test needs")
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# -- REST ---------------------------------------------------------------------------------------------


async def _rest_load(web: WebProcess, clients: int, seconds: float) -> dict:
    import aiohttp

    latencies: list[float] = []
    errors: list[str] = []
    jobs: list[tuple[str, str]] = []  # (job id, its owner's token)
    start_at = time.monotonic() + 1.0
    end_at = start_at + clients / RAMP_PER_S + seconds  # every client runs `seconds` once all have arrived

    async def client(n: int) -> None:
        token = web.token("trader", sub=f"load-{n}")
        headers = {"Authorization": f"Bearer {token}"}
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(
            base_url=web.url, headers=headers, timeout=timeout, connector=aiohttp.TCPConnector(limit=1)
        ) as session:
            # Clients arrive over a few seconds (300 a second): Sanic listens with a backlog of 100, and a
            # thousand SYNs at once overflow it (the kernel's ListenOverflows) into connection resets.
            await asyncio.sleep(max(0.0, start_at - time.monotonic()) + n / RAMP_PER_S)
            i = n
            while time.monotonic() < end_at:
                i += 1
                started = time.perf_counter()
                try:
                    if i % ORDER_EVERY == 0:
                        sync = (i // ORDER_EVERY) % 2 == 0
                        body = {
                            "symbol": "BTCUSDT",
                            "side": "BUY" if i % 16 else "SELL",
                            "type": "MARKET",
                            "quantity": "0.001",
                        }
                        extra = {} if sync else {"Prefer": "respond-async"}
                        async with session.post("/api/v1/order", json=body, headers=extra) as answer:
                            data = await answer.json(content_type=None)
                            # sync: the order (201), or its job once ORDER_SYNC_WAIT passed (202)
                            if answer.status not in ((201, 202) if sync else (202,)):
                                errors.append(f"POST order -> {answer.status} {data}")
                                continue
                            jobs.append((data["data"]["jobId"] if answer.status == 201 else data["data"]["id"], token))
                    else:
                        path = READS[i % len(READS)]
                        async with session.get(path) as answer:
                            data = await answer.read()
                            if answer.status != 200:
                                errors.append(f"GET {path} -> {answer.status} {data[:300]!r}")
                                continue
                except (TimeoutError, aiohttp.ClientError) as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                latencies.append(time.perf_counter() - started)

    await asyncio.gather(*(client(n) for n in range(clients)))
    elapsed = time.monotonic() - start_at
    return {"latencies": latencies, "errors": errors, "jobs": jobs, "seconds": elapsed}


async def _job_outcomes(web: WebProcess, jobs: list[tuple[str, str]]) -> dict[str, int]:
    """Each job read back by its owner once it is final; counts by status."""
    import aiohttp

    outcomes: dict[str, int] = {}
    deadline = time.monotonic() + JOB_WAIT
    semaphore = asyncio.Semaphore(50)
    async with aiohttp.ClientSession(base_url=web.url, connector=aiohttp.TCPConnector(limit=50)) as session:

        async def read(job_id: str, token: str) -> None:
            async with semaphore:
                while True:
                    async with session.get(f"/api/v1/jobs/{job_id}", headers={"Authorization": f"Bearer {token}"}) as a:
                        job = (await a.json())["data"]
                    if job["status"] in ("succeeded", "failed") or time.monotonic() > deadline:
                        outcomes[job["status"]] = outcomes.get(job["status"], 0) + 1
                        if job["status"] != "succeeded":
                            outcomes.setdefault("errors", []).append(job.get("error"))
                        return
                    await asyncio.sleep(0.2)

        await asyncio.gather(*(read(*job) for job in jobs))
    return outcomes


def rest_load(redis_url: str, capsys, clients: int, seconds: float) -> None:
    raise_open_files(clients * 2 + 200)
    system = System(redis_url, seed=41, paper_env=PAPER_ENV, web_env=WEB_ENV, worker_env={"concurrency": 4})
    try:
        result = asyncio.run(_rest_load(system.web, clients, seconds))
        outcomes = asyncio.run(_job_outcomes(system.web, result["jobs"]))
    finally:
        system.stop()
    latencies = result["latencies"]
    report(
        capsys,
        f"REST {clients} clients for {seconds:.0f} s: {len(latencies)} answers "
        f"({len(latencies) / result['seconds']:.0f}/s), {len(result['errors'])} errors, "
        f"p50 {statistics.median(latencies) * 1000:.1f} ms, "
        f"p99 {percentile(latencies, 0.99) * 1000:.1f} ms; "
        f"{len(result['jobs'])} orders: {outcomes}",
    )
    assert not result["errors"], result["errors"][:10]
    assert len(latencies) >= clients  # every client got answers
    assert result["jobs"] and outcomes == {"succeeded": len(result["jobs"])}, outcomes


def test_rest_load_short(redis_url, capsys):
    # over 100 at once: redis-py's own pool limit, which once turned requests past it into 503s
    rest_load(redis_url, capsys, clients=300, seconds=5)


@pytest.mark.soak
@pytest.mark.timeout(900)
def test_rest_load_1000_clients_30_s(redis_url, capsys):
    rest_load(redis_url, capsys, clients=1000, seconds=30)


# -- WebSocket ----------------------------------------------------------------------------------------


class Subscriber(Socket):
    """One socket on /ws: sends a subscribe once the welcome arrives, counts what it receives."""

    SUBSCRIBE = b'{"type":"subscribe","channels":["trades:BTCUSDT"]}'

    def __init__(self, fleet: Fleet, port: int):
        super().__init__("127.0.0.1", port, "/ws", self._text, fleet.closed)
        self.fleet = fleet
        self.trades = 0

    def _text(self, payload: bytes, _now: int) -> None:
        kind = orjson.loads(payload).get("type")
        if kind == "welcome":
            self.transport.write(masked_frame(0x1, self.SUBSCRIBE))
        elif kind == "subscribed":
            self.fleet.subscribed()
        elif kind == "trade":
            self.trades += 1
            if self.trades == 1:
                self.fleet.received()
        else:
            self.fleet.unexpected.append(payload[:200])


class Fleet:
    def __init__(self, count: int):
        self.count = count
        self.n_subscribed = self.n_received = self.n_closed = 0
        self.unexpected: list[bytes] = []
        loop = asyncio.get_running_loop()
        self.all_subscribed, self.all_received = loop.create_future(), loop.create_future()

    def subscribed(self) -> None:
        self.n_subscribed += 1
        if self.n_subscribed == self.count and not self.all_subscribed.done():
            self.all_subscribed.set_result(None)

    def received(self) -> None:
        self.n_received += 1
        if self.n_received == self.count and not self.all_received.done():
            self.all_received.set_result(None)

    def closed(self) -> None:
        self.n_closed += 1


async def _ws_load(port: int, relay: Relay, count: int) -> dict:
    loop = asyncio.get_running_loop()
    fleet = Fleet(count)
    sockets: list[Subscriber] = []
    started = time.monotonic()
    try:
        for first in range(0, count, 200):  # 200 handshakes at a time: the listen backlog stays short
            made = [Subscriber(fleet, port) for _ in range(min(200, count - first))]
            await asyncio.gather(*(loop.create_connection(lambda s=s: s, "127.0.0.1", port) for s in made))
            await asyncio.wait_for(asyncio.gather(*(s.opened for s in made)), 60)
            sockets.extend(made)
        await asyncio.wait_for(fleet.all_subscribed, 60)
        connected = time.monotonic() - started
        trade_id, publish_started = 0, time.monotonic()
        while not fleet.all_received.done():  # one trade a second until every socket has one
            trade_id += 1
            relay.trade("BTCUSDT", trade_id)
            try:
                await asyncio.wait_for(asyncio.shield(fleet.all_received), 1.0)
            except TimeoutError:
                assert time.monotonic() - publish_started < 60, f"{fleet.n_received}/{count} received a trade"
        return {
            "connected_s": connected,
            "trades_published": trade_id,
            "closed": fleet.n_closed,
            "unexpected": fleet.unexpected,
            "received": fleet.n_received,
        }
    finally:
        for s in sockets:
            s.close()


def ws_load(redis_url: str, capsys, count: int) -> None:
    raise_open_files(count + 500)
    paper = PaperProcess(seed=43)
    web = relay = None
    try:
        web = WebProcess(
            paper.url,
            redis_url,
            MAX_WS_CONNECTIONS=str(count + 100),
            # every socket comes from 127.0.0.1 without a token: lift the per-address cap
            WS_MAX_CONNECTIONS_PER_IP=str(count + 100),
            WS_RESERVED_AUTHENTICATED="0",
        )
        relay = Relay(redis_url, web.prefix)
        result = asyncio.run(_ws_load(web.port, relay, count))
        assert web.proc.poll() is None
        assert requests.get(web.url + "/health", timeout=10).status_code == 200
    finally:
        if web is not None:
            web.stop()
        if relay is not None:
            for key in relay.redis.scan_iter(match=f"{web.prefix}*", count=1000):
                relay.redis.unlink(key)
            relay.close()
        paper.stop()
    report(
        capsys,
        f"WebSocket: {count} sockets connected and subscribed in {result['connected_s']:.1f} s; "
        f"every one received a trade after {result['trades_published']} published",
    )
    assert result["received"] == count and result["closed"] == 0 and not result["unexpected"], result


def test_websocket_load_short(redis_url, capsys):
    ws_load(redis_url, capsys, 500)


@pytest.mark.soak
@pytest.mark.timeout(900)
def test_websocket_load_10000_sockets(redis_url, capsys):
    ws_load(redis_url, capsys, 10_000)
