"""The one settings object every spotgate process builds from its environment."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from dotenv import dotenv_values

from config.redis_connection import url_tls_options

PAPER = "paper"
LIVE = "live"
MODES = (PAPER, LIVE)
USER_STREAM_MODES = ("ws-api", "listen-key")

# The paper exchange's documented demo pair. Harmless outside it; used only in paper mode, and refused
# (like the dev JWT secret) whenever an upstream URL points anywhere but loopback.
PAPER_DEMO_API_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
PAPER_DEMO_API_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
DEV_JWT_SECRET = "dev-only-insecure-jwt-secret-never-use-live"
# HS256 keys shorter than the hash (RFC 7518 §3.2) are refused in live mode.
MIN_JWT_SECRET_LENGTH = 32

# Roles, lowest first; app.auth.Role mirrors them (config imports nothing of the app).
ROLES = ("viewer", "trader", "admin")
# No token lives longer than this, so a revocation of a token we never saw can expire after it.
MAX_TOKEN_TTL = 365 * 86400
DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
USER_NAME_RE = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")

# Upstream endpoints per mode; an explicit BINANCE_*_URL always wins.
UPSTREAM_DEFAULTS = {
    PAPER: {
        "BINANCE_API_URL": "http://127.0.0.1:8900",
        "BINANCE_STREAM_URL": "ws://127.0.0.1:8900",
        "BINANCE_WS_API_URL": "ws://127.0.0.1:8900/ws-api/v3",
    },
    LIVE: {
        "BINANCE_API_URL": "https://api.binance.com",
        "BINANCE_STREAM_URL": "wss://stream.binance.com:9443",
        "BINANCE_WS_API_URL": "wss://ws-api.binance.com:443/ws-api/v3",
    },
}

DEFAULTS = {
    "PORT": "8000",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "REDIS_KEY_PREFIX": "spotgate:",
    "REDIS_SSL_CERT_REQS": "required",
    "SPOTGATE_MODE": PAPER,
    "USER_STREAM_MODE": "ws-api",
    "CORS_ORIGINS": "*",
    "MAX_WS_CONNECTIONS": "10000",
    "UPSTREAM_TIMEOUT": "10.0",
    "LOG_LEVEL": "INFO",
    "ACCESS_TOKEN_TTL": "15m",
    "REFRESH_TOKEN_TTL": "7d",
    "BROKER_VISIBILITY_TIMEOUT": "60",
    "ORDER_SYNC_WAIT": "3.0",
    "ORDER_TTL_MARKET": "10",
    "ORDER_TTL": "300",
    "UPSTREAM_ORDER_RESERVE": "0.2",
    "UPSTREAM_CANCEL_RESERVE": "0.05",
    "CLIENT_WEIGHT_PER_MINUTE": "1200",
    "POSITIONS_CACHE_TTL": "5",
    "JOB_REDRIVE_AFTER": "120",
    "WS_MAX_DEPTH_CHANNELS": "10",
    "WS_PUBLIC_MARKET_DATA": "true",
    "WS_MAX_SUBSCRIPTIONS": "200",
    "WS_MESSAGE_RATE": "20",
    "WS_SEND_QUEUE": "1024",
    "WS_SLOW_CLIENT_TIMEOUT": "10",
    "WS_HEARTBEAT_INTERVAL": "20",
    "STREAM_SYMBOLS": "BTCUSDT,ETHUSDT,BNBUSDT,ETHBTC",
    "STREAM_MAX_STREAMS": "1024",
    "STREAM_RECONNECT_BASE": "1.0",
    "STREAM_RECONNECT_MAX": "30.0",
    "STREAM_ROTATE_AFTER": "82800",
    "STREAM_DEPTH_LIMIT": "1000",
    "LISTEN_KEY_KEEPALIVE": "1800",
    # Abuse limits of the web tier (README "Security model").
    "REQUEST_MAX_SIZE": "65536",
    "LOGIN_MAX_FAILURES": "5",
    "LOGIN_IP_MAX_FAILURES": "20",
    "LOGIN_LOCKOUT": "30",
    "LOGIN_LOCKOUT_MAX": "900",
    "WS_MAX_CONNECTIONS_PER_IP": "100",
    # WS_RESERVED_AUTHENTICATED: a tenth of MAX_WS_CONNECTIONS unless set.
    "LOG_FORMAT": "text",
    "METRICS_PUSH_INTERVAL": "5",
}
# Binance symbols: ASCII upper case and digits, and non-ASCII characters (UTF-8 names, 2025-12)
SYMBOL_RE = re.compile(r"^(?:[A-Z0-9]|[^\x00-\x7f]){1,20}$")
_ASCII_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
UPSTREAM_URL_NAMES = ("BINANCE_API_URL", "BINANCE_STREAM_URL", "BINANCE_WS_API_URL")
# Bodies are small JSON objects; Sanic's own default (100 MB) would let one request hold a worker's memory.
MIN_REQUEST_MAX_SIZE = 1024
# Binance cuts stream connections after 24 h and allows 1,024 streams on one; depth snapshots go to 5000.
MAX_STREAMS_PER_CONNECTION = 1024
DEPTH_SNAPSHOT_LIMITS = (5, 10, 20, 50, 100, 500, 1000, 5000)

LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")
# How a rediss:// server certificate is checked, as redis-py and Celery spell it.
REDIS_SSL_CERT_REQS = ("required", "optional", "none")
LOG_FORMATS = ("text", "json")
# A bearer token for /metrics must not be guessable; live mode refuses shorter ones.
MIN_METRICS_TOKEN_LENGTH = 16


@dataclass(frozen=True)
class AuthUser:
    """One AUTH_USERS entry: a user who may log in with a password."""

    name: str
    role: str
    password_hash: str = field(repr=False)


@dataclass(frozen=True)
class Settings:
    """Configuration shared by the web, worker, beat and stream processes.

    Build it with `Settings.from_env()`; every default lives in this module.
    """

    port: int
    redis_url: str
    redis_key_prefix: str
    # For rediss:// URLs without their own ssl_cert_reqs / ssl_ca_certs (config/redis_connection.py).
    redis_ssl_cert_reqs: str
    redis_ssl_ca_certs: str | None
    mode: str
    binance_api_url: str
    binance_stream_url: str
    binance_ws_api_url: str
    binance_api_key: str
    binance_api_secret: str = field(repr=False)
    user_stream_mode: str
    jwt_secret: str = field(repr=False)
    jwt_public_key: str | None
    jwt_private_key: str | None = field(repr=False)
    auth_users: tuple[AuthUser, ...]
    access_token_ttl: int
    refresh_token_ttl: int
    cors_origins: tuple[str, ...]
    max_ws_connections: int
    upstream_timeout: float
    log_level: str
    broker_visibility_timeout: int
    order_sync_wait: float
    # Orders not sent within this many seconds of being due fail ORDER_EXPIRED (services/placement.py).
    order_ttl_market: float
    order_ttl: float
    # Shares of the upstream weight budget kept for orders and cancels / for cancels alone (budget.py).
    upstream_order_reserve: float
    upstream_cancel_reserve: float
    # Upstream weight one token subject (or one IP without a token) may cause per minute (app/quotas.py).
    client_weight_per_minute: int
    positions_cache_ttl: float
    job_redrive_after: float
    # WebSocket API (app/ws.py, app/hub.py): limits per connection, capacity per web process.
    ws_public_market_data: bool
    ws_max_subscriptions: int
    ws_message_rate: int
    ws_send_queue: int
    ws_slow_client_timeout: float
    ws_heartbeat_interval: float
    ws_max_depth_channels: int
    stream_symbols: tuple[str, ...]
    stream_max_streams: int
    stream_reconnect_base: float
    stream_reconnect_max: float
    stream_rotate_after: float
    stream_depth_limit: int
    listen_key_keepalive: float
    # Abuse limits of the web tier (README "Security model").
    request_max_size: int
    login_max_failures: int
    login_ip_max_failures: int
    login_lockout: float
    login_lockout_max: float
    ws_max_connections_per_ip: int
    ws_reserved_authenticated: int
    # Operations (README "Operations"): log lines, /metrics access and how often processes report.
    log_format: str
    metrics_token: str | None = field(repr=False)
    metrics_push_interval: float
    # An RSA or Ed25519 private key (PEM; type read from the file) used instead of the HMAC secret.
    binance_private_key_file: str | None = None
    binance_private_key: str | None = field(default=None, repr=False)
    binance_private_key_passphrase: str | None = field(default=None, repr=False)

    @property
    def is_paper(self) -> bool:
        return self.mode == PAPER

    def require_binance_credentials(self) -> None:
        """For processes that sign Binance calls (the worker): refuse to run without an API key and
        its signing half (BINANCE_PRIVATE_KEY or BINANCE_PRIVATE_KEY_FILE, or else BINANCE_API_SECRET)."""
        where = "when SPOTGATE_MODE=live or the upstream is not the loopback paper exchange"
        if not self.binance_api_key:
            raise ValueError(f"BINANCE_API_KEY must be set {where}")
        if self.binance_private_key and self.binance_private_key_file:
            raise ValueError("set BINANCE_PRIVATE_KEY or BINANCE_PRIVATE_KEY_FILE, not both")
        if not (self.binance_private_key or self.binance_private_key_file or self.binance_api_secret):
            raise ValueError(
                f"BINANCE_PRIVATE_KEY or BINANCE_PRIVATE_KEY_FILE (or BINANCE_API_SECRET for an HMAC key) "
                f"must be set {where}"
            )

    def secret_values(self) -> tuple[str, ...]:
        """Values that must never reach a log line or a response."""
        candidates = (
            self.binance_api_secret,
            self.jwt_secret,
            self.binance_api_key,
            self.jwt_private_key,
            self.binance_private_key_passphrase,
            self.metrics_token,
            self.binance_private_key,
        )
        return tuple(value for value in candidates if value)

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        dotenv_path: str | os.PathLike[str] | None = None,
    ) -> Settings:
        """Read settings from `environ` (default: os.environ) over a `.env` file.

        Real environment variables win over `.env`. The `.env` file (default `./.env`) is read
        when `environ` is omitted or `dotenv_path` is given, so tests passing an explicit
        mapping are not affected by a developer's local `.env`. Raises ValueError naming the
        offending variable.
        """
        if environ is None:
            environ = os.environ
            dotenv_path = dotenv_path if dotenv_path is not None else ".env"
        env: dict[str, str] = {}
        if dotenv_path is not None and Path(dotenv_path).is_file():
            env.update({k: v for k, v in dotenv_values(dotenv_path).items() if v is not None})
        env.update(environ)
        return cls._from_mapping(env)

    @classmethod
    def _from_mapping(cls, env: Mapping[str, str]) -> Settings:
        def get(name: str, default: str | None = None) -> str | None:
            # An empty variable counts as unset, as `FOO=` in a .env or Procfile usually means.
            value = env.get(name, "").strip()
            return value if value else default

        def setting(name: str) -> str:
            return get(name, DEFAULTS[name])

        mode = _choice("SPOTGATE_MODE", setting("SPOTGATE_MODE"), MODES)
        paper = mode == PAPER
        upstream = UPSTREAM_DEFAULTS[mode]

        def url(name: str, schemes: tuple[str, ...]) -> str:
            return _url(name, get(name, upstream[name]), schemes)

        api_url = url("BINANCE_API_URL", ("http", "https"))
        stream_url = url("BINANCE_STREAM_URL", ("ws", "wss"))
        ws_api_url = url("BINANCE_WS_API_URL", ("ws", "wss"))
        # Paper mode is the default, so forgetting SPOTGATE_MODE=live must not leave the published
        # dev defaults in force against a real exchange: they hold only while every upstream is on
        # this machine's loopback (where the paper exchange runs).
        remote = [
            name
            for name, value in zip(UPSTREAM_URL_NAMES, (api_url, stream_url, ws_api_url), strict=True)
            if not is_loopback_url(value)
        ]
        dev_defaults = paper and not remote

        # Only the worker needs the credentials (it calls require_binance_credentials()); the
        # web process must run without them, so their absence is not an error here.
        api_key = get("BINANCE_API_KEY", PAPER_DEMO_API_KEY if dev_defaults else "")
        api_secret = get("BINANCE_API_SECRET", PAPER_DEMO_API_SECRET if dev_defaults else "")
        if remote and (api_key == PAPER_DEMO_API_KEY or api_secret == PAPER_DEMO_API_SECRET):
            raise ValueError(
                f"BINANCE_API_KEY/BINANCE_API_SECRET: the paper exchange's published demo pair is refused "
                f"against a non-loopback upstream ({remote[0]}); set your own key pair"
            )

        jwt_public_key = _pem(get("JWT_PUBLIC_KEY"))
        jwt_private_key = _pem(get("JWT_PRIVATE_KEY"))
        jwt_secret = get("JWT_SECRET", DEV_JWT_SECRET)
        if jwt_private_key is not None and jwt_public_key is None:
            raise ValueError("JWT_PRIVATE_KEY needs JWT_PUBLIC_KEY: RS256 tokens are verified with the public key")
        if jwt_public_key is None and jwt_secret == DEV_JWT_SECRET and remote:
            raise ValueError(
                f"JWT_SECRET must be set to a real secret (or JWT_PUBLIC_KEY given): the dev-only default "
                f"is refused unless the upstream is the loopback paper exchange ({remote[0]} is not loopback)"
            )
        if not paper and jwt_public_key is None:
            if jwt_secret == DEV_JWT_SECRET:
                raise ValueError(
                    "JWT_SECRET must be set to a real secret (or JWT_PUBLIC_KEY given) when "
                    "SPOTGATE_MODE=live; the dev-only default is refused"
                )
            if len(jwt_secret) < MIN_JWT_SECRET_LENGTH:
                raise ValueError(
                    f"JWT_SECRET must be at least {MIN_JWT_SECRET_LENGTH} characters when SPOTGATE_MODE=live"
                )

        order_reserve = _share("UPSTREAM_ORDER_RESERVE", setting("UPSTREAM_ORDER_RESERVE"))
        cancel_reserve = _share("UPSTREAM_CANCEL_RESERVE", setting("UPSTREAM_CANCEL_RESERVE"))
        if cancel_reserve > order_reserve:
            raise ValueError(
                "UPSTREAM_CANCEL_RESERVE is part of UPSTREAM_ORDER_RESERVE: it cannot be larger; "
                f"got {cancel_reserve} > {order_reserve}"
            )

        return cls(
            port=_integer("PORT", setting("PORT"), low=1, high=65535),
            redis_url=_redis_url(setting("REDIS_URL")),
            redis_key_prefix=setting("REDIS_KEY_PREFIX"),
            redis_ssl_cert_reqs=_choice(
                "REDIS_SSL_CERT_REQS", setting("REDIS_SSL_CERT_REQS").lower(), REDIS_SSL_CERT_REQS
            ),
            redis_ssl_ca_certs=_existing_file("REDIS_SSL_CA_CERTS", get("REDIS_SSL_CA_CERTS")),
            mode=mode,
            binance_api_url=api_url,
            binance_stream_url=stream_url,
            binance_ws_api_url=ws_api_url,
            binance_api_key=api_key,
            binance_api_secret=api_secret,
            user_stream_mode=_choice("USER_STREAM_MODE", setting("USER_STREAM_MODE"), USER_STREAM_MODES),
            jwt_secret=jwt_secret,
            jwt_public_key=jwt_public_key,
            jwt_private_key=jwt_private_key,
            auth_users=_auth_users(get("AUTH_USERS", "")),
            access_token_ttl=_duration("ACCESS_TOKEN_TTL", setting("ACCESS_TOKEN_TTL")),
            refresh_token_ttl=_duration("REFRESH_TOKEN_TTL", setting("REFRESH_TOKEN_TTL")),
            cors_origins=_origins(setting("CORS_ORIGINS")),
            max_ws_connections=_integer("MAX_WS_CONNECTIONS", setting("MAX_WS_CONNECTIONS"), low=1),
            upstream_timeout=_seconds("UPSTREAM_TIMEOUT", setting("UPSTREAM_TIMEOUT")),
            log_level=_choice("LOG_LEVEL", setting("LOG_LEVEL").upper(), LOG_LEVELS),
            broker_visibility_timeout=_integer(
                "BROKER_VISIBILITY_TIMEOUT", setting("BROKER_VISIBILITY_TIMEOUT"), low=5
            ),
            order_sync_wait=_seconds("ORDER_SYNC_WAIT", setting("ORDER_SYNC_WAIT")),
            order_ttl_market=_seconds("ORDER_TTL_MARKET", setting("ORDER_TTL_MARKET")),
            order_ttl=_seconds("ORDER_TTL", setting("ORDER_TTL")),
            upstream_order_reserve=order_reserve,
            upstream_cancel_reserve=cancel_reserve,
            client_weight_per_minute=_integer("CLIENT_WEIGHT_PER_MINUTE", setting("CLIENT_WEIGHT_PER_MINUTE"), low=1),
            positions_cache_ttl=_seconds("POSITIONS_CACHE_TTL", setting("POSITIONS_CACHE_TTL")),
            job_redrive_after=_seconds("JOB_REDRIVE_AFTER", setting("JOB_REDRIVE_AFTER")),
            ws_public_market_data=_boolean("WS_PUBLIC_MARKET_DATA", setting("WS_PUBLIC_MARKET_DATA")),
            ws_max_subscriptions=_integer("WS_MAX_SUBSCRIPTIONS", setting("WS_MAX_SUBSCRIPTIONS"), low=1),
            ws_message_rate=_integer("WS_MESSAGE_RATE", setting("WS_MESSAGE_RATE"), low=1),
            ws_send_queue=_integer("WS_SEND_QUEUE", setting("WS_SEND_QUEUE"), low=8),
            ws_slow_client_timeout=_seconds("WS_SLOW_CLIENT_TIMEOUT", setting("WS_SLOW_CLIENT_TIMEOUT")),
            ws_heartbeat_interval=_seconds("WS_HEARTBEAT_INTERVAL", setting("WS_HEARTBEAT_INTERVAL")),
            ws_max_depth_channels=_integer("WS_MAX_DEPTH_CHANNELS", setting("WS_MAX_DEPTH_CHANNELS"), low=1),
            stream_symbols=_symbols("STREAM_SYMBOLS", setting("STREAM_SYMBOLS")),
            stream_max_streams=_integer(
                "STREAM_MAX_STREAMS", setting("STREAM_MAX_STREAMS"), low=2, high=MAX_STREAMS_PER_CONNECTION
            ),
            stream_reconnect_base=_seconds("STREAM_RECONNECT_BASE", setting("STREAM_RECONNECT_BASE")),
            stream_reconnect_max=_seconds("STREAM_RECONNECT_MAX", setting("STREAM_RECONNECT_MAX")),
            stream_rotate_after=_seconds("STREAM_ROTATE_AFTER", setting("STREAM_ROTATE_AFTER")),
            stream_depth_limit=_choice_int("STREAM_DEPTH_LIMIT", setting("STREAM_DEPTH_LIMIT"), DEPTH_SNAPSHOT_LIMITS),
            listen_key_keepalive=_seconds("LISTEN_KEY_KEEPALIVE", setting("LISTEN_KEY_KEEPALIVE")),
            request_max_size=_integer("REQUEST_MAX_SIZE", setting("REQUEST_MAX_SIZE"), low=MIN_REQUEST_MAX_SIZE),
            login_max_failures=_integer("LOGIN_MAX_FAILURES", setting("LOGIN_MAX_FAILURES"), low=1),
            login_ip_max_failures=_integer("LOGIN_IP_MAX_FAILURES", setting("LOGIN_IP_MAX_FAILURES"), low=1),
            login_lockout=_seconds("LOGIN_LOCKOUT", setting("LOGIN_LOCKOUT")),
            login_lockout_max=_seconds("LOGIN_LOCKOUT_MAX", setting("LOGIN_LOCKOUT_MAX")),
            ws_max_connections_per_ip=_integer(
                "WS_MAX_CONNECTIONS_PER_IP", setting("WS_MAX_CONNECTIONS_PER_IP"), low=1
            ),
            ws_reserved_authenticated=_reserved_slots(
                get("WS_RESERVED_AUTHENTICATED"), _integer("MAX_WS_CONNECTIONS", setting("MAX_WS_CONNECTIONS"), low=1)
            ),
            binance_private_key_file=get("BINANCE_PRIVATE_KEY_FILE"),
            binance_private_key=_pem(get("BINANCE_PRIVATE_KEY")),
            binance_private_key_passphrase=get("BINANCE_PRIVATE_KEY_PASSPHRASE"),
            log_format=_choice("LOG_FORMAT", setting("LOG_FORMAT").lower(), LOG_FORMATS),
            metrics_token=_metrics_token(get("METRICS_TOKEN"), paper),
            metrics_push_interval=_seconds("METRICS_PUSH_INTERVAL", setting("METRICS_PUSH_INTERVAL")),
        )


def parse_duration(text: str) -> int:
    """`90`, `90s`, `15m`, `12h`, `30d` → seconds, between 1 s and MAX_TOKEN_TTL.

    Raises ValueError (without a variable name; callers add theirs).
    """
    value = text.strip().lower()
    unit = value[-1:] if value[-1:] in DURATION_UNITS else "s"
    number = value[:-1] if value[-1:] in DURATION_UNITS else value
    if not (number.isascii() and number.isdigit()):
        raise ValueError(f"expected a duration like 90s, 15m, 12h or 30d; got {text!r}")
    seconds = int(number) * DURATION_UNITS[unit]
    if not 1 <= seconds <= MAX_TOKEN_TTL:
        raise ValueError(f"a duration must be between 1s and {MAX_TOKEN_TTL // 86400}d; got {text!r}")
    return seconds


def _duration(name: str, value: str) -> int:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None


def is_loopback_url(url: str) -> bool:
    """Whether `url` names this machine's loopback (127.0.0.0/8, ::1 or localhost)."""
    host = urlsplit(url).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _reserved_slots(value: str | None, total: int) -> int:
    """WebSocket slots only authenticated upgrades may take: a tenth of the total unless set."""
    if value is None:
        return total // 10
    reserved = _integer("WS_RESERVED_AUTHENTICATED", value, low=0)
    if reserved >= total:
        raise ValueError(f"WS_RESERVED_AUTHENTICATED must be below MAX_WS_CONNECTIONS ({total}); got {reserved}")
    return reserved


