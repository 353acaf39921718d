"""The Celery app: `celery -A workers.celery_app worker`. All Celery configuration lives here.

- Redis is broker and result store (the only shared state, see design.md).
- Orders have their own queue so slow reads never delay them; `-Q orders,default` serves both.
- Tasks are short and latency-sensitive: prefetch 1, acks_late + reject_on_worker_lost so a task on a
  worker that dies is delivered again (every task here is safe to run twice: orders look their
  client order id up before sending).
- No ETA/countdown tasks: `executeAt` orders are held in a Redis sorted set and enqueued when due,
  so the broker's visibility timeout only has to outlast a running task, and a killed worker's task
  comes back after BROKER_VISIBILITY_TIMEOUT seconds (and a few more: the restore sweep's interval).
- The web process enqueues with `workers.task_queue.task_message()` + an asyncio LPUSH instead of
  `send_task()`: kombu publishes synchronously (blocking the event loop for a Redis round trip, ~1 ms
  of CPU an order), and one LPUSH can share a MULTI with the job record it belongs to.
"""

from __future__ import annotations

from celery import Celery
from kombu import Queue

from config import Settings

from . import observability  # noqa: F401  (connects the logging and metrics signal handlers)
from .task_queue import QUEUES


def _configure(app: Celery, settings: Settings) -> None:
    # Only connection facts are kept: nothing here may hand the worker's Binance credentials on.
    app.conf.update(broker_url=settings.redis_url, result_backend=settings.redis_url)
    app.conf.update(
        task_queues=tuple(Queue(name) for name in QUEUES),
        task_default_queue="default",
        task_routes={"orders.*": {"queue": "orders"}},
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,  # outcomes go to job records and reply lists in Redis, not to results
        task_serializer="json",
        accept_content=["json"],
        broker_transport_options={
            "visibility_timeout": settings.broker_visibility_timeout,
            # kombu scans for unacked messages past their visibility timeout only every
            # interval x throttle seconds (10 x 10 by default): a dead worker's tasks would come back
            # up to 100 s late. Scan every few seconds instead (one ZRANGE under a mutex).
            "unacked_restore_interval": max(1, min(10, settings.broker_visibility_timeout // 4)),
            "unacked_restore_throttle": 1,
            "global_keyprefix": settings.redis_key_prefix + "celery:",
        },
        result_backend_transport_options={"global_keyprefix": settings.redis_key_prefix + "celery:"},
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        worker_cancel_long_running_tasks_on_connection_loss=True,
        worker_soft_shutdown_timeout=10.0,  # SIGTERM: finish what runs, up to 10 s (Heroku gives 30)
        worker_enable_soft_shutdown_on_idle=True,
        beat_schedule={
            "due-scheduled-orders": {"task": "maintenance.release_due_orders", "schedule": 1.0},
            "reconcile-jobs": {"task": "maintenance.reconcile_jobs", "schedule": 15.0},
            "sync-server-time": {"task": "maintenance.sync_server_time", "schedule": 300.0},
        },
    )
    if settings.user_stream_mode == "listen-key":
        # the stream relay's listen key lives 60 min unless refreshed (Binance asks for every 30 min)
        app.conf.beat_schedule["keep-listen-key-alive"] = {
            "task": "user_stream.keepalive", "schedule": settings.listen_key_keepalive}


app = Celery("spotgate", include=["tasks.orders", "tasks.account", "tasks.maintenance", "tasks.user_stream"])
_configure(app, Settings.from_env())
