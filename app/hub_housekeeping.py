"""The web process's timers over all its connections: once a second each session's tick (slow
clients, auth deadlines, expired tokens), WebSocket pings every WS_HEARTBEAT_INTERVAL, and a check
of connected tokens against the revocation list every 10 s. One task, not timers per connection.
"""

from __future__ import annotations

import asyncio
import logging
import time

from redis.exceptions import RedisError

from .errors import Unauthorized, WsClose
from .ws_session import CutSlow

log = logging.getLogger("spotgate.hub")

TOKEN_RECHECK = 10.0  # seconds between revocation checks of connected tokens


class Housekeeping:
    def __init__(self, settings, connections: dict, redis, revocations, slow_closes):
        self.settings = settings
        self.connections = connections  # the hub's, shared
        self.redis = redis
        self.revocations = revocations
        self._slow_closes = slow_closes

    async def run(self) -> None:
        """Once a second: slow clients, auth deadlines, expired tokens; heartbeats and revocations on
        their own intervals. One task for all connections instead of timers per connection."""
        heartbeat = self.settings.ws_heartbeat_interval
        next_heartbeat = time.monotonic() + heartbeat
        next_token_check = time.monotonic() + TOKEN_RECHECK
        tick = min(1.0, heartbeat / 2)
        while True:
            await asyncio.sleep(tick)
            now, wall = time.monotonic(), time.time()
            slow_after = self.settings.ws_slow_client_timeout
            for conn in list(self.connections):
                verdict = conn.session.tick(wall, slow_after)
                if isinstance(verdict, CutSlow):
                    self._slow_closes.inc()
                    conn.cut(WsClose.SLOW_CLIENT, verdict.reason)
                elif verdict is not None:
                    conn.fail(verdict.error)
            if now >= next_heartbeat:
                next_heartbeat = now + heartbeat
                await self._heartbeat()
            if now >= next_token_check:
                next_token_check = now + TOKEN_RECHECK
                await self._check_revocations()

    async def _heartbeat(self) -> None:
        """A WebSocket ping to every client (proxies such as Heroku's close connections silent for
        55 s); one whose previous ping is still unanswered is gone and is closed."""
        for index, conn in enumerate(list(self.connections)):
            await conn.heartbeat()
            if index % 256 == 255:
                await asyncio.sleep(0)  # let deliveries through while 10,000 pings go out

    async def _check_revocations(self) -> None:
        by_token: dict = {}
        for conn in self.connections:
            if conn.principal is not None:
                by_token.setdefault(conn.principal, []).append(conn)
        if not by_token:
            return
        revocations = self.revocations
        principals = list(by_token)
        try:
            for start in range(0, len(principals), 1000):
                chunk = principals[start : start + 1000]
                async with self.redis.pipeline(transaction=False) as pipe:
                    for principal in chunk:
                        pipe.mget(revocations.keys(principal))  # the token, its session, its subject
                    found = await pipe.execute()
                for principal, values in zip(chunk, found, strict=True):
                    if revocations.is_revoked_by(principal, values):
                        for c in by_token[principal]:
                            c.fail(Unauthorized("Token has been revoked", code="TOKEN_REVOKED"))
        except (RedisError, OSError) as exc:
            log.warning("could not check token revocations: %r", exc)
