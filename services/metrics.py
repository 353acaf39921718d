"""Prometheus metrics of every spotgate process, and how they reach one scrape (README "Operations").

    configure(role, multiprocess)  once per process, before the first metric is used
    metrics()                      the metric families (built at first use, after configure)
    collect()                      this process's families now — or, in multiprocess mode, the sum over
                                   the processes sharing its PROMETHEUS_MULTIPROC_DIR (Sanic's or
                                   Celery's workers)
    Publisher                      a thread writing collect() to Redis every METRICS_PUSH_INTERVAL
    encode() / decode()            a report as stored in Redis (JSON) and back
    merge(reports)                 families of several processes, each once, with a `process` label

Every process reports into ONE Redis hash (`<prefix>metrics:reports`, a field per process), and the
web's `GET /metrics` answers its own families plus everyone else's: a Heroku app has one public
port and its dynos cannot be scraped one by one, while any web dyno can read Redis. Each process
keeps its own series (label `process`: the dyno name, else role-host-pid), so a restart is a counter
reset of that series, which Prometheus' rate() handles, never a drop in a sum.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import shutil
import socket
import tempfile
import threading
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, values
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.samples import Sample

log = logging.getLogger("spotgate.metrics")

ROLES = ("web", "worker", "beat", "stream")
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
REPORTS_KEY = "metrics:reports"  # after the key prefix
PROCESS_LABEL = "process"

# Buckets in seconds: HTTP answers and upstream calls take ms; order jobs up to a pacing wait.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
JOB_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

_lock = threading.Lock()
_state: dict = {"role": None, "multiprocess": False, "metrics": None}


class Metrics:
    """Every metric family spotgate records. Names follow Prometheus' conventions: base units
    (seconds), `_total` counters, labels with bounded values (route templates, task names, codes)."""

    def __init__(self, registry: CollectorRegistry | None):
        def counter(name, doc, labels=()):
            return Counter(name, doc, labels, registry=registry)

        def gauge(name, doc, labels=(), mode="livesum"):
            return Gauge(name, doc, labels, registry=registry, multiprocess_mode=mode)

        def histogram(name, doc, labels=(), buckets=LATENCY_BUCKETS):
            return Histogram(name, doc, labels, registry=registry, buckets=buckets)

        # -- web: HTTP ----------------------------------------------------------------------------------
        self.http_requests = counter(
            "spotgate_http_requests_total",
            "HTTP requests answered, by route template, method and status",
            ("route", "method", "status"),
        )
        self.http_duration = histogram(
            "spotgate_http_request_duration_seconds",
            "Time to answer an HTTP request (WebSocket sessions excluded)",
            ("route", "method"),
        )
        self.api_errors = counter(
            "spotgate_api_errors_total",
            "Error answers (HTTP bodies and WebSocket error frames), by error code",
            ("code",),
        )
        self.auth_failures = counter(
            "spotgate_auth_failures_total",
            "Refused tokens and logins, by kind (TOKEN_MISSING, TOKEN_INVALID, TOKEN_EXPIRED, TOKEN_REVOKED, ...)",
            ("code", "transport"),
        )
        # -- web: WebSocket -----------------------------------------------------------------------------
        self.ws_connections = gauge("spotgate_ws_connections", "Open WebSocket connections")
        self.ws_opened = counter("spotgate_ws_connections_opened_total", "WebSocket connections accepted")
        self.ws_refused = counter(
            "spotgate_ws_upgrades_refused_total", "WebSocket upgrades refused over MAX_WS_CONNECTIONS (503)"
        )
        self.ws_deliveries = counter(
            "spotgate_ws_deliveries_total",
            "Data messages handed to WebSocket clients (one per client and message), by channel kind",
            ("kind",),
        )
        self.ws_dropped = counter(
            "spotgate_ws_dropped_total",
            "Messages a client did not get as such: a ticker "
            "replaced by a newer one in its queue (conflated), a depth diff answered with a "
            "fresh snapshot instead (resync)",
            ("kind", "reason"),
        )
        self.ws_slow_closes = counter(
            "spotgate_ws_slow_client_closes_total", "Connections closed 4008 because the client did not keep up"
        )
        # -- every process that calls Binance -------------------------------------------------------------
        self.upstream_requests = counter(
            "spotgate_upstream_requests_total",
            "Binance REST calls, by endpoint and HTTP status (timeout, unreachable or connection_lost when none)",
            ("endpoint", "status"),
        )
        self.upstream_duration = histogram(
            "spotgate_upstream_request_duration_seconds", "Binance REST call latency", ("endpoint",)
        )
        self.upstream_limited = counter(
            "spotgate_upstream_rate_limited_total",
            "Binance answers 429 (rate limited) and 418 (IP banned)",
            ("status",),
        )
        self.upstream_weight = gauge(
            "spotgate_upstream_reported_weight",
            "X-MBX-USED-WEIGHT-1M of the latest Binance answer this process got",
            mode="mostrecent",
        )
        self.budget_refusals = counter(
            "spotgate_upstream_budget_refusals_total",
            "Calls not made because the shared weight budget was spent or Binance had paused us",
        )
        # -- workers: orders and tasks ----------------------------------------------------------------------
        self.order_jobs = counter(
            "spotgate_order_jobs_total", "Order jobs that turned final, by outcome (succeeded, failed)", ("outcome",)
        )
        self.order_failures = counter("spotgate_order_job_failures_total", "Failed order jobs by error code", ("code",))
        self.order_duration = histogram(
            "spotgate_order_job_duration_seconds",
            "From a job's creation (or its executeAt) to its final state",
            ("outcome",),
            JOB_BUCKETS,
        )
        self.order_unknown = counter(
            "spotgate_order_unknown_outcomes_total",
            "Order sends whose outcome was unknown (timeout, 5xx, lost connection): looked up before any resend",
        )
        self.tasks = counter(
            "spotgate_worker_tasks_total",
            "Celery tasks run, by task and outcome (succeeded, failed, retried)",
            ("task", "outcome"),
        )
        self.task_duration = histogram(
            "spotgate_worker_task_duration_seconds", "Celery task run time", ("task",), JOB_BUCKETS
        )
        self.tasks_published = counter(
            "spotgate_tasks_published_total",
            "Celery task messages sent, by task (web requests, beat schedules, the relay's signature requests)",
            ("task",),
        )
        self.orders_released = counter(
            "spotgate_scheduled_orders_released_total", "Scheduled orders queued when their executeAt came"
        )
        self.jobs_redriven = counter(
            "spotgate_order_jobs_redriven_total",
            "Jobs left unfinished by a lost run and queued again by reconciliation",
        )
        # -- the stream relay ------------------------------------------------------------------------------
        self.stream_messages = counter(
            "spotgate_stream_messages_total", "Upstream stream messages received, by kind", ("kind",)
        )
        self.stream_lag = histogram(
            "spotgate_stream_lag_seconds", "Event time (Binance's E) to the relay publishing it", ("kind",), LAG_BUCKETS
        )
        self.stream_reconnects = counter(
            "spotgate_stream_reconnects_total", "Upstream WebSocket connections made again after a drop", ("link",)
        )
        self.stream_connect_failures = counter(
            "spotgate_stream_connect_failures_total", "Failed upstream WebSocket connection attempts", ("link",)
        )
        self.stream_connections = gauge("spotgate_stream_connections", "Open upstream WebSocket connections", ("link",))
        self.stream_resyncs = counter(
            "spotgate_stream_depth_resyncs_total", "Order books rebuilt after a gap in the diff stream"
        )


def configure(role: str, *, multiprocess: bool = False) -> None:
    """Choose how this process keeps its metrics; call before the first `metrics()`.

    `multiprocess`: several processes share PROMETHEUS_MULTIPROC_DIR (which the caller has set up,
    see `prepare_multiprocess_dir`) and `collect()` sums them. Otherwise values live in this process.
    prometheus_client picks its value class from the environment when it is imported; spotgate
    builds its metrics only after this call, so the choice is made here, explicitly.
    """
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    with _lock:
        if _state["metrics"] is not None:
            # already built: inherited across a fork from a configured parent (fine), or used before
            # the entry point configured it (a bug: this process keeps the mode it started with)
            if _state["multiprocess"] != multiprocess:
                log.warning(
                    "metrics were used before configure(%r): multiprocess=%s kept", role, _state["multiprocess"]
                )
            return
        if multiprocess and not os.path.isdir(os.environ.get(MULTIPROC_ENV, "")):
            raise ValueError(f"multiprocess metrics need {MULTIPROC_ENV} to name a directory")
        values.ValueClass = values.MultiProcessValue() if multiprocess else values.MutexValue
        disable_created_metrics()  # `_created` series double the output and say nothing we use
        _state.update(role=role, multiprocess=multiprocess)


def metrics() -> Metrics:
    """The families of this process, built on first use (after `configure`)."""
    built = _state["metrics"]
    if built is not None:
        return built
    with _lock:
        if _state["metrics"] is None:
            if _state["role"] is None:
                # code used outside a spotgate process (a test driving a service directly): in memory
                values.ValueClass = values.MutexValue
                disable_created_metrics()
                _state.update(role="local", multiprocess=False)
            registry = None if _state["multiprocess"] else CollectorRegistry(auto_describe=True)
            _state["registry"] = registry
            _state["metrics"] = Metrics(registry)
        return _state["metrics"]


def configured() -> bool:
    return _state["role"] is not None and _state["role"] != "local"


def role() -> str | None:
    return _state["role"]


def collect() -> list[Metric]:
    """This process's families (multiprocess: summed over the directory's processes)."""
    metrics()
    if _state["multiprocess"]:
        return list(MultiProcessCollector(None, os.environ[MULTIPROC_ENV]).collect())
    return list(_state["registry"].collect())


def process_name(role_: str, pid: int | None = None) -> str:
    """This process's `process` label: Heroku's dyno name (`web.1`), else role-host-pid."""
    dyno = os.environ.get("DYNO")
    return dyno or f"{role_}-{socket.gethostname()}-{pid or os.getpid()}"


def observe_upstream(request, status, elapsed_ms: float, rate_limits) -> None:
    """binance_client's observer: one Binance REST call ended (see binance_client.client)."""
    m = metrics()
    endpoint = f"{request.method} {request.path}"  # our endpoint builders: a bounded set
    m.upstream_requests.labels(endpoint, str(status)).inc()
    m.upstream_duration.labels(endpoint).observe(elapsed_ms / 1000)
    if status == 429 or status == 418:
        m.upstream_limited.labels(str(status)).inc()
    if rate_limits is not None and rate_limits.used_weight_1m is not None:
        m.upstream_weight.set(rate_limits.used_weight_1m)


