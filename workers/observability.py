"""Logs and metrics of the Celery processes (worker, beat), hooked into Celery's signals.

- Logging: spotgate's one handler (config.logging) instead of Celery's, so a line is printed once and
  in LOG_FORMAT (Celery would add its own handler, and wrap our stderr in a second logger). Routine
  per-task lines (received, succeeded, beat's "Sending due task") are DEBUG: with a one-second
  schedule they were three lines a second. Every line a task logs carries the request id of the web
  request it works for (the `request_id` message header).
- Metrics: the worker records into a private PROMETHEUS_MULTIPROC_DIR shared by its pool processes
  (and an embedded beat); its main process reports their sum to Redis every METRICS_PUSH_INTERVAL
  (services.metrics.Publisher). A standalone beat reports its own.
"""

from __future__ import annotations

import atexit
import logging
import time

import redis
from celery import signals
from celery.app import trace

from config import Settings
from config.logging import current_request_id, reset_log_context, set_log_context, setup_logging
from config.redis_connection import redis_connection
from services import metrics as telemetry
from services.contract.tasks import REQUEST_ID_HEADER

log = logging.getLogger("spotgate.worker")
BEAT_SENDING = "Scheduler: Sending due task %s (%s)"
_ROUTINE = frozenset((trace.LOG_RECEIVED, trace.LOG_SUCCESS, BEAT_SENDING))

_process: dict = {"publisher": None, "dir": None}
_running: dict[str, tuple] = {}  # task id → (log context token, started)


def routine(record: logging.LogRecord) -> bool:
    """Celery's per-task INFO lines: an operator needs the outcome our tasks log, not these."""
    return isinstance(record.msg, str) and record.msg in _ROUTINE


def _settings() -> Settings:
    return Settings.from_env()


# -- logging ---------------------------------------------------------------------------------------------


@signals.setup_logging.connect
def _setup_logging(**_) -> None:
    settings = _settings()
    setup_logging(settings.log_level, settings.secret_values(), settings.log_format, demote=routine)


@signals.celeryd_init.connect
def _early_logging(instance=None, **_) -> None:
    """Before the worker checks its privileges (a SecurityWarning when run as root) and prints its banner."""
    settings = _settings()
    setup_logging(settings.log_level, settings.secret_values(), settings.log_format, demote=routine)
    logging.captureWarnings(True)  # warnings become log lines in LOG_FORMAT, not raw text on stderr
    # The start-up banner is not a log line: in JSON it would be the one text a collector cannot parse.
    if instance is not None and settings.log_format == "json":
        instance.quiet = True


@signals.task_prerun.connect
def _task_started(task_id=None, task=None, **_) -> None:
    headers = getattr(task.request, "headers", None) or {}
    _running[task_id] = (set_log_context(request_id=headers.get(REQUEST_ID_HEADER)), time.perf_counter())


@signals.task_postrun.connect
def _task_ended(task_id=None, task=None, **_) -> None:
    token, started = _running.pop(task_id, (None, None))
    if started is not None and telemetry.configured():
        telemetry.metrics().task_duration.labels(task.name).observe(time.perf_counter() - started)
    if token is not None:
        reset_log_context(token)


@signals.before_task_publish.connect
def _publishing(sender=None, headers=None, **_) -> None:
    """A task sent from inside another (a retry, a released scheduled order) keeps the request id."""
    request_id = current_request_id()
    if headers is not None and request_id and REQUEST_ID_HEADER not in headers:
        headers[REQUEST_ID_HEADER] = request_id
    if telemetry.configured() and sender:
        telemetry.metrics().tasks_published.labels(sender).inc()


# -- task outcomes -----------------------------------------------------------------------------------------


def _count(task_name: str, outcome: str) -> None:
    if telemetry.configured():
        telemetry.metrics().tasks.labels(task_name, outcome).inc()


@signals.task_success.connect
def _succeeded(sender=None, **_) -> None:
    _count(sender.name, "succeeded")


@signals.task_failure.connect
def _failed(sender=None, **_) -> None:
    _count(sender.name, "failed")


@signals.task_retry.connect
def _retried(sender=None, **_) -> None:
    _count(sender.name, "retried")


# -- metrics: worker ----------------------------------------------------------------------------------------


@signals.worker_init.connect
def _worker_metrics(**_) -> None:
    """Before the pool starts: its processes inherit the directory (a fresh one each start)."""
    path, _created = telemetry.prepare_multiprocess_dir("worker", honour_env=False)
    _process["dir"] = path
    telemetry.configure("worker", multiprocess=True)


@signals.worker_ready.connect
def _worker_reporting(**_) -> None:
    _start_publisher("worker")


@signals.worker_process_shutdown.connect
def _pool_process_ended(pid=None, **_) -> None:
    telemetry.process_stopped(pid)


@signals.worker_shutdown.connect
def _worker_ended(**_) -> None:
    _stop_publisher()
    if _process["dir"]:
        telemetry.remove_multiprocess_dir(_process["dir"])
        _process["dir"] = None


# -- metrics: beat ------------------------------------------------------------------------------------------


@signals.beat_init.connect
def _beat_metrics(**_) -> None:
    if telemetry.configured():
        return  # beat embedded in a worker (-B): its metrics are the worker's
    telemetry.configure("beat")
    _start_publisher("beat")
    atexit.register(_stop_publisher)  # beat has no shutdown signal


def _start_publisher(role: str) -> None:
    if _process["publisher"] is not None:
        return
    settings = _settings()
    url, tls = redis_connection(settings)
    client = redis.Redis.from_url(url, **tls, health_check_interval=30)
    publisher = telemetry.Publisher(
        client, settings.redis_key_prefix, telemetry.process_name(role), role, settings.metrics_push_interval
    )
    publisher.push()  # visible at once, not one interval later
    publisher.start()
    _process["publisher"] = publisher


def _stop_publisher() -> None:
    publisher, _process["publisher"] = _process["publisher"], None
    if publisher is not None:
        publisher.stop()
        publisher.redis.close()
