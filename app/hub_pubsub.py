"""The web process's one Redis pub/sub connection: SUBSCRIBE/UNSUBSCRIBE in call order, the reader,
reconnects that resubscribe everything, and a PING check for a connection that went silent.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque

from redis.exceptions import RedisError

log = logging.getLogger("spotgate.hub")

RECONNECT_MAX = 5.0
SILENT_AFTER = 30.0  # no PONG for this long: the connection is dropped and the reader reconnects


class PubSub:
    """Follows `P md:<name>` for every name in `feeds` (the hub's dict, shared), hands each message to
    `dispatch(name, payload)`, confirms subscriptions by resolving `feed.confirmed`, and says when
    the connection was `lost()` and when it was `restored()` (subscribed again after a loss)."""

    def __init__(self, client, md_prefix: bytes, control: bytes, feeds: dict, *, dispatch, lost, restored, spawn):
        # `client` has no retries: a lost connection must surface here, where subscriptions are
        # restored and clients resynced, not be reconnected silently.
        self._client = client
        self.md_prefix = md_prefix
        self.control = control  # a channel of this process alone: keeps the reader subscribed
        self._feeds = feeds
        self._dispatch, self._lost, self._restored, self._spawn = dispatch, lost, restored, spawn
        self._pubsub = None
        self._commands: deque = deque()  # (verb, name) in call order
        self._commands_ready = asyncio.Event()
        self._expect: dict[str, deque] = {}  # name → feeds awaiting a SUBSCRIBE confirmation
        self._generation = 0
        self._last_pong = time.monotonic()

    def subscribe(self, name: str) -> None:
        self._command("SUBSCRIBE", name)

    def unsubscribe(self, name: str) -> None:
        self._command("UNSUBSCRIBE", name)

    def _command(self, verb: str, name: str) -> None:
        # Sent by one task in call order, so an UNSUBSCRIBE never overtakes a later SUBSCRIBE.
        self._commands.append((verb, name))
        self._commands_ready.set()

    async def send_commands(self) -> None:
        while True:
            await self._commands_ready.wait()
            self._commands_ready.clear()
            while self._commands and self._pubsub is not None:
                pubsub = self._pubsub
                verb, name = self._commands.popleft()
                names = [name]
                while self._commands and self._commands[0][0] == verb:
                    names.append(self._commands.popleft()[1])
                if verb == "SUBSCRIBE":
                    for n in names:  # replies come in command order: the k-th one confirms the k-th send
                        self._expect.setdefault(n, deque()).append(self._feeds.get(n))
                method = pubsub.subscribe if verb == "SUBSCRIBE" else pubsub.unsubscribe
                try:
                    await method(*[self.md_prefix + n.encode() for n in names])
                except (RedisError, OSError) as exc:
                    log.warning("pub/sub command failed (%r); the reader reconnects and resubscribes", exc)
                    break

    async def read(self) -> None:
        delay = 0.1
        while True:
            pubsub = self._client.pubsub()
            try:
                self._commands.clear()  # the full subscription below supersedes them
                self._expect = {name: deque([feed]) for name, feed in self._feeds.items()}
                await pubsub.subscribe(*[self.md_prefix + name.encode() for name in self._feeds], self.control)
                self._generation += 1
                self._pubsub = pubsub
                self._last_pong = time.monotonic()
                self._commands_ready.set()
                while True:
                    message = await pubsub.get_message(timeout=None)
                    if message is not None:
                        self._on_message(message)
                        delay = 0.1
            except (RedisError, OSError) as exc:
                if self._pubsub is not None:
                    log.warning("lost the Redis pub/sub connection (%r); reconnecting", exc)
                    self._lost()
                self._pubsub = None
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECONNECT_MAX)
            except Exception:
                # A bug in handling one message must not end live data for every client of this
                # process: logged with its traceback, the reader starts over (and resyncs everyone).
                log.exception("hub reader failed; restarting it")
                self._pubsub = None
                await asyncio.sleep(1.0)
            finally:
                await pubsub.aclose()

    def check(self) -> None:
        """A pub/sub connection that stopped answering PING is dropped, so the reader reconnects."""
        pubsub = self._pubsub
        if pubsub is None:
            return
        if time.monotonic() - self._last_pong > SILENT_AFTER and pubsub.connection is not None:
            log.warning("Redis pub/sub did not answer PING; reconnecting")
            self._spawn(pubsub.connection.disconnect())
            return
        self._spawn(self._ping(pubsub))

    async def _ping(self, pubsub) -> None:
        try:
            await pubsub.ping()
        except (RedisError, OSError) as exc:
            log.debug("pub/sub PING failed (%r): the reader notices the lost connection", exc)

    def _on_message(self, message: dict) -> None:
        kind = message["type"]
        channel = message["channel"]
        if kind == "message":
            if channel.startswith(self.md_prefix):
                self._dispatch(channel[len(self.md_prefix) :].decode(), message["data"])
        elif kind == "subscribe":
            if channel == self.control:
                if self._generation > 1:
                    self._restored()
                return
            expected = self._expect.get(channel[len(self.md_prefix) :].decode())
            if expected:
                feed = expected.popleft()
                if feed is not None and not feed.confirmed.done():
                    feed.confirmed.set_result(None)
        elif kind == "pong":
            self._last_pong = time.monotonic()