# -- the multiprocess directory ---------------------------------------------------------------------------


def prepare_multiprocess_dir(role_: str, *, honour_env: bool) -> tuple[str, bool]:
    """A directory for the processes about to be started, emptied, and exported as PROMETHEUS_MULTIPROC_DIR
    for them to inherit. `honour_env`: use the one the environment names (the web), else a fresh private
    one. Returns (path, created) — a created one is removed by `remove_multiprocess_dir`."""
    path = os.environ.get(MULTIPROC_ENV) if honour_env else None
    created = not path
    if not path:
        _remove_orphaned_dirs(role_)
        path = tempfile.mkdtemp(prefix=f"spotgate-{role_}-metrics-{os.getpid()}-")
    else:
        os.makedirs(path, exist_ok=True)
        # Files of a previous run would be summed into this one's counters.
        for stale in glob.glob(os.path.join(path, "*.db")):
            os.remove(stale)
    os.environ[MULTIPROC_ENV] = path
    return path, created


def _remove_orphaned_dirs(role_: str) -> None:
    """Directories a killed process (SIGKILL: no stop listener ran) left behind, named by its pid."""
    for path in glob.glob(os.path.join(tempfile.gettempdir(), f"spotgate-{role_}-metrics-*-*")):
        pid = os.path.basename(path).split("-")[3]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def remove_multiprocess_dir(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)


