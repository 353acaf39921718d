"""The processes' logs as an operator reads them: each event once, in one format (text or JSON lines), the
request id from the web request to the worker's line about its order, nothing at INFO for beat's
periodic housekeeping, and every 5xx with its request id."""

from __future__ import annotations

import re
import time
import uuid

import pytest
import redis
import requests

from services import metrics as telemetry
from tests.orders.conftest import Stack
from tests.processes import WebProcess, WorkerProcess, free_port
from tests.support import wait_until

from .conftest import FAST_REPORTS, json_lines

pytestmark = pytest.mark.integration

TEXT_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z level=[A-Z]+ logger=\S+ ")


def _log_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_web_prints_each_line_once_in_one_format(paper, redis_url):
    web = WebProcess(paper.url, redis_url, LOG_LEVEL="INFO")
    try:
        assert web.get("/health", token="").status_code == 200
        lines = _log_lines(web.log_text())
    finally:
        web.stop()
    assert [line for line in lines if not TEXT_LINE.match(line)] == []  # no second, Sanic-formatted copy
    assert sum("Starting worker" in line for line in lines) == 1
    bodies = [line.split(" ", 1)[1] for line in lines]
    assert len(bodies) == len(set(bodies)), "a line was printed twice"


def test_json_lines_carry_the_request_id(paper, redis_url):
    web = WebProcess(paper.url, redis_url, LOG_LEVEL="INFO", LOG_FORMAT="json")
    try:
        answer = web.http.get(
            web.url + "/api/v1/ticker/price",
            params={"symbol": "BTCUSDT"},
            timeout=10,
            headers={"Authorization": f"Bearer {web.token()}", "X-Request-ID": "json-req-1"},
        )
        assert answer.status_code == 200
        lines = json_lines(web.log_text())
    finally:
        web.stop()
    assert all({"time", "level", "logger", "message", "pid"} <= line.keys() for line in lines)
    (access,) = [line for line in lines if line.get("request_id") == "json-req-1"]
    assert (access["logger"], access["route"], access["status"]) == ("spotgate.access", "/api/v1/ticker/price", 200)


def test_5xx_answers_are_logged_with_their_request_id(redis_url):
    # Binance unreachable: the pass-through answers 503, and even at LOG_LEVEL=WARNING the line is there
    web = WebProcess(f"http://127.0.0.1:{free_port()}", redis_url, LOG_LEVEL="WARNING")
    try:
        answer = web.http.get(
            web.url + "/api/v1/klines",
            params={"symbol": "BTCUSDT", "interval": "1m"},
            timeout=30,
            headers={"Authorization": f"Bearer {web.token()}", "X-Request-ID": "five-oh-three"},
        )
        assert answer.status_code == 503, answer.text
        lines = [line for line in _log_lines(web.log_text()) if "request_id=five-oh-three" in line]
    finally:
        web.stop()
    assert len(lines) == 1, lines
    assert "level=WARNING" in lines[0] and "status=503" in lines[0] and "code=UPSTREAM_UNAVAILABLE" in lines[0]


def test_the_request_id_reaches_the_workers_line_for_that_order(redis_url):
    env = {"LOG_LEVEL": "INFO", "LOG_FORMAT": "json"}
    stack = Stack(redis_url, worker_env=env, web_env=env)
    try:
        request_id = f"order-{uuid.uuid4().hex[:12]}"
        answer = stack.post(
            "/api/v1/order",
            {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.001"},
            headers={"X-Request-ID": request_id},
        )
        assert answer.status_code == 201, answer.text
        job_id = answer.json()["data"]["jobId"]
        # the worker writes its line right after the job record the web answered from: read until it is there
        # (the banner is off and warnings are log lines too)
        ours = wait_until(
            lambda: [line for line in json_lines(stack.worker.log_text()) if line.get("request_id") == request_id],
            10,
            "the worker's line for the order",
            interval=0.1,
        )
    finally:
        stack.stop()
    assert [line["logger"] for line in ours] == ["spotgate.placement"], ours
    assert job_id in ours[0]["message"] and "succeeded" in ours[0]["message"]


def test_worker_and_beat_are_quiet_at_info_about_their_periodic_tasks(redis_url, redis_prefix):
    prefix = f"{redis_prefix}quiet:"
    worker = WorkerProcess("http://127.0.0.1:9", redis_url, prefix, LOG_LEVEL="INFO", **FAST_REPORTS)
    client = redis.Redis.from_url(redis_url)
    try:
        # beat sends maintenance.release_due_orders every second; the worker's report counts the runs
        deadline = time.monotonic() + 30
        runs = 0
        while runs < 3:
            assert time.monotonic() < deadline, "beat's one-second task did not run three times in 30 s"
            time.sleep(0.3)
            raw = client.hget(prefix + telemetry.REPORTS_KEY, telemetry.process_name("worker", worker.proc.pid))
            if raw:
                runs = sum(
                    s.value
                    for f in telemetry.decode(raw)["families"]
                    for s in f.samples
                    if s.name == "spotgate_worker_tasks_total"
                    and s.labels.get("task") == "maintenance.release_due_orders"
                )
        text = worker.log_text()
    finally:
        worker.stop()
        client.close()
    lines = [line for line in _log_lines(text) if TEXT_LINE.match(line)]
    assert not [line for line in lines if "release_due_orders" in line or "Sending due task" in line]
    assert not [line for line in lines if " received" in line or " succeeded in " in line]
    # and what is there is ours, once: no line wrapped by Celery's stdout redirection
    assert not [line for line in _log_lines(text) if "/ForkPoolWorker" in line or "/MainProcess]" in line]


def test_sanic_logs_through_one_handler_with_two_workers(paper, redis_url):
    web = WebProcess(paper.url, redis_url, workers=2, LOG_LEVEL="INFO")
    try:
        assert requests.get(web.url + "/health", timeout=10).status_code == 200
        # both workers up (stopping Sanic while a worker still starts is another matter: issue 11's SIGTERM)
        wait_until(lambda: web.log_text().count("Worker ready") >= 2, 60, "the second worker started", interval=0.1)
        lines = _log_lines(web.log_text())
    finally:
        web.stop()
    assert [line for line in lines if not TEXT_LINE.match(line)] == []
