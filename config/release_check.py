"""`python -m config.release_check`: the release phase (Procfile `release:`) refuses a configuration that
would not run, before any dyno is replaced, with one line saying what to fix.

Checks: every setting parses (the same Settings every process builds); in live mode the worker's
Binance credentials are there (a BINANCE_PRIVATE_KEY config var is parsed: a key the worker could
not sign with fails the release, not the worker's boot); Redis answers PING with the TLS options every client will use.
Exit 0 and one "release check passed" line, or exit 1 and "release check failed: <reason>".
"""

from __future__ import annotations

import ssl
import sys

import redis

from binance_client import load_signer
from config.redis_connection import redis_connection, tls_options
from config.settings import Settings

REDIS_TIMEOUT = 5.0


def check(environ=None) -> str:
    """A summary of what was checked; raises ValueError with the reason the release must fail."""
    settings = Settings.from_env(environ) if environ is not None else Settings.from_env()
    if not settings.is_paper:
        settings.require_binance_credentials()
        if settings.binance_private_key:
            try:
                load_signer(settings.binance_private_key, settings.binance_private_key_passphrase)
            except ValueError as exc:
                raise ValueError(f"BINANCE_PRIVATE_KEY: {exc}") from None
    url, tls = redis_connection(settings)
    client = redis.Redis.from_url(url, **tls, socket_connect_timeout=REDIS_TIMEOUT, socket_timeout=REDIS_TIMEOUT)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise ValueError(_redis_trouble(settings, exc)) from None
    finally:
        client.close()
    transport = f"TLS, certificate check {tls['ssl_cert_reqs']}" if tls else "no TLS"
    return f"mode={settings.mode}, Redis answers ({transport}), user stream {settings.user_stream_mode}"


def _redis_trouble(settings: Settings, exc: redis.RedisError) -> str:
    # The URL is not shown: it carries the Redis password.
    reason = str(exc) or type(exc).__name__
    if isinstance(exc.__context__, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in reason:
        return (
            f"Redis's TLS certificate is not trusted ({reason}). Heroku Redis uses a self-signed "
            "certificate: set REDIS_SSL_CERT_REQS=none, or REDIS_SSL_CA_CERTS to its CA file"
        )
    if isinstance(exc, redis.AuthenticationError):
        return f"Redis refused the password in REDIS_URL ({reason})"
    hint = " (a rediss:// URL needs a TLS port)" if tls_options(settings) else ""
    return f"Redis at REDIS_URL does not answer{hint}: {reason}"


def main() -> int:
    try:
        summary = check()
    except ValueError as exc:
        print(f"release check failed: {exc}", file=sys.stderr)
        return 1
    print(f"release check passed: {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
