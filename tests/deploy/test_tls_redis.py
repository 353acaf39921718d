"""Heroku-style TLS Redis: a `redis-server` that speaks only TLS with a self-signed certificate, reached
by a bare `rediss://:password@host:port` URL (no ssl_cert_reqs), as the Redis add-on gives it. With
REDIS_SSL_CERT_REQS=none every process works through it; verification stays on by default."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from config.redis_connection import celery_redis, redis_connection
from config.settings import Settings
from tests.e2e.conftest import System
from tests.processes import ROOT, PaperProcess, WebProcess

pytestmark = pytest.mark.integration

HEROKU = {"REDIS_SSL_CERT_REQS": "none"}


@pytest.fixture(scope="module")
def upstream():
    px = PaperProcess(seed=91)
    yield px
    px.stop()


def test_web_worker_and_relay_work_through_a_self_signed_tls_redis(tls_redis):
    assert "ssl_cert_reqs" not in tls_redis.url
    system = System(
        tls_redis.url,
        seed=93,
        worker_env=HEROKU,
        web_env=HEROKU,
        relay_env={**HEROKU, "STREAM_SYMBOLS": "none"},
        redis_options=tls_redis.client_options(),
    )
    try:
        # a ticker over WebSocket: web → demand in Redis → relay subscribes upstream → pub/sub → web
        with system.connect("/ws/ticker/btcusdt") as client:
            client.open(["ticker:BTCUSDT"])
            ticker = client.next("ticker", timeout=15)
            assert ticker["data"]["symbol"] == "BTCUSDT"
        # an order placed and answered: web → Celery broker (TLS) → worker → paper → job event → web
        order = system.place_limit()
        status = system.web.get("/api/v1/order", role="trader", symbol="BTCUSDT", orderId=str(order["orderId"]))
        assert status.status_code == 200, status.text
        assert status.json()["data"]["clientOrderId"] == order["clientOrderId"]
        system.cancel(order)
        assert "must have parameter ssl_cert_reqs" not in system.worker.log_text()
    finally:
        system.stop()


def ready(web: WebProcess) -> dict:
    answer = web.get("/health/ready", token="")
    return {"status": answer.status_code, "redis": answer.json()["data"]["checks"]["redis"]["ok"]}


@pytest.mark.parametrize(
    "env, url_query, verified",
    [
        ({}, "", False),  # default: required, and no CA knows it
        ({"REDIS_SSL_CERT_REQS": "required"}, "", True),  # + REDIS_SSL_CA_CERTS (below)
        ({"REDIS_SSL_CERT_REQS": "required"}, "?ssl_cert_reqs=none", None),  # the URL's own option wins
        ({"REDIS_SSL_CERT_REQS": "none"}, "?ssl_cert_reqs=CERT_REQUIRED", False),  # ... either way
    ],
    ids=["default-refuses", "ca-file", "url-none-wins", "url-required-wins"],
)
def test_certificate_checks_follow_the_url_then_the_settings(tls_redis, upstream, env, url_query, verified):
    if verified:
        env = {**env, "REDIS_SSL_CA_CERTS": tls_redis.ca_file}
    web = WebProcess(upstream.url, tls_redis.url + url_query, **env)
    try:
        expected_ok = verified is not False
        assert ready(web) == {"status": 200 if expected_ok else 503, "redis": expected_ok}
    finally:
        web.stop()


def test_celery_gets_the_same_tls_options_as_redis_py():
    settings = Settings.from_env(
        {"REDIS_URL": "rediss://:pw@redis.example:6380/0?ssl_cert_reqs=CERT_NONE", "REDIS_SSL_CERT_REQS": "required"}
    )
    import ssl

    assert redis_connection(settings) == ("rediss://:pw@redis.example:6380/0", {"ssl_cert_reqs": "none"})
    assert celery_redis(settings) == ("rediss://:pw@redis.example:6380/0", {"ssl_cert_reqs": ssl.CERT_NONE})
    plain = Settings.from_env({"REDIS_URL": "redis://127.0.0.1:6379/0", "REDIS_SSL_CERT_REQS": "none"})
    assert celery_redis(plain) == ("redis://127.0.0.1:6379/0", None) and redis_connection(plain)[1] == {}
    with pytest.raises(ValueError, match="ssl_cert_reqs must be required, optional or none"):
        Settings.from_env({"REDIS_URL": "rediss://h:1/0?ssl_cert_reqs=sometimes"})
    with pytest.raises(ValueError, match="REDIS_SSL_CERT_REQS must be one of"):
        Settings.from_env({"REDIS_SSL_CERT_REQS": "maybe"})
    with pytest.raises(ValueError, match="REDIS_SSL_CA_CERTS must name a readable file"):
        Settings.from_env({"REDIS_SSL_CA_CERTS": "/nonexistent/ca.pem"})


def test_celery_worker_starts_on_a_bare_rediss_url(tls_redis):
    """The crash users met: `celery worker` exited with "A rediss:// URL must have parameter
    ssl_cert_reqs". `celery inspect ping` builds the same app and reaches the broker over TLS."""
    env = {**os.environ, "REDIS_URL": tls_redis.url, **HEROKU}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from workers.celery_app import app; "
            "print(app.backend.client.ping(), "
            "app.connection_for_write().ensure_connection(max_retries=1).connected)",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["True", "True"]
