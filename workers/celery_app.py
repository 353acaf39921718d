"""The Celery app: `celery -A workers.celery_app worker`. All Celery configuration lives here.

- Redis is broker and result store (the only shared state, see design.md).
- Orders have their own queue so slow reads never delay them; `-Q orders,default` serves both.
- Tasks are short and latency-sensitive: prefetch 1, acks_late + reject_on_worker_lost so a task on a
  worker that dies is delivered again (every task here is safe to run twice: orders look their
  client order id up before sending).
- No ETA/countdown tasks: `executeAt` orders are held in a Redis sorted set and enqueued when due,
  so the broker's visibility timeout only has to outlast a running task, and a killed worker's task
  comes back after BROKER_VISIBILITY_TIMEOUT seconds (and a few more: beat's restore_unacked scan,
  tasks/maintenance.py).
- SIGTERM (Heroku's, honcho's) reaches every process of the dyno, pool children included. The main
  process then shuts down warm: it takes no new task and waits for the running ones, exiting 0. A pool
  child ignores that first SIGTERM so the order it is placing is finished rather than cut off
  mid-call; tasks reserved but not started go back to the queue for the next worker.
- A lost broker connection (a Redis restart) does not cancel running tasks
  (worker_cancel_long_running_tasks_on_connection_loss=False): an order task carries on, and one that
  cannot record its outcome waits for Redis and runs again (services/placement.py). Its message may
  come back after the visibility timeout as well; that run finds the job final.
- Nothing is read at import: the app's loader reads the settings from the environment when Celery
  first needs its configuration (the CLI's `-A workers.celery_app` at start, or the first `app.conf` /
  `send_task` of a process that imports the app), so importing this module (tasks, tests, tools) has
  no side effects. A bad setting still stops `celery worker` and `celery beat` at start, naming it.
- The web process enqueues with `services.contract.tasks.task_message()` + an asyncio LPUSH instead of
  `send_task()`: kombu publishes synchronously (blocking the event loop for a Redis round trip, ~1 ms
  of CPU an order), and one LPUSH can share a MULTI with the job record it belongs to.
"""

from __future__ import annotations

import signal
import warnings

from billiard.process import current_process
from celery import Celery
from celery.exceptions import CPendingDeprecationWarning
from celery.loaders.app import AppLoader
from celery.signals import task_prerun, worker_init, worker_ready
from kombu import Queue

from config import Settings
from config.redis_connection import celery_redis
from services.contract.keys import Keys
from services.contract.tasks import QUEUES, TaskName

from . import observability  # noqa: F401  (connects the logging and metrics signal handlers)


def celery_config(settings: Settings) -> dict:
    """Celery's configuration for these settings (no I/O)."""
    # Only connection facts are kept: nothing here may hand the worker's Binance credentials on.
    url, ssl_options = celery_redis(settings)
    config: dict = dict(broker_url=url, result_backend=url)
    if ssl_options is not None:  # rediss://: the same TLS options as every other Redis client
        config.update(broker_use_ssl=ssl_options, redis_backend_use_ssl=ssl_options)
    config.update(
        task_queues=tuple(Queue(name) for name in QUEUES),
        task_default_queue="default",
        task_routes={"orders.*": {"queue": "orders"}},
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,  # outcomes go to job records and reply lists in Redis, not to results
        # No results are stored, so none expire: without this, beat builds the result backend (a lazy
        # import of celery.backends.redis) right after "beat: Starting", and a SIGTERM landing in that
        # import made it exit 1 with "partially initialized module" instead of 0.
        result_expires=None,
        task_serializer="json",
        accept_content=["json"],
        broker_transport_options={
            "visibility_timeout": settings.broker_visibility_timeout,
            "global_keyprefix": Keys(settings.redis_key_prefix).celery_prefix,
        },
        result_backend_transport_options={"global_keyprefix": Keys(settings.redis_key_prefix).celery_prefix},
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        worker_cancel_long_running_tasks_on_connection_loss=False,
        worker_soft_shutdown_timeout=10.0,  # SIGTERM: finish what runs, up to 10 s (Heroku gives 30)
        worker_enable_soft_shutdown_on_idle=True,
        beat_schedule={
            "due-scheduled-orders": {"task": TaskName.RELEASE_DUE_ORDERS, "schedule": 1.0},
            "reconcile-jobs": {"task": TaskName.RECONCILE_JOBS, "schedule": 15.0},
            "sync-server-time": {"task": TaskName.SYNC_SERVER_TIME, "schedule": 300.0},
            # kombu 5.6 itself scans for unacked messages past their visibility timeout only every
            # 100 s (10 s x every 10th call): a dead worker's tasks would come back up to 100 s late.
            # Beat asks for the same scan (one ZRANGE under kombu's mutex) every few seconds.
            "restore-unacked-tasks": {
                "task": TaskName.RESTORE_UNACKED,
                "schedule": float(restore_every(settings.broker_visibility_timeout)),
            },
        },
    )
    if settings.user_stream_mode == "listen-key":
        # the stream relay's listen key lives 60 min unless refreshed (Binance asks for every 30 min)
        config["beat_schedule"]["keep-listen-key-alive"] = {
            "task": TaskName.LISTEN_KEY_KEEPALIVE,
            "schedule": settings.listen_key_keepalive,
        }
    return config


