"""The reply-list RPC: how a process that waits (web request, stream relay) gets one answer from a task.

    caller   reply_to = new_reply_to(keys)                    P reply:<uuid>, fresh per call
             enqueue the task with `reply_to` as its first argument, and (web) `deadline=deadline_after(wait)`
             wait(reply_to, timeout)                          BLPOP; None when nobody answered in time
    task     not run at all when past(deadline): its requester already stopped waiting
             send(reply_to, success(data) | failure(error))   LPUSH + EXPIRE REPLY_TTL, in one round trip

A reply is JSON: `{"ok": true, "data": ...}` or `{"ok": false, "error": {"code", "message", "details"}}`
(the error as services/outcomes.error_from_binance shapes it). A reply nobody reads expires.
`Replies` is the blocking front-end (tasks, the relay's threads), `AsyncReplies` the asyncio one (the web
tier only waits, so it only has `wait`).
"""

from __future__ import annotations

import time
import uuid

import orjson

from .keys import Keys

REPLY_TTL = 60  # seconds an unread reply is kept (its caller gave up: nobody will read it)
REPLY_GRACE = 1.0  # seconds a caller waits past the task's deadline for the reply of its last step


def new_reply_to(keys: Keys) -> str:
    return keys.reply(uuid.uuid4().hex)


def deadline_after(wait: float) -> int:
    """The `deadline` (epoch ms) of a task whose caller waits `wait` seconds from now."""
    return int(time.time() * 1000 + wait * 1000)


def past(deadline_ms: int | None) -> bool:
    return deadline_ms is not None and time.time() * 1000 >= deadline_ms


def success(data) -> dict:
    return {"ok": True, "data": data}


def failure(error: dict) -> dict:
    return {"ok": False, "error": error}


def _decode(popped) -> dict | None:
    return None if popped is None else orjson.loads(popped[1])


class Replies:
    """Blocking: `redis` is a redis.Redis whose socket timeout outlasts the longest wait."""

    def __init__(self, redis):
        self.redis = redis

    def send(self, reply_to: str, reply: dict) -> None:
        pipe = self.redis.pipeline()
        pipe.lpush(reply_to, orjson.dumps(reply))
        pipe.expire(reply_to, REPLY_TTL)
        pipe.execute()

    def wait(self, reply_to: str, timeout: float) -> dict | None:
        return _decode(self.redis.blpop([reply_to], timeout=timeout))


class AsyncReplies:
    """asyncio: `redis` is a redis.asyncio.Redis whose socket timeout outlasts the longest wait."""

    def __init__(self, redis):
        self.redis = redis

    async def wait(self, reply_to: str, timeout: float) -> dict | None:
        return _decode(await self.redis.blpop([reply_to], timeout=timeout))
