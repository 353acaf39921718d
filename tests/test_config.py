"""Settings from the environment, and secret redaction in logs."""

import logging
import sys

import pytest

from config.logging import REDACTED, SecretRedactingFilter, SingleLineFormatter, setup_logging
from config.settings import (
    DEV_JWT_SECRET,
    PAPER_DEMO_API_KEY,
    PAPER_DEMO_API_SECRET,
    Settings,
)

LIVE_KEYS = {
    "SPOTGATE_MODE": "live",
    "BINANCE_API_KEY": "live-key",
    "BINANCE_API_SECRET": "live-secret-value",
    "JWT_SECRET": "a-real-jwt-secret-of-at-least-32-chars",
}
# What `python -m app.tokens hash-password` prints (for "pw"); the settings only check its shape.
PASSWORD_HASH = "scrypt$32768$8$1$qtmzeMcBnZydmy3B1e/4yA==$ndQY3q0YuvdgxYNTx2PTo4Ih3M6wMCxHH6Y5QK4aoDc="


def test_paper_mode_defaults_run_against_the_local_paper_exchange():
    settings = Settings.from_env({})

    assert settings.mode == "paper" and settings.is_paper
    assert settings.port == 8000
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    assert settings.redis_key_prefix == "spotgate:"
    assert settings.redis_ssl_cert_reqs == "required" and settings.redis_ssl_ca_certs is None
    assert settings.binance_api_url == "http://127.0.0.1:8900"
    assert settings.binance_stream_url == "ws://127.0.0.1:8900"
    assert settings.binance_ws_api_url == "ws://127.0.0.1:8900/ws-api/v3"
    assert settings.binance_api_key == PAPER_DEMO_API_KEY
    assert settings.binance_api_secret == PAPER_DEMO_API_SECRET
    assert settings.user_stream_mode == "ws-api"
    assert settings.jwt_secret == DEV_JWT_SECRET
    assert settings.jwt_public_key is None
    assert settings.cors_origins == ("*",)
    assert settings.max_ws_connections == 10000
    assert settings.upstream_timeout == 10.0
    assert settings.log_level == "INFO"
    assert settings.jwt_private_key is None
    assert settings.auth_users == ()
    assert settings.access_token_ttl == 15 * 60
    assert settings.refresh_token_ttl == 7 * 86400


def test_money_safety_defaults_are_the_documented_ones():
    settings = Settings.from_env({})
    assert (settings.order_ttl_market, settings.order_ttl) == (10.0, 300.0)
    assert (settings.upstream_order_reserve, settings.upstream_cancel_reserve) == (0.2, 0.05)
    assert settings.client_weight_per_minute == 1200
    assert settings.positions_cache_ttl == 5.0
    assert settings.job_redrive_after == 120.0
    assert settings.ws_max_depth_channels == 10
    relaxed = Settings.from_env({"UPSTREAM_ORDER_RESERVE": "0", "UPSTREAM_CANCEL_RESERVE": "0"})
    assert (relaxed.upstream_order_reserve, relaxed.upstream_cancel_reserve) == (0.0, 0.0)


def test_environment_values_are_parsed():
    settings = Settings.from_env(
        {
            "PORT": "9000",
            "REDIS_URL": "rediss://:pw@redis.example:6380/2",
            "USER_STREAM_MODE": "listen-key",
            "CORS_ORIGINS": "https://a.example, https://b.example",
            "MAX_WS_CONNECTIONS": "50",
            "UPSTREAM_TIMEOUT": "2.5",
            "LOG_LEVEL": "debug",
            "BINANCE_API_URL": "http://127.0.0.1:9999/",
        }
    )

    assert settings.port == 9000
    assert settings.redis_url == "rediss://:pw@redis.example:6380/2"
    assert settings.user_stream_mode == "listen-key"
    assert settings.cors_origins == ("https://a.example", "https://b.example")
    assert settings.max_ws_connections == 50
    assert settings.upstream_timeout == 2.5
    assert settings.log_level == "DEBUG"
    assert settings.binance_api_url == "http://127.0.0.1:9999"


def test_settings_are_immutable():
    settings = Settings.from_env({})
    with pytest.raises(AttributeError):
        settings.port = 1


def test_live_mode_uses_binance_endpoints_and_given_credentials():
    settings = Settings.from_env(LIVE_KEYS)

    assert not settings.is_paper
    assert settings.binance_api_url == "https://api.binance.com"
    assert settings.binance_stream_url == "wss://stream.binance.com:9443"
    assert settings.binance_ws_api_url == "wss://ws-api.binance.com:443/ws-api/v3"
    assert settings.binance_api_key == "live-key"
    assert settings.binance_api_secret == "live-secret-value"


