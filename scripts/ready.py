"""Wait until every process of `make run` answers, then print one "ready" line with the URLs and a
first command to try; stay up until honcho stops the system (SIGTERM/SIGINT: exit 0).

Answers means: the paper exchange's /api/v3/ping, the gateway's /health/ready (Redis and upstream),
a Celery worker's reply to a control ping, the stream relay's status report in Redis, and beat's
schedule file. Ports come from WEB_PORT / PAPER_PORT, as the Makefile passes them.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
import requests  # noqa: E402

from config import Settings  # noqa: E402
from config.redis_connection import redis_connection  # noqa: E402
from services.contract.keys import Keys  # noqa: E402

WAIT_NOTE_AFTER = 30.0


def main() -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    web_port, paper_port = os.environ.get("WEB_PORT", "8000"), os.environ.get("PAPER_PORT", "8900")
    gateway, paper = f"http://127.0.0.1:{web_port}", f"http://127.0.0.1:{paper_port}"
    settings = Settings.from_env()
    url, tls = redis_connection(settings)
    client = redis.Redis.from_url(url, **tls, socket_timeout=2)
    status_key = Keys(settings.redis_key_prefix).stream_status
    from workers.celery_app import app as celery

    def http_ok(address: str) -> bool:
        try:
            return requests.get(address, timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def redis_has(key: str) -> bool:
        try:
            return bool(client.exists(key))
        except redis.RedisError:
            return False

    checks = {
        "paper exchange": lambda: http_ok(paper + "/api/v3/ping"),
        "web": lambda: http_ok(gateway + "/health/ready"),
        "worker": lambda: bool(celery.control.ping(timeout=0.5)),
        "stream relay": lambda: redis_has(status_key),
        "beat": lambda: (
            (ROOT / ".run" / "celerybeat-schedule").exists() or any((ROOT / ".run").glob("celerybeat-schedule*"))
        ),
    }
    started, noted = time.monotonic(), False
    waiting = list(checks)
    while waiting:
        waiting = [name for name in waiting if not checks[name]()]
        if waiting and not noted and time.monotonic() - started > WAIT_NOTE_AFTER:
            print(f"still waiting for: {', '.join(waiting)}", flush=True)
            noted = True
        if waiting:
            time.sleep(0.25)
    print(
        f"spotgate ready in {time.monotonic() - started:.1f} s: gateway {gateway} "
        f"(dashboard {gateway}/, docs {gateway}/docs), "
        f"paper exchange {paper}. Try: TOKEN=$(.venv/bin/python -m app.tokens issue --sub me --role viewer) && "
        f"curl -s -H \"Authorization: Bearer $TOKEN\" '{gateway}/api/v1/ticker/price?symbol=BTCUSDT'",
        flush=True,
    )
    while True:
        signal.pause()


if __name__ == "__main__":
    sys.exit(main())
