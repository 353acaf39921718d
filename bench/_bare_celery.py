"""A bare Celery app over the same Redis: the queue's own floors for bench/orders.py.

`bare.echo` is answered through Celery's Redis result backend (`delay().get()`: the round trip an
order's sync path cannot beat); `bare.noop` does nothing (the rate a worker pool drains tasks).
Configured as workers/celery_app.py configures the product's queues (acks_late, prefetch 1, JSON,
a key prefix), so the only difference to the gateway's worker is the work the task does.

    BARE_CELERY_REDIS_URL=redis://... BARE_CELERY_PREFIX=p: celery -A _bare_celery worker -P prefork -c 4
"""

import os

from celery import Celery

REDIS_URL = os.environ.get("BARE_CELERY_REDIS_URL", "redis://127.0.0.1:6379/0")
PREFIX = os.environ.get("BARE_CELERY_PREFIX", "bench-bare:")
QUEUE = "bare"

app = Celery("bare", broker=REDIS_URL, backend=REDIS_URL)
app.conf.update(
    task_default_queue=QUEUE,
    task_acks_late=True,
    worker_prefetch_multiplier=1,
    task_serializer="json",
    accept_content=["json"],
    result_expires=300,
    broker_transport_options={"global_keyprefix": PREFIX},
    result_backend_transport_options={"global_keyprefix": PREFIX},
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)


@app.task(name="bare.echo")
def echo(value):
    return value


@app.task(name="bare.noop", ignore_result=True)
def noop():
    return None