def _pem(value: str | None) -> str | None:
    # One-line environments (Heroku config, .env) often carry a PEM with literal "\\n"s.
    if value is not None and "\n" not in value and "\\n" in value:
        value = value.replace("\\n", "\n")
    return value


# `scrypt$<n>$<r>$<p>$<salt b64>$<hash b64>`, as `python -m app.tokens hash-password` prints.
PASSWORD_HASH_RE = re.compile(r"^scrypt\$(\d+)\$(\d+)\$(\d+)\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$")


def _auth_users(value: str) -> tuple[AuthUser, ...]:
    """AUTH_USERS=`name:role:hash,name:role:hash` (hashes from `python -m app.tokens hash-password`)."""
    users: dict[str, AuthUser] = {}
    for position, entry in enumerate((e.strip() for e in value.split(",")), start=1):
        if not entry:
            continue
        parts = entry.split(":")
        if len(parts) != 3:
            raise ValueError(f"AUTH_USERS entry {position} must be name:role:hash")
        name, role, password_hash = parts
        if not USER_NAME_RE.match(name):
            raise ValueError(f"AUTH_USERS entry {position}: user name must be 1-64 of A-Z a-z 0-9 . _ @ -")
        if role not in ROLES:
            raise ValueError(f"AUTH_USERS user {name!r}: role must be one of {', '.join(ROLES)}; got {role!r}")
        if not _is_password_hash(password_hash):
            raise ValueError(
                f"AUTH_USERS user {name!r}: the password must be a hash printed by "
                "`python -m app.tokens hash-password`, never the password itself"
            )
        if name in users:
            raise ValueError(f"AUTH_USERS names user {name!r} twice")
        users[name] = AuthUser(name, role, password_hash)
    return tuple(users.values())