def process_stopped(pid: int | None = None) -> None:
    """A process of a multiprocess directory is ending: its `live` gauges stop counting."""
    if _state["multiprocess"] and os.environ.get(MULTIPROC_ENV):
        mark_process_dead(pid or os.getpid())


# -- reports in Redis ---------------------------------------------------------------------------------------


def report_ttl(interval: float) -> float:
    """How long a report stays valid: three missed pushes, and never under 15 s."""
    return max(15.0, 3 * interval + 5)


def reports_key_ttl(interval: float) -> int:
    """The reports hash outlives every report in it; with no process left it expires."""
    return int(report_ttl(interval) * 4)


def encode(families: list[Metric], *, role_: str, interval: float) -> str:
    """A report: when, who, how long it stays valid, and every sample. JSON (not orjson): sample values
    may be +Inf or NaN, which JSON's Python dialect keeps."""
    return json.dumps(
        {
            "at": time.time(),
            "role": role_,
            "ttl": report_ttl(interval),
            "families": [
                [f.name, f.type, f.documentation, [[s.name, s.labels, s.value] for s in f.samples]] for f in families
            ],
        },
        separators=(",", ":"),
    )


def decode(raw: bytes | str) -> dict:
    report = json.loads(raw)
    families = []
    for name, typ, documentation, samples in report["families"]:
        family = Metric(name, documentation, typ)
        family.samples = [Sample(s_name, labels, value) for s_name, labels, value in samples]
        families.append(family)
    report["families"] = families
    return report


