"""How the web tier hands signed work to the workers and waits for it, with asyncio over Redis
(never `AsyncResult.get()` in threads, never kombu's blocking publish on the event loop):

- `task(name, ...)`: a Celery task message and the queue list it goes to, for an LPUSH that may share
  a MULTI with other writes (an order's job record and its task are written together).
- `call(task, ...)`: enqueue a task with a fresh reply list and BLPOP it (signed reads, cancels). The
  wait is bounded by UPSTREAM_TIMEOUT (or the caller's `wait`), on a Redis connection whose socket
  timeout outlasts it (redis-py's default 5 s would cut a longer BLPOP and look like Redis failing).
  The task carries the same deadline: a worker that takes it up later does not run it, so what the
  client was told (504, outcome unknown: look it up) stays true.
- `JobWatcher`: ONE pub/sub subscription per web process on `jobs:events`; requests waiting for an
  order's outcome get a future that the watcher resolves when the job turns final.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import orjson

from config.logging import current_request_id
from services.contract.keys import Keys
from services.contract.replies import REPLY_GRACE, AsyncReplies, deadline_after, new_reply_to
from services.contract.tasks import REQUEST_ID_HEADER, task_message
from services.jobs import FINAL
from services.metrics import metrics

from .errors import ApiError, GatewayTimeout, from_failure

log = logging.getLogger("spotgate.dispatch")


class Dispatcher:
    def __init__(self, settings, redis, waits, wait: float, quotas=None):
        """`redis` for commands, `waits` (same server) for blocking reads whose socket timeout is
        longer than any `wait`; `wait` is the default bound on a call (UPSTREAM_TIMEOUT); `quotas`
        (app.quotas.ClientQuotas) is charged a call's `weight`."""
        self.settings = settings
        self.quotas = quotas
        self.redis = redis
        self.replies = AsyncReplies(waits)
        self.keys = Keys(settings.redis_key_prefix)
        self.wait = wait

    def task(self, name: str, *args, queue: str = "default", kwargs: dict | None = None) -> tuple[str, bytes]:
        """(queue list, message) for `name(*args, **kwargs)`: LPUSH the message onto the list to enqueue it.
        The message carries the current request's id, which the worker's log lines for the task show."""
        request_id = current_request_id()
        metrics().tasks_published.labels(name).inc()
        return self.keys.queue(queue), task_message(
            name, args, queue, kwargs, {REQUEST_ID_HEADER: request_id} if request_id else None
        )

    async def call(
        self,
        task: str,
        *args,
        queue: str = "default",
        wait: float | None = None,
        deadline: bool = True,
        unknown: Callable[[float], ApiError] | None = None,
        weight: int = 0,
    ):
        """Run `task` on a worker and return its data; its error is raised as the ApiError it maps to.
        `weight` (the Binance weight the task will spend) is first charged to the client served.

        Waits at most `wait` seconds (default UPSTREAM_TIMEOUT) plus REPLY_GRACE, then raises 504 —
        `unknown(waited)` for calls that change something (their outcome is unknown), else
        WORKER_TIMEOUT. With `deadline` the task is told when that is, and is not run after it."""
        if weight and self.quotas is not None:
            await self.quotas.charge_current(weight)
        wait = self.wait if wait is None else wait
        reply_to = new_reply_to(self.keys)
        kwargs = {"deadline": deadline_after(wait)} if deadline else None
        await self.redis.lpush(*self.task(task, reply_to, *args, queue=queue, kwargs=kwargs))
        message = await self.replies.wait(reply_to, timeout=wait + REPLY_GRACE)
        if message is None:
            if unknown is not None:
                raise unknown(wait)
            raise GatewayTimeout(
                f"No worker answered within {wait:g} s; nothing was changed, try again",
                code="WORKER_TIMEOUT",
                retry_after=1,
                details={"waitedSeconds": wait},
            )
        if not message["ok"]:
            raise from_failure(message["error"])
        return message["data"]


class JobWatcher:
    """Resolves waiting futures when jobs become final (one subscription for the whole process)."""

    def __init__(self, redis, channel: str):
        self.redis = redis
        self.channel = channel
        self._waiters: dict[str, list[asyncio.Future]] = {}
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        # Not awaited: the web process starts (and serves market data) even while Redis is away;
        # waiters fall back to reading the job record when their timeout ends.
        self._task = asyncio.create_task(self._run(), name="job-watcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        self._deliver(orjson.loads(message["data"]))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis went away: resubscribe, waiters fall back to their timeout
                log.warning("job watcher lost Redis (%r); resubscribing", exc)
                await asyncio.sleep(1.0)
            finally:
                await pubsub.aclose()

    def _deliver(self, job: dict) -> None:
        if job.get("status") not in FINAL:
            return
        for future in self._waiters.pop(job["id"], []):
            if not future.done():
                future.set_result(job)

    async def wait(self, job_id: str, timeout: float, current) -> dict | None:
        """The job once final, or None after `timeout`. `current()` reads the record, closing the race
        between a job finishing and this waiter registering."""
        future = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(job_id, []).append(future)
        try:
            job = await current()
            if job is not None and job["status"] in FINAL:
                return job
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            return None
        finally:
            waiters = self._waiters.get(job_id)
            if waiters is not None and future in waiters:
                waiters.remove(future)
                if not waiters:
                    del self._waiters[job_id]
