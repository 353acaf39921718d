"""`GET /metrics`: the whole deployment's Prometheus metrics from any web process (README "Operations").

    this web process (or dyno: its Sanic workers share a PROMETHEUS_MULTIPROC_DIR) ──┐
    every other process's latest report in Redis (`<prefix>metrics:reports`) ──────┼─▶ one scrape
    state read from Redis at scrape time (Celery queues, weight budget, jobs) ──────┘

Each process's series carry `process` (dyno name, else role-host-pid); `spotgate_process_up` lists
the processes reporting. Access: `Authorization: Bearer <METRICS_TOKEN>` when METRICS_TOKEN is set;
without it /metrics is open in paper mode and refused in live mode.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import time

from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from redis.exceptions import RedisError
from sanic import Blueprint, HTTPResponse, Request, Sanic
from sanic_ext import openapi

from services import metrics as telemetry
from services.contract.keys import Keys
from services.contract.tasks import QUEUES

from .errors import Forbidden, Unauthorized

log = logging.getLogger("spotgate.metrics")

bp = Blueprint("metrics")


class _Families:
    """What generate_latest() reads: anything with `collect()`."""

    def __init__(self, families: list[Metric]):
        self._families = families

    def collect(self):
        return self._families


def _authorize(request: Request) -> None:
    settings = request.app.ctx.settings
    token = settings.metrics_token
    if token is None:
        if settings.is_paper:
            return
        raise Forbidden(
            "/metrics is disabled: set METRICS_TOKEN and scrape with that bearer token", code="METRICS_TOKEN_REQUIRED"
        )
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise Unauthorized("/metrics needs 'Authorization: Bearer <METRICS_TOKEN>'", code="METRICS_TOKEN_INVALID")


@bp.get("/metrics")
async def scrape(request: Request):
    """Prometheus text format (not JSON): this process's families, every other process's report, and
    gauges of the shared state."""
    _authorize(request)
    ctx = request.app.ctx
    own = ctx.metrics_process
    reports = [(own, "web", telemetry.collect())]
    shared: list[Metric] = []
    try:
        reports += await _reports(ctx, own)
        shared = await _shared_state(ctx)
    except (RedisError, OSError) as exc:
        # this process's own metrics still say something; the gap in the others says Redis is down
        log.warning("/metrics without the other processes' reports: Redis failed (%r)", exc)
    up = GaugeMetricFamily(
        "spotgate_process_up",
        "Processes whose metrics this scrape holds (1), by role",
        labels=(telemetry.PROCESS_LABEL, "role"),
    )
    for process, role, _ in reports:
        up.add_metric([process, role], 1)
    families = telemetry.merge([(process, families) for process, _, families in reports]) + shared + [up]
    return HTTPResponse(generate_latest(_Families(families)), content_type=CONTENT_TYPE_LATEST)


async def _reports(ctx, own: str) -> list[tuple[str, str, list[Metric]]]:
    """Every other process's latest report; lapsed ones (their process stopped) are removed."""
    key = ctx.settings.redis_key_prefix + telemetry.REPORTS_KEY
    now, found, lapsed = time.time(), [], []
    for raw_name, raw in (await ctx.redis.hgetall(key)).items():
        name = raw_name.decode()
        if name == own:
            continue
        try:
            report = telemetry.decode(raw)
        except (ValueError, KeyError, TypeError):
            log.warning("ignored a malformed metrics report of %s", name)
            continue
        if telemetry.fresh(report, now):
            found.append((name, report["role"], report["families"]))
        else:
            lapsed.append(raw_name)
    if lapsed:
        await ctx.redis.hdel(key, *lapsed)
    return found