def _is_password_hash(value: str) -> bool:
    match = PASSWORD_HASH_RE.match(value)
    if not match:
        return False
    n, r, p = (int(match.group(i)) for i in (1, 2, 3))
    if n < 2 or n & (n - 1) or not r or not p:
        return False
    try:
        base64.b64decode(match.group(4), validate=True)
        base64.b64decode(match.group(5), validate=True)
    except binascii.Error:
        return False
    return True


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
    return value


def _symbols(name: str, value: str) -> tuple[str, ...]:
    """`BTCUSDT,ethusdt` → ("BTCUSDT", "ETHUSDT"); `none` → () (an empty variable means the default)."""
    symbols: list[str] = []
    if value.strip().lower() == "none":
        return ()
    # only ASCII letters are folded: str.upper() would turn "btcuſdt" into "BTCUSDT"
    for item in (i.strip().translate(_ASCII_UPPER) for i in value.split(",")):
        if not item:
            continue
        if not SYMBOL_RE.match(item):
            raise ValueError(f"{name}: {item!r} is not a symbol (A-Z, 0-9 or non-ASCII, at most 20)")
        if item not in symbols:
            symbols.append(item)
    return tuple(symbols)


def _choice_int(name: str, value: str, allowed: tuple[int, ...]) -> int:
    number = _integer(name, value, low=min(allowed))
    if number not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(str, allowed))}; got {number}")
    return number


