"""`python -m app.tokens issue` answers at once: it loads the token core, not the web tier (Sanic,
sanic-ext, pydantic, redis-py took ~1.7 s of imports). Checked by what it imports, not by a clock."""

from __future__ import annotations

import json
import subprocess
import sys

from app.token_codec import Role, TokenCodec
from config.settings import Settings
from tests.processes import ROOT

HEAVY = ("sanic", "sanic_ext", "pydantic", "redis", "celery", "aiohttp")


def test_issuing_a_token_loads_none_of_the_web_tier():
    probe = (
        "import json, sys\nfrom app.tokens import main\n"
        "main(['issue', '--sub', 'me', '--role', 'trader'])\n"
        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))))"
    )
    env = {"PATH": "/usr/bin:/bin", "JWT_SECRET": "cli-test-secret-" + "x" * 32}
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    token, loaded = result.stdout.split()
    assert json.loads(loaded) == []
    principal = TokenCodec.from_settings(Settings.from_env(env)).decode(token)
    assert principal.sub == "me" and principal.role == Role.TRADER