def restore_every(visibility_timeout: int) -> int:
    """Seconds between scans for unacked task messages past the visibility timeout."""
    return max(1, min(10, visibility_timeout // 4))


class EnvironmentLoader(AppLoader):
    """Celery's loader for the app: the configuration is `celery_config(Settings.from_env())`, read
    when Celery first asks for it. A loader, not an `on_configure` handler: Celery logs and swallows
    what a signal handler raises, and would then run on its defaults (an AMQP broker on localhost)."""

    def read_configuration(self, env: str = "CELERY_CONFIG_MODULE") -> dict:
        return celery_config(Settings.from_env())


app = Celery(
    "spotgate",
    loader=EnvironmentLoader,
    include=["tasks.orders", "tasks.account", "tasks.maintenance", "tasks.user_stream"],
)


@worker_init.connect
def _refuse_to_start_without_a_usable_key(**_) -> None:
    """A worker that cannot sign must not start and then fail every task: check the key first (it is
    loaded again, on first use, in each worker process)."""
    from workers.resources import signing_key

    try:
        signing_key(Settings.from_env())
    except ValueError as exc:
        raise SystemExit(f"spotgate worker refuses to start: {exc}") from None


@worker_ready.connect
def _quiet_the_cancel_on_connection_loss_notice(**_) -> None:
    """Celery warns at every lost broker connection that 6.0 will cancel running tasks by default;
    not cancelling is chosen above, on purpose. Installed once the worker is up: Celery's logging setup
    puts its own 'always' filter for the category first."""
    warnings.filterwarnings("ignore", message="\nIn Celery 5.1 we introduced", category=CPendingDeprecationWarning)


@task_prerun.connect
def _finish_the_running_task_on_sigterm(**_) -> None:
    # In a pool child SIGTERM runs billiard's handler, which exits at once: the order being placed
    # would be cut off mid-call (not lost: redelivered after the visibility timeout and looked up by
    # its client order id, but late), while the main process's warm shutdown waits for it anyway. So
    # the first SIGTERM (the dyno-wide one) is absorbed and billiard's handler put back: a second one
    # (billiard ending the pool on a cold shutdown, Celery cancelling a task) still ends the child.
    # Installed per task, not at process start: billiard resets the handlers after Celery's initializer.
    if current_process()._name == "MainProcess":
        return  # solo/threads pools: SIGTERM is Celery's own warm-shutdown handler here
    current = signal.getsignal(signal.SIGTERM)
    if getattr(current, "absorbs_sigterm", False) or not callable(current):
        return

    def absorb_first_sigterm(signum, frame) -> None:
        signal.signal(signal.SIGTERM, current)

    absorb_first_sigterm.absorbs_sigterm = True
    signal.signal(signal.SIGTERM, absorb_first_sigterm)