def _integer(name: str, value: str, *, low: int, high: int | None = None) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"{name} must be an integer; got {value!r}") from None
    if number < low or (high is not None and number > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ValueError(f"{name} must be {bounds}; got {number}")
    return number


def _boolean(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name} must be true or false; got {value!r}")


def _seconds(name: str, value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{name} must be a number of seconds; got {value!r}") from None
    if not number > 0 or number == float("inf"):
        raise ValueError(f"{name} must be a positive number of seconds; got {value!r}")
    return number


def _share(name: str, value: str) -> float:
    """A fraction in [0, 1): 0.2 for 20 %."""
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{name} must be a fraction like 0.2; got {value!r}") from None
    if not 0 <= number < 1:
        raise ValueError(f"{name} must be at least 0 and below 1; got {value!r}")
    return number


def _url(name: str, value: str, schemes: tuple[str, ...]) -> str:
    parts = urlsplit(value)
    if parts.scheme not in schemes or not parts.netloc:
        raise ValueError(f"{name} must be a {'/'.join(schemes)} URL; got {value!r}")
    return value.rstrip("/")


def _redis_url(value: str) -> str:
    # Not echoed back: a Redis URL may carry a password.
    scheme = urlsplit(value).scheme
    if scheme not in ("redis", "rediss", "unix"):
        raise ValueError(f"REDIS_URL must start with redis://, rediss:// or unix://; got scheme {scheme!r}")
    url_tls_options(value)  # an unknown ssl_cert_reqs is refused here, not at the first connection
    return value


def _existing_file(name: str, value: str | None) -> str | None:
    if value is not None and not Path(value).is_file():
        raise ValueError(f"{name} must name a readable file; {value!r} is not one")
    return value


def _metrics_token(value: str | None, paper: bool) -> str | None:
    if value is not None and not paper and len(value) < MIN_METRICS_TOKEN_LENGTH:
        raise ValueError(
            f"METRICS_TOKEN must be at least {MIN_METRICS_TOKEN_LENGTH} characters when SPOTGATE_MODE=live"
        )
    return value


def _origins(value: str) -> tuple[str, ...]:
    origins = tuple(o.strip() for o in value.split(",") if o.strip())
    if not origins:
        raise ValueError("CORS_ORIGINS must name at least one origin, or '*'")
    return origins
