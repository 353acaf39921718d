"""The pure parts of metrics and logs: a process's report survives Redis unchanged, reports merge into one
valid exposition with a `process` label, JSON log lines carry the request id, routine lines demote."""

from __future__ import annotations

import io
import json
import logging

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from config.logging import ContextFilter, Demote, JsonFormatter, SecretRedactingFilter, SingleLineFormatter, log_context
from services import metrics as telemetry


class _Families:
    def __init__(self, families):
        self.families = families

    def collect(self):
        return self.families


def _process_families(requests: int) -> list:
    registry = CollectorRegistry()
    Counter("demo_requests_total", "Requests", ["route"], registry=registry).labels("/a").inc(requests)
    Histogram("demo_latency_seconds", "Latency", registry=registry, buckets=(0.1, 1.0)).observe(0.5)
    return list(registry.collect())


def test_a_report_round_trips_through_its_redis_form():
    families = _process_families(3)
    report = telemetry.decode(telemetry.encode(families, role_="worker", interval=5))
    assert report["role"] == "worker" and telemetry.fresh(report)
    assert not telemetry.fresh(report, now=report["at"] + report["ttl"] + 1)
    original = {(s.name, tuple(sorted(s.labels.items())), s.value) for f in families for s in f.samples}
    restored = {(s.name, tuple(sorted(s.labels.items())), s.value) for f in report["families"] for s in f.samples}
    assert restored == original  # +Inf bucket bounds and all


def test_merged_reports_are_one_family_each_with_a_process_label():
    merged = telemetry.merge([("web.1", _process_families(2)), ("worker.1", _process_families(5))])
    text = generate_latest(_Families(merged)).decode()
    assert text.count("# TYPE demo_requests_total counter") == 1  # twice would be invalid exposition
    parsed = {f.name: f for f in text_string_to_metric_families(text)}
    by_process = {
        s.labels["process"]: s.value for s in parsed["demo_requests"].samples if s.name == "demo_requests_total"
    }
    assert by_process == {"web.1": 2, "worker.1": 5}


def _emit(formatter, message, *args, secrets=(), demote=None, level=logging.INFO, **extra):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    handler.addFilter(SecretRedactingFilter(secrets))
    handler.addFilter(ContextFilter())
    if demote is not None:
        handler.addFilter(Demote(demote))
    logger = logging.getLogger("spotgate.test.reports")
    logger.propagate, logger.handlers = False, [handler]
    logger.setLevel(logging.DEBUG)
    try:
        logger.log(level, message, *args, extra=extra or None)
    finally:
        logger.handlers = []
    return stream.getvalue()


def test_json_lines_carry_the_log_context_and_extras_with_secrets_redacted():
    with log_context(request_id="req-7"):
        line = _emit(JsonFormatter(), "signed with %s\nnext line", "s3cr3t", secrets=["s3cr3t"], status=503)
    record = json.loads(line)
    assert line.count("\n") == 1  # one line, the message's newline escaped inside the JSON string
    assert record["request_id"] == "req-7" and record["status"] == 503
    assert record["message"] == "signed with ***\nnext line" and record["level"] == "INFO"


def test_text_lines_show_the_request_id_and_none_outside_a_request():
    with log_context(request_id="req-8"):
        inside = _emit(SingleLineFormatter(), "hello")
    outside = _emit(SingleLineFormatter(), "hello")
    assert "logger=spotgate.test.reports request_id=req-8 hello" in inside
    assert "request_id" not in outside


def test_routine_lines_are_demoted_below_info():
    root = logging.getLogger()
    saved = root.level
    root.setLevel(logging.INFO)
    try:
        routine = lambda record: record.msg == "tick %s"  # noqa: E731
        assert _emit(SingleLineFormatter(), "tick %s", 1, demote=routine) == ""
        assert "other" in _emit(SingleLineFormatter(), "other", demote=routine)
        root.setLevel(logging.DEBUG)
        assert "level=DEBUG" in _emit(SingleLineFormatter(), "tick %s", 1, demote=routine)
    finally:
        root.setLevel(saved)


def test_a_killed_process_s_metrics_directory_is_removed_by_the_next_start(monkeypatch, tmp_path):
    import os
    import subprocess
    import sys
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    ).stdout.strip()
    orphan = tmp_path / f"spotgate-web-metrics-{dead}-x1"
    alive = tmp_path / f"spotgate-web-metrics-{os.getpid()}-x2"
    orphan.mkdir()
    alive.mkdir()
    monkeypatch.delenv(telemetry.MULTIPROC_ENV, raising=False)
    path, created = telemetry.prepare_multiprocess_dir("web", honour_env=False)
    monkeypatch.delenv(telemetry.MULTIPROC_ENV)
    assert created and os.path.isdir(path) and str(os.getpid()) in os.path.basename(path)
    assert not orphan.exists() and alive.exists()
