"""What the scale suites share: a private Redis that can be restarted with its data, and the log
scan every suite ends with."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time

import pytest
import redis

from tests.log_secrets import assert_no_secrets
from tests.processes import free_port


class RestartableRedis:
    """A private `redis-server` on a free loopback port whose data survives a restart, persisted as
    Heroku Redis's paid plans persist it: an append-only file fsynced every second (`appendonly yes`,
    `appendfsync everysec`). `restart()` stops it with SHUTDOWN (the AOF is flushed) and starts it
    again on the same port and directory, as a managed Redis's maintenance restart does."""

    def __init__(self):
        if shutil.which("redis-server") is None:
            pytest.skip("redis-server is not installed")
        self.dir = tempfile.mkdtemp(prefix="spotgate-soak-redis-")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log_path = os.path.join(self.dir, "redis.log")
        self.proc: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--dir",
                self.dir,
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
                "--save",
                "",
                "--logfile",
                self.log_path,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 15
        try:
            while True:
                try:
                    if client.ping():
                        return
                except (redis.ConnectionError, redis.BusyLoadingError):
                    if self.proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"redis-server did not start:\n{self.log_text()[-2000:]}") from None
                    time.sleep(0.05)
        finally:
            client.close()

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()  # SIGTERM: Redis's graceful shutdown (the AOF is fsynced first)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def restart(self, down_for: float = 0.0) -> None:
        self.stop()
        if down_for:
            time.sleep(down_for)  # the outage itself: what the other processes must ride out
        self.start()

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)

    def log_text(self) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def scan_logs(**processes) -> None:
    """Every process's log (anything with `log_text()`, or a string) scanned for secrets."""
    assert_no_secrets({name: p if isinstance(p, str) else p.log_text() for name, p in processes.items()})
