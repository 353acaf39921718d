"""Beat-driven upkeep: release scheduled orders when due, re-drive jobs left behind, put a dead
worker's task messages back on their queue, sync the clock; and the ping `GET /api/v1/status` sends
to tell whether any worker is taking tasks."""

from __future__ import annotations

import logging
import socket
import time

from services.contract.tasks import TaskName
from services.metrics import metrics
from workers.celery_app import app
from workers.resources import resources

from .base import SpotgateTask
from .orders import place
from .replies import answer

RESTORE_BATCH = 1000  # unacked messages restored per scan at most
CLOCK_DRIFT_MS = 500  # a server-time offset moving more than this is worth a line

log = logging.getLogger("spotgate.maintenance")


@app.task(name=TaskName.RELEASE_DUE_ORDERS, base=SpotgateTask)
def release_due_orders() -> int:
    due = resources().jobs.due()
    for job_id in due:
        place.delay(job_id)
    if due:  # every second, mostly nothing: only what it did is an operator's business
        metrics().orders_released.inc(len(due))
        log.info("released %d scheduled orders: %s", len(due), ", ".join(due[:20]))
    return len(due)


@app.task(name=TaskName.RESTORE_UNACKED, base=SpotgateTask)
def restore_unacked() -> None:
    """Task messages delivered to a worker that died (SIGKILL, a lost dyno) stay in the broker's
    unacked hash; kombu's own scan puts those older than the visibility timeout back on their queue.
    This runs that scan (under kombu's Redis mutex, so workers never restore one message twice)."""
    with app.connection_for_write() as connection:
        connection.default_channel.qos.restore_visible(num=RESTORE_BATCH, interval=1)


@app.task(name=TaskName.RECONCILE_JOBS, base=SpotgateTask)
def reconcile_jobs() -> int:
    jobs = resources().jobs
    # a job untouched for JOB_REDRIVE_AFTER has no live run (a run re-touches it or ends it); the
    # re-driven run looks its order up by client order id before sending anything
    untouched_ms = int(resources().settings.job_redrive_after * 1000)
    stale = [j for j in jobs.stale_open(untouched_ms) if not _scheduled_later(jobs, j)]
    for job_id in stale:
        place.delay(job_id)
    if stale:
        metrics().jobs_redriven.inc(len(stale))
        log.warning("re-queued %d jobs left unfinished by a lost run: %s", len(stale), ", ".join(stale[:20]))
    return len(stale)


@app.task(name=TaskName.PING, base=SpotgateTask)
def ping(reply_to: str, deadline: int | None = None) -> None:
    """Answer at once: the web tier's proof that a worker takes tasks from the default queue."""
    answer(reply_to, lambda: {"worker": socket.gethostname(), "at": int(time.time() * 1000)}, deadline, TaskName.PING)


@app.task(name=TaskName.SYNC_SERVER_TIME, base=SpotgateTask)
def sync_server_time() -> float:
    clock = resources().client.clock
    before = clock.offset_ms
    offset = resources().client.sync_time()
    if abs(offset - before) > CLOCK_DRIFT_MS:
        log.info("server-time offset moved from %.0f ms to %.0f ms", before, offset)
    return offset


def _scheduled_later(jobs, job_id: str) -> bool:
    return jobs.redis.zscore(jobs.scheduled, job_id) is not None