def fresh(report: dict, now: float | None = None) -> bool:
    return (now or time.time()) - report["at"] <= report["ttl"]


def merge(reports: list[tuple[str, list[Metric]]]) -> list[Metric]:
    """One family per name across processes, each process's samples labelled `process`."""
    merged: dict[str, Metric] = {}
    for process, families in reports:
        for family in families:
            target = merged.get(family.name)
            if target is None:
                target = merged[family.name] = Metric(family.name, family.documentation, family.type)
            elif target.type != family.type:
                log.warning(
                    "metric %s is a %s in one process and a %s in another; kept the first",
                    family.name,
                    target.type,
                    family.type,
                )
                continue
            target.samples.extend(Sample(s.name, {**s.labels, PROCESS_LABEL: process}, s.value) for s in family.samples)
    return list(merged.values())


class Publisher(threading.Thread):
    """Writes this process's report to Redis every `interval` seconds, and once more when stopped
    (so the last increments are seen); a report lapses `ttl` after its writer stopped."""

    def __init__(self, redis_client, prefix: str, name: str, role_: str, interval: float):
        super().__init__(name="metrics-publisher", daemon=True)
        self.redis = redis_client
        self.key = prefix + REPORTS_KEY
        self.process = name
        self.role = role_
        self.interval = interval
        self._stopped = threading.Event()
        self._trouble_logged = 0.0

    def run(self) -> None:
        while not self._stopped.wait(self.interval):
            self.push()

    def push(self) -> None:
        # imported here: the error classes' importers (`python -m app.tokens`) must not load redis-py
        from redis.exceptions import RedisError

        try:
            report = encode(collect(), role_=self.role, interval=self.interval)
            pipe = self.redis.pipeline(transaction=False)
            pipe.hset(self.key, self.process, report)
            pipe.expire(self.key, reports_key_ttl(self.interval))
            pipe.execute()
        except (RedisError, OSError) as exc:
            if time.monotonic() - self._trouble_logged > 60:
                self._trouble_logged = time.monotonic()
                log.warning("could not report metrics to Redis (%s); retrying every %g s", exc, self.interval)

    def stop(self) -> None:
        self._stopped.set()
        if self.is_alive():
            self.join(timeout=5)
        self.push()
