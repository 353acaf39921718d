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
        # The web tier must never hold Binance credentials: run it without them, unless a test passes
        # them on purpose (to see the process drop them).
        inherited = {k: v for k, v in os.environ.items() if k not in ("BINANCE_API_KEY", "BINANCE_API_SECRET")}
        self.env = {
            **inherited,
            "SPOTGATE_MODE": "paper",
            "BINANCE_API_URL": binance_url,
            "REDIS_URL": redis_url,
            "REDIS_KEY_PREFIX": self.prefix,
            "JWT_SECRET": TEST_JWT_SECRET,
            "LOG_LEVEL": "WARNING",
            **env,
        }
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
        inherited = {k: v for k, v in os.environ.items() if k not in ("BINANCE_API_KEY", "BINANCE_API_SECRET")}
        environ = {
            **inherited, "SPOTGATE_MODE": "paper", "REDIS_URL": redis_url, "REDIS_KEY_PREFIX": self.prefix,
            "BINANCE_API_URL": paper.url, "BINANCE_STREAM_URL": f"ws://127.0.0.1:{paper.port}",
            "BINANCE_WS_API_URL": f"ws://127.0.0.1:{paper.port}/ws-api/v3", "LOG_LEVEL": "INFO",
            **FAST_RECONNECT, **env,
        }
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


class RedisServer:
    """A private `redis-server` on a free loopback port (the suite's shared Redis is never reconfigured).

    With `tls=True` it listens only on a TLS port with a self-signed certificate made here (for
    127.0.0.1 and localhost, as Heroku Redis's is self-signed), and requires `password`. `url` is the
    bare URL a Redis add-on gives (no ssl_cert_reqs); `client()` connects verifying the certificate.
    """

    def __init__(self, *, tls: bool = False, password: str | None = None):
        import shutil

        import redis

        if shutil.which("redis-server") is None:
            import pytest

            pytest.skip("redis-server is not installed")
        self.dir = tempfile.mkdtemp(prefix="spotgate-redis-")
        self.port = free_port()
        self.password = password
        command = ["redis-server", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", self.dir]
        if password:
            command += ["--requirepass", password]
        self.ca_file: str | None = None
        if tls:
            self.ca_file, key_file = self._self_signed_certificate()
            command += ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file", self.ca_file,
                        "--tls-key-file", key_file, "--tls-ca-cert-file", self.ca_file, "--tls-auth-clients", "no"]
        else:
            command += ["--port", str(self.port)]
        auth = f":{password}@" if password else ""
        self.url = f"{'rediss' if tls else 'redis'}://{auth}127.0.0.1:{self.port}/0"
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        client = self.client()
        try:
            while True:
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    if self.proc.poll() is not None or time.monotonic() > deadline:
                        self.stop()
                        raise RuntimeError("private redis-server did not start") from None
                    time.sleep(0.05)
        finally:
            client.close()

    def client_options(self) -> dict:
        return {"ssl_ca_certs": self.ca_file} if self.ca_file else {}

    def client(self):
        import redis

        return redis.Redis.from_url(self.url, **self.client_options())

    def _self_signed_certificate(self) -> tuple[str, str]:
        import datetime
        import ipaddress

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
        now = datetime.datetime.now(datetime.timezone.utc)
        certificate = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        cert_file, key_file = os.path.join(self.dir, "redis.crt"), os.path.join(self.dir, "redis.key")
        with open(cert_file, "wb") as f:
            f.write(certificate.public_bytes(serialization.Encoding.PEM))
        with open(key_file, "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
        return cert_file, key_file

    def stop(self) -> None:
        import shutil

        stop_process(self.proc)
        shutil.rmtree(self.dir, ignore_errors=True)


def procfile_command(name: str, procfile: str = "Procfile") -> str:
    """The command line of process type `name` in the Procfile, as Heroku or honcho would run it."""
    for line in (ROOT / procfile).read_text().splitlines():
        kind, sep, command = line.partition(":")
        if sep and kind.strip() == name and not line.lstrip().startswith("#"):
            return command.strip()
    raise KeyError(f"no {name!r} process in {procfile}")


class ProcfileProcess:
    """One Procfile process type run as Heroku runs it: `bash -c '<command>'` with the project's
    venv first on PATH, in its own process group (a dyno: SIGTERM reaches every process in it)."""

    def __init__(self, name: str, env: dict[str, str], *, replace: dict[str, str] | None = None,
                 procfile: str = "Procfile"):
        self.name = name
        command = procfile_command(name, procfile)
        for old, new in (replace or {}).items():
            command = command.replace(old, new)
        self.command = command
        self.env = {**os.environ, "PATH": f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}", **env}
        self.log_file = tempfile.NamedTemporaryFile(prefix=f"spotgate-{name}-", suffix=".log", delete=False)
        self.proc = subprocess.Popen(["/bin/bash", "-c", command], cwd=ROOT, env=self.env, stdout=self.log_file,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def log_text(self) -> str:
        with open(self.log_file.name, encoding="utf-8", errors="replace") as f:
            return f.read()

    def sigterm(self, timeout: float = 30.0) -> int | None:
        """SIGTERM the whole group; the leader's exit code, or None if it still runs after `timeout`."""
        import signal

        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> None:
        import signal

        if self.proc.poll() is None and self.sigterm(20) is None:
            pass
        try:  # whatever is left of the group
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self.log_file.close()
        os.unlink(self.log_file.name)
