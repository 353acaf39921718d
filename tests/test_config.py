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
    "JWT_SECRET": "a-real-jwt-secret",
}


def test_paper_mode_defaults_run_against_the_local_paper_exchange():
    settings = Settings.from_env({})

    assert settings.mode == "paper" and settings.is_paper
    assert settings.port == 8000
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    assert settings.redis_key_prefix == "spotgate:"
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


@pytest.mark.parametrize("jwt_secret", [None, "", DEV_JWT_SECRET])
def test_live_mode_refuses_the_dev_jwt_secret(jwt_secret):
    env = {k: v for k, v in LIVE_KEYS.items() if k != "JWT_SECRET"}
    if jwt_secret is not None:
        env["JWT_SECRET"] = jwt_secret
    with pytest.raises(ValueError, match="JWT_SECRET"):
        Settings.from_env(env)


def test_live_mode_accepts_a_jwt_public_key_instead_of_a_secret():
    env = {k: v for k, v in LIVE_KEYS.items() if k != "JWT_SECRET"}
    env["JWT_PUBLIC_KEY"] = "-----BEGIN PUBLIC KEY-----..."
    assert Settings.from_env(env).jwt_public_key.startswith("-----BEGIN")


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