@pytest.mark.parametrize("missing", ["BINANCE_API_KEY", "BINANCE_API_SECRET"])
def test_live_mode_signing_processes_refuse_missing_binance_credentials(missing):
    env = {k: v for k, v in LIVE_KEYS.items() if k != missing}
    settings = Settings.from_env(env)  # the web process runs without them
    with pytest.raises(ValueError, match=missing):
        settings.require_binance_credentials()


def test_a_private_key_file_replaces_the_api_secret():
    env = {k: v for k, v in LIVE_KEYS.items() if k != "BINANCE_API_SECRET"}
    settings = Settings.from_env(
        {
            **env,
            "BINANCE_PRIVATE_KEY_FILE": "/run/keys/ed25519.pem",
            "BINANCE_PRIVATE_KEY_PASSPHRASE": "pass-phrase-value",
        }
    )
    settings.require_binance_credentials()  # a key file is enough: no HMAC secret needed
    assert settings.binance_private_key_file == "/run/keys/ed25519.pem"
    assert "pass-phrase-value" in settings.secret_values() and "pass-phrase-value" not in repr(settings)
    with pytest.raises(ValueError, match="BINANCE_PRIVATE_KEY_FILE"):
        Settings.from_env(env).require_binance_credentials()


def test_a_private_key_in_the_environment_replaces_the_api_secret():
    env = {k: v for k, v in LIVE_KEYS.items() if k != "BINANCE_API_SECRET"}
    one_line = "-----BEGIN PRIVATE KEY-----\\nMC4CAQAwBQYDK2VwBCIEI-key-body\\n-----END PRIVATE KEY-----"
    settings = Settings.from_env({**env, "BINANCE_PRIVATE_KEY": one_line})
    settings.require_binance_credentials()
    assert settings.binance_private_key.splitlines()[1] == "MC4CAQAwBQYDK2VwBCIEI-key-body"  # `\n` read as newline
    assert settings.binance_private_key in settings.secret_values() and "key-body" not in repr(settings)
    both = Settings.from_env({**env, "BINANCE_PRIVATE_KEY": one_line, "BINANCE_PRIVATE_KEY_FILE": "/k.pem"})
    with pytest.raises(ValueError, match="not both"):
        both.require_binance_credentials()


@pytest.mark.parametrize("jwt_secret", [None, "", DEV_JWT_SECRET])
def test_live_mode_refuses_the_dev_jwt_secret(jwt_secret):
    env = {k: v for k, v in LIVE_KEYS.items() if k != "JWT_SECRET"}
    if jwt_secret is not None:
        env["JWT_SECRET"] = jwt_secret
    with pytest.raises(ValueError, match="JWT_SECRET"):
        Settings.from_env(env)


@pytest.mark.parametrize(
    "name, url",
    [
        ("BINANCE_API_URL", "https://api.binance.com"),
        ("BINANCE_STREAM_URL", "wss://stream.binance.com:9443"),
        ("BINANCE_WS_API_URL", "wss://ws-api.binance.com:443/ws-api/v3"),
        ("BINANCE_API_URL", "http://10.0.0.5:8900"),
    ],
)
def test_paper_mode_refuses_the_dev_jwt_secret_against_a_remote_upstream(name, url):
    # Forgetting SPOTGATE_MODE=live must not leave the published dev secret in force against Binance.
    with pytest.raises(ValueError, match=f"JWT_SECRET.*{name} is not loopback"):
        Settings.from_env({name: url})
    settings = Settings.from_env({name: url, "JWT_SECRET": "a-real-jwt-secret-of-at-least-32-chars"})
    assert settings.is_paper and settings.binance_api_key == "" and settings.binance_api_secret == ""


