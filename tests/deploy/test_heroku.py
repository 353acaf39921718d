"""The Heroku manifest and release phase: app.json is valid for the fields it uses and describes every
process and required variable; `release:` passes with app.json's configuration and fails the release
with one clear line when the configuration would not run."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess

import jsonschema
import pytest

from config.settings import DEFAULTS
from tests.processes import ROOT, free_port, procfile_command

APP_JSON = json.loads((ROOT / "app.json").read_text())
SCHEMA = json.loads((ROOT / "tests/data/heroku/app-json.schema.json").read_text())


def procfile_types() -> set[str]:
    return {
        line.split(":", 1)[0].strip()
        for line in (ROOT / "Procfile").read_text().splitlines()
        if ":" in line and not line.lstrip().startswith("#")
    }


def test_app_json_validates_against_herokus_schema_for_the_fields_it_uses():
    jsonschema.Draft7Validator(SCHEMA, format_checker=jsonschema.FormatChecker()).validate(APP_JSON)
    broken = {**APP_JSON, "formation": {"web": {"quantity": "one"}}}  # the schema does refuse mistakes
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, SCHEMA)


def test_app_json_runs_every_process_type_with_redis_and_live_settings():
    assert set(APP_JSON["formation"]) == procfile_types() - {"release"} == {"web", "worker", "beat", "stream"}
    assert all(f["quantity"] >= 1 for f in APP_JSON["formation"].values())
    assert APP_JSON["formation"]["beat"]["quantity"] == 1  # two beats would schedule everything twice
    assert [a["plan"].split(":")[0] for a in APP_JSON["addons"]] == ["heroku-redis"]
    assert APP_JSON["addons"][0]["as"] == "REDIS"  # → REDIS_URL
    env = APP_JSON["env"]
    assert env["SPOTGATE_MODE"]["value"] == "live"
    assert env["JWT_SECRET"] == {**env["JWT_SECRET"], "generator": "secret"}
    assert env["REDIS_SSL_CERT_REQS"]["value"] == "none"
    assert env["BINANCE_API_KEY"]["required"]
    # The signing half is one of two: an HMAC secret or an RSA/Ed25519 private key (the release checks one is set).
    assert not env["BINANCE_API_SECRET"]["required"] and not env["BINANCE_PRIVATE_KEY"]["required"]
    assert all(entry.get("description") for entry in env.values())


def test_app_json_names_only_variables_something_reads():
    read = set(DEFAULTS) | set(re.findall(r'get\("([A-Z_]+)"', (ROOT / "config/settings.py").read_text()))
    read |= set(re.findall(r"\$\{?([A-Z_]+)", (ROOT / "Procfile").read_text()))
    read |= {name for name in APP_JSON["env"] if name.startswith("SANIC_")}  # read by Sanic itself
    assert set(APP_JSON["env"]) <= read, set(APP_JSON["env"]) - read


def app_json_environment(redis_url: str) -> dict[str, str]:
    """What Heroku gives the dynos after `app.json` set-up: values, a generated secret, the add-on's
    REDIS_URL and the credentials a user types in."""
    env = {name: entry["value"] for name, entry in APP_JSON["env"].items() if "value" in entry}
    env.update(
        JWT_SECRET=secrets.token_hex(32), BINANCE_API_KEY="k" * 64, BINANCE_API_SECRET="s" * 64, REDIS_URL=redis_url
    )
    return env


def release(env: dict[str, str]) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "BINANCE_", "JWT_", "SPOTGATE_"))}
    environ["PATH"] = f"{ROOT / '.venv' / 'bin'}{os.pathsep}{environ.get('PATH', '')}"
    return subprocess.run(
        ["/bin/bash", "-c", procfile_command("release")],
        cwd=ROOT,
        env={**environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_release_passes_with_app_json_configuration(tls_redis):
    result = release(app_json_environment(tls_redis.url))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("release check passed: mode=live, Redis answers (TLS, certificate check none)")


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"BINANCE_API_SECRET": ""}, r"BINANCE_API_SECRET.*must be set when SPOTGATE_MODE=live"),
        (
            {
                "BINANCE_API_SECRET": "",
                "BINANCE_PRIVATE_KEY": "-----BEGIN PRIVATE KEY-----\\nnot-a-key\\n-----END PRIVATE KEY-----",
            },
            r"BINANCE_PRIVATE_KEY: cannot read the private key",
        ),
        ({"JWT_SECRET": "short"}, "JWT_SECRET must be at least 32 characters"),
        ({"REDIS_SSL_CERT_REQS": ""}, "Heroku Redis uses a self-signed certificate: set REDIS_SSL_CERT_REQS=none"),
        ({"REDIS_SSL_CERT_REQS": "off"}, "REDIS_SSL_CERT_REQS must be one of required, optional, none"),
        ({"REDIS_URL": "closed port"}, r"Redis at REDIS_URL does not answer \(a rediss:// URL needs a TLS port\)"),
        ({"REDIS_URL": "wrong password"}, "Redis refused the password in REDIS_URL"),
    ],
    ids=[
        "no-binance-secret",
        "unusable-private-key",
        "short-jwt-secret",
        "untrusted-certificate",
        "bad-setting",
        "no-redis",
        "bad-password",
    ],
)
def test_release_fails_with_a_clear_reason(tls_redis, change, reason):
    env = app_json_environment(tls_redis.url)
    if change.get("REDIS_URL") == "closed port":
        change = {"REDIS_URL": f"rediss://:pw@127.0.0.1:{free_port()}/0"}
    elif change.get("REDIS_URL") == "wrong password":
        change = {"REDIS_URL": tls_redis.url.replace(tls_redis.password, "not-the-password")}
    env.update(change)
    result = release(env)
    assert result.returncode == 1
    assert result.stderr.startswith("release check failed: ") and re.search(reason, result.stderr), result.stderr
    assert "Traceback" not in result.stderr and tls_redis.password not in result.stderr + result.stdout
    assert "not-a-key" not in result.stderr + result.stdout


def test_release_passes_with_a_private_key_config_var_instead_of_the_secret(tls_redis):
    from tests.paper.conftest import key_files

    env = app_json_environment(tls_redis.url)
    env.update(
        BINANCE_API_SECRET="", BINANCE_PRIVATE_KEY=key_files()["ed25519_private"].read_text().replace("\n", "\\n")
    )
    result = release(env)
    assert result.returncode == 0, result.stderr
