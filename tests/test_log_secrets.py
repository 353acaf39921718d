"""The log scanner finds what it is meant to find (so a clean scan means something)."""

import jwt

from tests.log_secrets import JWT_RE, default_secrets, find_secrets
from tests.processes import TEST_JWT_SECRET


def test_it_finds_the_secret_a_pem_line_and_a_jwt_and_passes_clean_logs():
    secrets = default_secrets()
    pem_line = next(v for k, v in secrets.items() if k.startswith("rsa private key"))
    token = jwt.encode({"sub": "tester", "role": "trader"}, TEST_JWT_SECRET, algorithm="HS256")
    logs = {
        "web": f"GET /x token={token}",
        "worker": f"signing with {secrets['BINANCE_API_SECRET']}",
        "stream": f"key material {pem_line}",
        "clean": "GET /api/v1/ticker/price 200 1.2 ms",
    }
    hits = find_secrets(logs, secrets)
    assert any(h.startswith("web: a JWT") for h in hits)
    assert "worker: BINANCE_API_SECRET" in hits
    assert any(h.startswith("stream: rsa private key") for h in hits)
    assert not [h for h in hits if h.startswith("clean")]
    assert JWT_RE.search(token) and not JWT_RE.search("eyJhbGciOi but no second part")