@pytest.mark.parametrize(
    "pair",
    [
        {"BINANCE_API_KEY": PAPER_DEMO_API_KEY, "BINANCE_API_SECRET": "mine"},
        {"BINANCE_API_KEY": "mine", "BINANCE_API_SECRET": PAPER_DEMO_API_SECRET},
    ],
)
@pytest.mark.parametrize("mode", ["paper", "live"])
def test_the_demo_key_pair_is_refused_against_a_remote_upstream(pair, mode):
    env = {**LIVE_KEYS, "SPOTGATE_MODE": mode, "BINANCE_API_URL": "https://api.binance.com", **pair}
    with pytest.raises(ValueError, match="demo pair is refused against a non-loopback upstream"):
        Settings.from_env(env)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8900", "http://127.9.9.9:1", "http://localhost:8900", "http://[::1]:8900"]
)
def test_dev_defaults_hold_against_a_loopback_paper_exchange(url):
    settings = Settings.from_env({"BINANCE_API_URL": url})
    assert settings.jwt_secret == DEV_JWT_SECRET and settings.binance_api_secret == PAPER_DEMO_API_SECRET


def test_live_mode_refuses_a_short_jwt_secret():
    with pytest.raises(ValueError, match="JWT_SECRET must be at least 32"):
        Settings.from_env({**LIVE_KEYS, "JWT_SECRET": "x" * 31})
    assert Settings.from_env({**LIVE_KEYS, "JWT_SECRET": "x" * 32}).jwt_secret == "x" * 32


def test_live_mode_accepts_a_jwt_public_key_instead_of_a_secret():
    env = {k: v for k, v in LIVE_KEYS.items() if k != "JWT_SECRET"}
    env["JWT_PUBLIC_KEY"] = "-----BEGIN PUBLIC KEY-----..."
    assert Settings.from_env(env).jwt_public_key.startswith("-----BEGIN")


def test_rs256_keys_are_read_and_the_private_key_stays_secret():
    env = {
        **LIVE_KEYS,
        "JWT_PUBLIC_KEY": "-----BEGIN PUBLIC KEY-----\\nAAAA\\n-----END PUBLIC KEY-----",
        "JWT_PRIVATE_KEY": "-----BEGIN PRIVATE KEY-----\nBBBB\n-----END PRIVATE KEY-----",
    }
    settings = Settings.from_env(env)

    # One-line environments carry a PEM with literal \n; they are turned back into newlines.
    assert settings.jwt_public_key == "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"
    assert settings.jwt_private_key.startswith("-----BEGIN PRIVATE KEY-----\nBBBB")
    assert "BBBB" not in repr(settings)
    assert settings.jwt_private_key in settings.secret_values()


def test_a_jwt_private_key_needs_its_public_key():
    with pytest.raises(ValueError, match="JWT_PRIVATE_KEY"):
        Settings.from_env({"JWT_PRIVATE_KEY": "-----BEGIN PRIVATE KEY-----..."})


def test_auth_users_are_parsed():
    settings = Settings.from_env(
        {"AUTH_USERS": f" alice:trader:{PASSWORD_HASH}, bob.ops@example:admin:{PASSWORD_HASH},"}
    )

    assert [(u.name, u.role) for u in settings.auth_users] == [("alice", "trader"), ("bob.ops@example", "admin")]
    assert settings.auth_users[0].password_hash == PASSWORD_HASH


@pytest.mark.parametrize(
    "value",
    [
        "alice:trader",  # no hash
        f"alice:root:{PASSWORD_HASH}",  # unknown role
        "alice:trader:hunter2",  # a password, not a hash
        "alice:trader:scrypt$1000$8$1$c2FsdA==$aGFzaA==",  # n is not a power of two
        f"al ice:trader:{PASSWORD_HASH}",  # bad name
        f"alice:trader:{PASSWORD_HASH},alice:admin:{PASSWORD_HASH}",  # twice
    ],
)
def test_invalid_auth_users_raise_naming_the_variable(value):
    with pytest.raises(ValueError, match="AUTH_USERS"):
        Settings.from_env({"AUTH_USERS": value})


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("90", 90), ("90s", 90), ("30m", 1800), ("12h", 43200), ("30d", 2592000), (" 2H ", 7200)],
)
def test_token_lifetimes_take_units(value, seconds):
    settings = Settings.from_env({"ACCESS_TOKEN_TTL": value, "REFRESH_TOKEN_TTL": value})
    assert settings.access_token_ttl == seconds == settings.refresh_token_ttl


