"""Real processes for integration tests: the gateway's web process, Celery workers and the stream
relay on loopback ports, started as a user would start them, and stopped with everything they spawned."""

from __future__ import annotations

import os
import subprocess
import tempfile
import sys
import time
import uuid
from pathlib import Path

import jwt
import requests

ROOT = Path(__file__).resolve().parents[1]
TEST_JWT_SECRET = "test-only-jwt-secret-" + "x" * 24
# Upstream drops in tests are injected on purpose: reconnect in a fraction of a second, not 1-30 s.
FAST_RECONNECT = {"STREAM_RECONNECT_BASE": "0.2", "STREAM_RECONNECT_MAX": "2"}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_answers(url: str, proc: subprocess.Popen, timeout: float = 20.0, log: str | None = None) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            out = open(log, errors="replace").read() if log else ""
            raise RuntimeError(f"process exited ({proc.returncode}) before {url} answered:\n{out[-3000:]}")
        try:
            if requests.get(url, timeout=1).status_code < 500:
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer within {timeout} s")
        time.sleep(0.05)


def stop_process(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stdout:
        proc.stdout.close()


class WebProcess:
    """`sanic app:create_app --factory` against a given Binance URL and Redis, with its own key prefix."""

    def __init__(self, binance_url: str, redis_url: str, prefix: str | None = None, *, workers: int = 1,
                 **env: str):
        """`workers` > 1: `--workers N` (Sanic's main process and N worker processes, as WEB_CONCURRENCY
        runs it) instead of `--single-process`."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.prefix = prefix or f"sgtest:{uuid.uuid4().hex}:"
        self.env = {
            **os.environ,
            "SPOTGATE_MODE": "paper",
            "BINANCE_API_URL": binance_url,
            "REDIS_URL": redis_url,
            "REDIS_KEY_PREFIX": self.prefix,
            "JWT_SECRET": TEST_JWT_SECRET,
            "LOG_LEVEL": "WARNING",
            **env,
        }
        # The web tier must never hold Binance credentials: run it without them.
        self.env.pop("BINANCE_API_KEY", None)
        self.env.pop("BINANCE_API_SECRET", None)
        # Output goes to a file, not a pipe: a chatty process must never block on a full pipe.
        self.log_file = tempfile.NamedTemporaryFile(prefix="spotgate-web-", suffix=".log", delete=False)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sanic", "app:create_app", "--factory", "--host", "127.0.0.1",
             "--port", str(self.port), *(["--workers", str(workers)] if workers > 1 else ["--single-process"]),
             "--no-motd", "--no-access-logs"],
            cwd=ROOT, env=self.env, stdout=self.log_file, stderr=subprocess.STDOUT,
            start_new_session=workers > 1,  # its own process group: stop() can end the workers too
        )
        self.workers = workers
        try:
            # N workers each import the whole app (spawned interpreters): slower on a busy machine
            wait_until_answers(self.url + "/health", self.proc, timeout=20.0 if workers == 1 else 60.0,
                               log=self.log_file.name)
        except Exception:
            self.stop()
            raise
        self.http = requests.Session()

    def token(self, role: str = "viewer", sub: str = "tester", ttl: int = 3600, **claims) -> str:
        now = int(time.time())
        payload = {"sub": sub, "role": role, "iat": now, "exp": now + ttl, "jti": uuid.uuid4().hex, "typ": "access",
                   **claims}
        return jwt.encode(payload, TEST_JWT_SECRET, algorithm="HS256")

    def get(self, path: str, token: str | None = None, role: str = "viewer", **params) -> requests.Response:
        headers = {"Authorization": f"Bearer {token or self.token(role)}"} if token != "" else {}
        return self.http.get(self.url + path, params=params, headers=headers, timeout=30)

    def log_text(self) -> str:
        with open(self.log_file.name, encoding="utf-8", errors="replace") as f:
            return f.read()

    def stop(self) -> None:
        if hasattr(self, "http"):
            self.http.close()
        stop_process(self.proc)
        if self.workers > 1:
            # Sanic's main process sometimes does not exit on SIGTERM and is killed; its workers must not
            # outlive it
            import signal

            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.log_file.close()
        os.unlink(self.log_file.name)


class WorkerProcess:
    """`celery -A workers.celery_app worker` (with embedded beat unless beat=False), in its own
    process group so a test can SIGKILL the whole worker, children included."""

    def __init__(self, binance_url: str, redis_url: str, prefix: str, *, concurrency: int = 2, beat: bool = True,
                 **env: str):
        import signal  # noqa: F401  (kill() uses it)

        self.env = {
            **os.environ, "SPOTGATE_MODE": "paper", "BINANCE_API_URL": binance_url, "REDIS_URL": redis_url,
            "REDIS_KEY_PREFIX": prefix, "LOG_LEVEL": "WARNING", "BROKER_VISIBILITY_TIMEOUT": "10", **env,
        }
        self.schedule_dir = tempfile.mkdtemp(prefix="spotgate-beat-")
        self.log_file = tempfile.NamedTemporaryFile(prefix="spotgate-worker-", suffix=".log", delete=False)
        command = [sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker", "-Q", "orders,default",
                   "-c", str(concurrency), "-l", "WARNING", "-n", f"test-{uuid.uuid4().hex[:8]}@%h",
                   "--without-gossip", "--without-mingle"]
        if beat:
            command += ["-B", "-s", os.path.join(self.schedule_dir, "beat-schedule")]
        self.proc = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=self.log_file,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def log_text(self) -> str:
        with open(self.log_file.name, encoding="utf-8", errors="replace") as f:
            return f.read()

    def kill(self) -> None:
        """SIGKILL the worker and every process it started."""
        import signal

        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()

    def stop(self) -> None:
        import shutil
        import signal

        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
            except ProcessLookupError:
                pass
        try:  # children left behind by a killed parent
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.log_file.close()
        os.unlink(self.log_file.name)
        shutil.rmtree(self.schedule_dir, ignore_errors=True)


class RelayProcess:
    """`python -m workers.stream` against a paper exchange (anything with `.url` and `.port`), with its
    own key prefix (unless given), without the API secret."""

    def __init__(self, paper, redis_url: str, prefix: str | None = None, **env: str):
        self.prefix = prefix or f"sgtest:{uuid.uuid4().hex}:"
        environ = {
            **os.environ, "SPOTGATE_MODE": "paper", "REDIS_URL": redis_url, "REDIS_KEY_PREFIX": self.prefix,
            "BINANCE_API_URL": paper.url, "BINANCE_STREAM_URL": f"ws://127.0.0.1:{paper.port}",
            "BINANCE_WS_API_URL": f"ws://127.0.0.1:{paper.port}/ws-api/v3", "LOG_LEVEL": "INFO",
            **FAST_RECONNECT, **env,
        }
        environ.pop("BINANCE_API_KEY", None)
        environ.pop("BINANCE_API_SECRET", None)
        self.log_file = tempfile.NamedTemporaryFile(prefix="spotgate-stream-", suffix=".log", delete=False)
        self.proc = subprocess.Popen([sys.executable, "-m", "workers.stream"], cwd=ROOT, env=environ,
                                     stdout=self.log_file, stderr=subprocess.STDOUT)

    def log_text(self) -> str:
        with open(self.log_file.name, encoding="utf-8", errors="replace") as f:
            return f.read()

    def stop(self) -> None:
        stop_process(self.proc)
        self.log_file.close()
        os.unlink(self.log_file.name)
