"""The Celery app: `celery -A workers.celery_app worker`. All Celery configuration lives here.

- Redis is broker and result store (the only shared state, see design.md).
- Orders have their own queue so slow reads never delay them; `-Q orders,default` serves both.
- Tasks are short and latency-sensitive: prefetch 1, acks_late + reject_on_worker_lost so a task on a
  worker that dies is delivered again (every task here is safe to run twice: orders look their
  client order id up before sending).
- No ETA/countdown tasks: `executeAt` orders are held in a Redis sorted set and enqueued when due,
  so the broker's visibility timeout only has to outlast a running task, and a killed worker's task
  comes back after BROKER_VISIBILITY_TIMEOUT seconds.
"""

from __future__ import annotations

from celery import Celery
from kombu import Queue

from config import Settings


def _configure(app: Celery, settings: Settings) -> None:
    # Only connection facts are kept: the web process imports this module to enqueue tasks, and
    # must not end up holding the worker's Binance credentials.
    app.conf.update(broker_url=settings.redis_url, result_backend=settings.redis_url)
    app.conf.update(
        task_queues=(Queue("orders"), Queue("default")),
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


app = Celery("spotgate", include=["tasks.orders", "tasks.account", "tasks.maintenance"])
_configure(app, Settings.from_env())
