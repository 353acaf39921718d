"""Task messages for the Celery queues, built without Celery: what the web process LPUSHes itself.

Importing this builds no Celery app and reads no settings (the web process imports it at start-up,
where a configuration error must surface in `create_app`, not at import). The queue lists are
`Keys.queue(name)`; TaskName holds every task's name (tasks/*.py register them by it, callers send
them by it), and services/contract/__init__.py lists their arguments and queues.
"""

from __future__ import annotations

import base64
import os
import socket
import uuid

import orjson

QUEUES = ("orders", "default")  # the worker consumes both; orders.* go to `orders` (workers/celery_app.py)
# The custom message header carrying the id of the web request a task works for (its log lines show it).
REQUEST_ID_HEADER = "request_id"
_HOST = socket.gethostname()


class TaskName:
    """Every task's name, written once: the worker registers each task under it (tasks/*.py) and the
    web, the relay and beat's schedule send it (tests/orders/test_task_names.py holds the two lists
    equal)."""

    PLACE = "orders.place"
    CANCEL = "orders.cancel"
    CANCEL_ALL = "orders.cancel_all"
    CANCEL_EVERYTHING = "orders.cancel_everything"
    ACCOUNT = "account.get"
    ORDER = "account.order"
    OPEN_ORDERS = "account.open_orders"
    ALL_ORDERS = "account.all_orders"
    TRADES = "account.trades"
    HOLDINGS = "account.holdings"
    STREAM_SESSION = "user_stream.session"
    STREAM_SIGNATURE = "user_stream.signature"
    LISTEN_KEY = "user_stream.listen_key"
    LISTEN_KEY_KEEPALIVE = "user_stream.keepalive"
    RELEASE_DUE_ORDERS = "maintenance.release_due_orders"
    RECONCILE_JOBS = "maintenance.reconcile_jobs"
    RESTORE_UNACKED = "maintenance.restore_unacked"
    SYNC_SERVER_TIME = "maintenance.sync_server_time"
    PING = "maintenance.ping"

    @classmethod
    def all(cls) -> set[str]:
        return {value for name, value in vars(cls).items() if name.isupper()}


def task_message(
    name: str, args: tuple | list, queue: str, kwargs: dict | None = None, headers: dict[str, str] | None = None
) -> bytes:
    """A task message as `send_task(name, args, kwargs, queue=queue, ignore_result=True, headers=headers)`
    would LPUSH it: Celery's message protocol v2 (docs.celeryq.dev, "Message Protocol") in kombu's Redis
    envelope (JSON body, base64-encoded). tests/orders/test_task_message.py holds it to kombu's own output.

    `headers` are custom message headers (the web's request id, REQUEST_ID_HEADER): a worker's task
    sees them in `task.request.headers`, and a retry of the task carries them on."""
    task_id = str(uuid.uuid4())
    kwargs = kwargs or {}
    body = orjson.dumps([list(args), kwargs, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}])
    return orjson.dumps(
        {
            "body": base64.b64encode(body).decode(),
            "content-encoding": "utf-8",
            "content-type": "application/json",
            "headers": {
                "lang": "py",
                "task": name,
                "id": task_id,
                "shadow": None,
                "eta": None,
                "expires": None,
                "group": None,
                "group_index": None,
                "retries": 0,
                "timelimit": [None, None],
                "root_id": task_id,
                "parent_id": None,
                "argsrepr": repr(tuple(args)),
                "kwargsrepr": repr(kwargs),
                "origin": f"{os.getpid()}@{_HOST}",
                "ignore_result": True,
                "replaced_task_nesting": 0,
                "stamped_headers": None,
                "stamps": {},
                **(headers or {}),
            },
            "properties": {
                "correlation_id": task_id,
                "reply_to": "",
                "delivery_mode": 2,
                "delivery_info": {"exchange": "", "routing_key": queue},
                "priority": 0,
                "body_encoding": "base64",
                "delivery_tag": str(uuid.uuid4()),
            },
        }
    )
