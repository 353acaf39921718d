"""The /_paper admin endpoints (no auth) against a browser on the same machine: a cross-site page can
send text/plain POSTs to 127.0.0.1 and, through DNS rebinding, reach it under its own host name."""

from __future__ import annotations

import pytest


def running(paper) -> bool:
    return paper.admin("GET", "market").json()["running"]


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None]
)
def test_a_post_that_is_not_json_changes_nothing(paper, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    for path, body in (
        ("market", b'{"running": false}'),
        ("faults", b'{"kind": "drop"}'),
        ("streams/faults", b'{"kind": "drop"}'),
        ("deposit", b'{"asset": "USDT", "amount": "5"}'),
    ):
        response = paper.http.post(f"{paper.url}/_paper/{path}", data=body, headers=headers, timeout=10)
        assert response.status_code == 415, (path, response.text)
        assert "application/json" in response.json()["error"]
    assert running(paper)
    assert paper.admin("GET", "faults").json() == []


@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:8900", "10.0.0.1", "127.0.0.1.evil.example", "[::2]:80"]
)
def test_a_host_that_is_not_loopback_is_refused(paper, host):
    for method, path, body in (("GET", "accounts", None), ("POST", "market", {"running": False})):
        response = paper.http.request(
            method, f"{paper.url}/_paper/{path}", json=body, headers={"Host": host}, timeout=10
        )
        assert response.status_code == 403, (host, path, response.text)
    assert running(paper)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost:8900", "[::1]:8900", "127.0.0.2"])
def test_loopback_json_requests_still_work(paper, host):
    response = paper.http.post(
        f"{paper.url}/_paper/market", json={"running": False}, headers={"Host": host}, timeout=10
    )
    assert response.status_code == 200 and response.json()["running"] is False
    paper.resume()


def test_binance_paths_are_not_affected(paper):
    response = paper.http.get(paper.url + "/api/v3/ping", headers={"Host": "api.binance.example"}, timeout=10)
    assert response.status_code == 200