async def _shared_state(ctx) -> list[Metric]:
    """Gauges of what all processes share in Redis, read now (one round trip)."""
    keys = Keys(ctx.settings.redis_key_prefix)
    budget = ctx.upstream.budget
    jobs = ctx.jobs
    now_ms = int(time.time() * 1000)
    async with ctx.redis.pipeline(transaction=False) as pipe:
        for queue in QUEUES:
            pipe.llen(keys.queue(queue))
        pipe.hlen(keys.celery_unacked)
        pipe.get(budget.weight_key(now_ms))
        pipe.get(budget.pause_key)
        pipe.zcard(jobs.scheduled)
        pipe.zcard(jobs.open)
        answers = await pipe.execute()
    lengths, answers = answers[: len(QUEUES)], answers[len(QUEUES) :]
    unacked, used, pause, scheduled, open_jobs = answers
    queue_family = GaugeMetricFamily(
        "spotgate_celery_queue_length", "Task messages waiting in a Celery queue", labels=("queue",)
    )
    for queue, length in zip(QUEUES, lengths, strict=True):
        queue_family.add_metric([queue], length)
    used = int(used or 0)
    pause_left = 0.0
    if pause:
        until_ms = int(pause.split(b"|", 1)[0])
        pause_left = max(0.0, (until_ms - now_ms) / 1000)
    return [
        queue_family,
        GaugeMetricFamily(
            "spotgate_celery_unacked_tasks",
            "Task messages delivered to workers and not yet "
            "acknowledged (running, or waiting for a dead worker's visibility timeout)",
            value=unacked,
        ),
        GaugeMetricFamily(
            "spotgate_upstream_weight_used",
            "Request weight used this minute by all processes (the shared budget, synced with X-MBX-USED-WEIGHT-1M)",
            value=used,
        ),
        GaugeMetricFamily(
            "spotgate_upstream_weight_limit",
            "The shared budget's request weight per minute (90% of Binance's REQUEST_WEIGHT limit)",
            value=budget.limit,
        ),
        GaugeMetricFamily(
            "spotgate_upstream_weight_remaining", "Request weight left this minute", value=max(0, budget.limit - used)
        ),
        GaugeMetricFamily(
            "spotgate_upstream_pause_remaining_seconds",
            "Seconds until calls resume after a Binance 429 or 418 (0: not paused)",
            value=pause_left,
        ),
        GaugeMetricFamily("spotgate_order_jobs_scheduled", "Orders waiting for their executeAt", value=scheduled),
        GaugeMetricFamily("spotgate_order_jobs_open", "Order jobs not final yet (queued or running)", value=open_jobs),
    ]


async def _report(ctx) -> None:
    """This process's report into Redis, for scrapes that land on another web dyno."""
    interval = ctx.settings.metrics_push_interval
    key = ctx.settings.redis_key_prefix + telemetry.REPORTS_KEY
    report = telemetry.encode(telemetry.collect(), role_="web", interval=interval)
    async with ctx.redis.pipeline(transaction=False) as pipe:
        pipe.hset(key, ctx.metrics_process, report)
        pipe.expire(key, telemetry.reports_key_ttl(interval))
        await pipe.execute()


async def _publish(app: Sanic) -> None:
    trouble_logged = 0.0
    while True:
        await asyncio.sleep(app.ctx.settings.metrics_push_interval)
        try:
            await _report(app.ctx)
        except (RedisError, OSError) as exc:
            if time.monotonic() - trouble_logged > 60:
                trouble_logged = time.monotonic()
                log.warning("could not report metrics to Redis (%r)", exc)


def setup_metrics(app: Sanic) -> None:
    """Metrics for this process, the multiprocess directory of Sanic's workers, and the route.

    `sanic --workers N` starts N processes (spawned: fresh interpreters) from a main process that
    serves nothing. The main process empties (or makes) the directory before they start and exports
    it as PROMETHEUS_MULTIPROC_DIR, so each worker records into it and any worker's /metrics sums them
    all; a single process (`--single-process`) keeps its values in memory.
    """
    in_worker = bool(os.environ.get("SANIC_WORKER_NAME"))
    telemetry.configure("web", multiprocess=in_worker and bool(os.environ.get(telemetry.MULTIPROC_ENV)))
    # Every worker of one main process reports under the same name: their values are already summed.
    app.ctx.metrics_process = telemetry.process_name("web", os.getppid() if in_worker else os.getpid())

    @app.main_process_start
    async def prepare_directory(app_: Sanic):
        path, created = telemetry.prepare_multiprocess_dir("web", honour_env=True)
        app_.ctx.metrics_dir = path if created else None

    @app.main_process_stop
    async def remove_directory(app_: Sanic):
        if getattr(app_.ctx, "metrics_dir", None):
            telemetry.remove_multiprocess_dir(app_.ctx.metrics_dir)

    @app.after_server_start
    async def start_publishing(app_: Sanic):
        app_.ctx.metrics_publisher = asyncio.create_task(_publish(app_), name="metrics-publisher")

    @app.before_server_stop
    async def stop_publishing(app_: Sanic):
        app_.ctx.metrics_publisher.cancel()
        await asyncio.gather(app_.ctx.metrics_publisher, return_exceptions=True)
        try:
            await asyncio.wait_for(_report(app_.ctx), 2.0)  # the last increments, while Redis is open
        except (TimeoutError, RedisError, OSError) as exc:
            log.warning("could not report metrics to Redis at stop (%r)", exc)

    @app.after_server_stop
    async def leave(app_: Sanic):
        telemetry.process_stopped()

    app.blueprint(bp)
    openapi.exclude(bp=bp)  # Prometheus text, not JSON: README "Operations" documents it