@pytest.mark.parametrize("name", ["ACCESS_TOKEN_TTL", "REFRESH_TOKEN_TTL"])
@pytest.mark.parametrize("value", ["15x", "0", "-5m", "1.5h", "366d", "m"])
def test_invalid_token_lifetimes_raise_naming_the_variable(name, value):
    with pytest.raises(ValueError, match=name):
        Settings.from_env({name: value})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("USER_STREAM_MODE", "polling"),
        ("SPOTGATE_MODE", "sandbox"),
        ("PORT", "eighty"),
        ("PORT", "70000"),
        ("MAX_WS_CONNECTIONS", "0"),
        ("UPSTREAM_TIMEOUT", "-1"),
        ("UPSTREAM_TIMEOUT", "nan"),
        ("LOG_LEVEL", "LOUD"),
        ("REDIS_URL", "http://127.0.0.1:6379"),
        ("BINANCE_API_URL", "ws://127.0.0.1:8900"),
        ("BINANCE_STREAM_URL", "http://127.0.0.1:8900"),
        ("CORS_ORIGINS", " , "),
        ("ORDER_TTL_MARKET", "0"),
        ("ORDER_TTL", "soon"),
        ("UPSTREAM_ORDER_RESERVE", "1"),
        ("UPSTREAM_ORDER_RESERVE", "-0.1"),
        ("UPSTREAM_CANCEL_RESERVE", "0.5"),  # more than the order reserve it is part of
        ("CLIENT_WEIGHT_PER_MINUTE", "0"),
        ("POSITIONS_CACHE_TTL", "-5"),
        ("JOB_REDRIVE_AFTER", "0"),
        ("WS_MAX_DEPTH_CHANNELS", "0"),
    ],
)
def test_invalid_values_raise_naming_the_variable(name, value):
    with pytest.raises(ValueError, match=name):
        Settings.from_env({name: value})


def test_secrets_never_appear_in_repr():
    settings = Settings.from_env(LIVE_KEYS)
    text = repr(settings)

    assert "live-secret-value" not in text
    assert "a-real-jwt-secret" not in text
    assert "scrypt$" not in repr(Settings.from_env({"AUTH_USERS": f"alice:trader:{PASSWORD_HASH}"}))
    assert PAPER_DEMO_API_SECRET not in repr(Settings.from_env({}))
    assert "binance_api_url=" in text  # the rest is still there to debug with


def test_dotenv_fills_gaps_but_never_overrides_the_real_environment(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("PORT=7000\nLOG_LEVEL=WARNING\nUSER_STREAM_MODE=listen-key\n")

    settings = Settings.from_env({"PORT": "9000"}, dotenv_path=dotenv)

    assert settings.port == 9000
    assert settings.log_level == "WARNING"
    assert settings.user_stream_mode == "listen-key"


def test_dotenv_in_the_working_directory_is_read_by_default(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text("MAX_WS_CONNECTIONS=42\nPORT=7000\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MAX_WS_CONNECTIONS", raising=False)
    monkeypatch.setenv("PORT", "9000")

    settings = Settings.from_env()

    assert settings.max_ws_connections == 42
    assert settings.port == 9000


def _record(msg, *args, exc_info=None):
    return logging.LogRecord("spotgate.test", logging.INFO, __file__, 1, msg, args, exc_info)


def test_redaction_filter_hides_secrets_in_messages_and_arguments():
    redactor = SecretRedactingFilter(["s3cr3t-value", ""])
    record = _record("signing with %s for %s", "s3cr3t-value", "BTCUSDT")

    assert redactor.filter(record) is True
    assert record.getMessage() == f"signing with {REDACTED} for BTCUSDT"


def test_redaction_filter_hides_secrets_in_tracebacks():
    redactor = SecretRedactingFilter(["s3cr3t-value"])
    try:
        raise RuntimeError("bad signature for s3cr3t-value")
    except RuntimeError:
        record = _record("request failed", exc_info=sys.exc_info())

    redactor.filter(record)
    line = SingleLineFormatter().format(record)

    assert "s3cr3t-value" not in line
    assert "RuntimeError: bad signature for ***" in line
    assert "\n" not in line


def test_setup_logging_is_idempotent_and_redacts_configured_secrets(capsys):
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    root.handlers = []
    try:
        settings = Settings.from_env(LIVE_KEYS)
        setup_logging("INFO", settings.secret_values())
        setup_logging("DEBUG", ["another-secret"])
        assert len(root.handlers) == 1
        assert root.level == logging.DEBUG

        logging.getLogger("spotgate.worker").info(
            "api secret is %s, other is another-secret", settings.binance_api_secret
        )
        line = capsys.readouterr().err.strip()
    finally:
        root.handlers, root.level = saved_handlers, saved_level

    assert "live-secret-value" not in line and "another-secret" not in line
    assert "level=INFO logger=spotgate.worker api secret is ***, other is ***" in line
    assert line[:4].isdigit() and line.split(" ", 1)[0].endswith("Z")
