"""How the web process serves the dashboard: `/` and its ES modules without a token (the API calls
carry one), JavaScript as JavaScript, a Content-Security-Policy that admits only this origin and the
vendored chart library's one inline style, nothing outside app/dashboard/static, and the library's
license next to it."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest
import requests

from app.dashboard import CHART_LIBRARY, CHART_STYLE_HASH, STATIC

pytestmark = pytest.mark.integration


def test_the_chart_style_hash_in_the_policy_is_the_vendored_librarys():
    source = CHART_LIBRARY.read_text(encoding="utf-8")
    styles = re.findall(r'createElement\("style"\),this\.\w+\.innerText="([^"]*)"', source)
    assert len(styles) == 1, "the library writes a different number of inline styles than the policy allows"
    digest = base64.b64encode(hashlib.sha256(styles[0].encode()).digest()).decode()
    assert CHART_STYLE_HASH == f"sha256-{digest}"
    assert "Licensed under Apache License 2.0" in source[:400]
    assert (CHART_LIBRARY.parent / "LICENSE").read_text().startswith(" " * 33 + "Apache License")


def test_the_page_and_its_modules_need_no_token_but_the_api_does(stack):
    base = stack.web.url
    page = requests.get(base + "/", timeout=10)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    policy = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy and "unsafe" not in policy
    assert f"'{CHART_STYLE_HASH}'" in policy and "frame-ancestors 'none'" in policy
    assert '<script type="module" src="/dashboard/js/main.js">' in page.text
    for module in sorted((STATIC / "js").glob("*.js")):
        answer = requests.get(f"{base}/dashboard/js/{module.name}", timeout=10)
        assert answer.status_code == 200, module.name
        assert answer.headers["Content-Type"].split(";")[0] in ("text/javascript", "application/javascript")
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
    # every import a module makes is served (no CDN, no build step)
    for module in (STATIC / "js").glob("*.js"):
        for target in re.findall(r'from "(\.[^"]+)"', module.read_text()):
            resolved = (module.parent / target).resolve().relative_to(STATIC)
            assert requests.get(f"{base}/dashboard/{resolved.as_posix()}", timeout=10).status_code == 200, target
        assert "http://" not in module.read_text() and "https://" not in module.read_text(), module.name
    assert requests.get(base + "/api/v1/account", timeout=10).status_code == 401


@pytest.mark.parametrize(
    "path",
    [
        "/dashboard/../__init__.py",
        "/dashboard/%2e%2e/__init__.py",
        "/dashboard/js/nope.js",
        "/dashboard/",
        "/dashboard/js/",
    ],
)
def test_nothing_outside_the_static_folder_is_served(stack, path):
    answer = requests.get(stack.web.url + path, timeout=10)
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "NOT_FOUND"
    assert "create_app" not in answer.text


def test_status_reports_the_relay_the_workers_and_the_order_counts_the_page_shows(stack):
    answer = stack.web.get("/api/v1/status")
    assert answer.status_code == 200, answer.text
    status = answer.json()["data"]
    streams, workers, orders = status["streams"], status["workers"], status["orders"]
    assert streams["running"] is True and 0 <= streams["reportAgeMs"] <= 3000
    assert streams["connections"] >= 1 and streams["userStream"]["subscribed"] is True
    assert workers["answering"] is True and workers["latencyMs"] > 0
    assert set(workers["queued"]) == {"orders", "default"}
    # the paper exchange's ORDERS limits (100 / 10 s, 200,000 / day) less the 10 % headroom
    assert (orders["limit10s"], orders["limitDay"]) == (90, 180_000)
    before = orders["last10s"]
    order = stack.place_limit()
    try:
        after = stack.web.get("/api/v1/status").json()["data"]["orders"]
        assert after["today"] >= 1 and (after["last10s"] >= before + 1 or after["last10s"] >= 1)
    finally:
        stack.cancel(order)
