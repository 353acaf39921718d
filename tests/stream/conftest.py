"""The stream relay under test: `python -m workers.stream` as a subprocess (tests.processes.RelayProcess)
against a paper exchange and the suite's Redis, and a Redis subscriber standing in for the web
processes (which write the demand and read `md:*` exactly like this, per docs/streams-protocol.md)."""

from __future__ import annotations

import queue
import threading
import time

import orjson
import pytest
import redis

from services.contract.keys import Keys
from tests.processes import PaperProcess, RelayProcess
from tests.support import delete_prefix, eventually, next_matching  # noqa: F401 (eventually: for importers)


class Subscriber:
    """Pattern-subscribes to `P md:*` before anything happens and queues every message (decoded)."""

    def __init__(self, redis_url: str, prefix: str, pattern: str = "md:*"):
        self.prefix = prefix
        self.client = redis.Redis.from_url(redis_url)
        self.pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        self.pubsub.psubscribe(prefix + pattern)
        self.messages: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            message = self.pubsub.get_message(timeout=0.2)
            if message is not None and message["type"] == "pmessage":
                channel = message["channel"].decode()[len(self.prefix) + 3 :]
                self.messages.put((time.monotonic(), channel, orjson.loads(message["data"])))

    def next(self, timeout: float):
        """(arrived at, channel, message), or None after `timeout`."""
        try:
            return self.messages.get(timeout=max(0.0, timeout))
        except queue.Empty:
            return None

    def wait_for(self, predicate, timeout: float = 10.0, what: str = "a matching message"):
        """The first queued message (channel, message) satisfying predicate(channel, message)."""
        _, channel, message = next_matching(self.next, lambda item: predicate(item[1], item[2]), timeout, what)
        return channel, message

    def drain(self) -> None:
        while self.next(0) is not None:
            pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.pubsub.close()
        self.client.close()


def demand(client: redis.Redis, prefix: str, channel: str, seconds: float = 30.0) -> None:
    """What a web process does for a channel it holds subscribers for (docs/streams-protocol.md)."""
    client.zadd(Keys(prefix).demand, {channel: int((time.time() + seconds) * 1000)})
    client.publish(Keys(prefix).demand_changed, channel)


def paper_streams(paper: PaperProcess) -> list[dict]:
    """The paper exchange's open stream connections (not WS-API ones)."""
    return [c for c in paper.admin("GET", "streams").json()["connections"] if c["kind"] == "stream"]


def subscribed_upstream(paper: PaperProcess) -> set[str]:
    return {name for c in paper_streams(paper) for name in c["streams"]}


@pytest.fixture(scope="module")
def redis_client(redis_url):
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def make_relay(redis_url):
    started: list[tuple[RelayProcess, bool]] = []

    def start(paper: PaperProcess, prefix: str | None = None, **env: str) -> RelayProcess:
        relay = RelayProcess(paper, redis_url, prefix, **env)
        started.append((relay, prefix is None))
        return relay

    yield start
    for relay, own_prefix in reversed(started):
        relay.discard()
        if own_prefix:  # a shared prefix (a worker's too) is cleaned up by whoever made it
            delete_prefix(redis_url, relay.prefix)


@pytest.fixture
def make_subscriber(redis_url):
    opened: list[Subscriber] = []

    def open_(prefix: str, pattern: str = "md:*") -> Subscriber:
        subscriber = Subscriber(redis_url, prefix, pattern)
        opened.append(subscriber)
        return subscriber

    yield open_
    for subscriber in opened:
        subscriber.close()
