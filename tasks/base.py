"""The base task: retry policy declared once, Binance rejections never retried."""

from __future__ import annotations

from celery import Task


class SpotgateTask(Task):
    # acks_late + reject_on_worker_lost (workers/celery_app.py): a task on a dead worker runs again,
    # which every task here tolerates.
    autoretry_for = ()
    max_retries = None
    default_retry_delay = 1
