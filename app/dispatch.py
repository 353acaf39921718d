"""How the web tier hands signed work to the workers and waits for it, with asyncio over Redis
(never `AsyncResult.get()` in threads, never kombu's blocking publish on the event loop):

- `task(name, ...)`: a Celery task message and the queue list it goes to, for an LPUSH that may share
  a MULTI with other writes (an order's job record and its task are written together).
- `call(task, ...)`: enqueue a task with a fresh reply list and BLPOP it (signed reads, cancels).
- `JobWatcher`: ONE pub/sub subscription per web process on `jobs:events`; requests waiting for an
  order's outcome get a future that the watcher resolves when the job turns final.
"""

from __future__ import annotations

import asyncio
import logging
import uuid

import orjson

from config.logging import current_request_id
from services.jobs import FINAL
from services.metrics import metrics
from workers.task_queue import REQUEST_ID_HEADER, queue_key, task_message

from .errors import GatewayTimeout, from_failure

log = logging.getLogger("spotgate.dispatch")


class Dispatcher:
    def __init__(self, settings, redis, reply_timeout: float):
        self.settings = settings
        self.redis = redis
        self.prefix = settings.redis_key_prefix
        self.reply_timeout = reply_timeout

    def task(self, name: str, *args, queue: str = "default") -> tuple[str, bytes]:
        """(queue list, message) for `name(*args)`: LPUSH the message onto the list to enqueue it. The
        message carries the current request's id, which the worker's log lines for the task show."""
        request_id = current_request_id()
        metrics().tasks_published.labels(name).inc()
        return queue_key(self.settings, queue), task_message(
            name, args, queue, {REQUEST_ID_HEADER: request_id} if request_id else None)

    async def call(self, task: str, *args, queue: str = "default"):
        """Run `task` on a worker and return its data; its error is raised as the ApiError it maps to."""
        reply_to = f"{self.prefix}reply:{uuid.uuid4().hex}"
        await self.redis.lpush(*self.task(task, reply_to, *args, queue=queue))
        popped = await self.redis.blpop([reply_to], timeout=self.reply_timeout)
        if popped is None:
            raise GatewayTimeout("No worker answered in time", code="WORKER_TIMEOUT", retry_after=1)
        message = orjson.loads(popped[1])
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
        except asyncio.TimeoutError:
            return None
        finally:
            waiters = self._waiters.get(job_id)
            if waiters is not None and future in waiters:
                waiters.remove(future)
                if not waiters:
                    del self._waiters[job_id]
