"""/docs works with no internet: the page and every asset it loads come from the gateway (the pinned
swagger-ui-py package's static files), and a real browser that can reach nothing but loopback renders the API."""

from __future__ import annotations

import re
import shutil
import subprocess
from urllib.parse import urljoin, urlsplit

import pytest

from tests.processes import WebProcess

pytestmark = pytest.mark.integration

ASSET_TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png"}


@pytest.fixture(scope="module")
def web(redis_url):
    from tests.processes import PaperProcess

    # both stopped also when the web process fails to start
    with PaperProcess(seed=31) as paper, WebProcess(paper.url, redis_url) as web:
        yield web


def test_docs_page_references_no_external_host_and_its_assets_load(web):
    page = web.http.get(web.url + "/docs", timeout=10)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert not re.findall(r"(?:https?:)?//[A-Za-z0-9.-]+", page.text.replace(web.url, "")), "an external URL"
    refs = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert {
        "/docs/ui/swagger-ui-bundle.js",
        "/docs/ui/swagger-ui-standalone-preset.js",
        "/docs/ui/swagger-ui.css",
    } <= set(refs)
    for ref in refs:
        url = urljoin(web.url + "/docs", ref)
        assert urlsplit(url).netloc == urlsplit(web.url).netloc, ref
        asset = web.http.get(url, timeout=10)
        assert asset.status_code == 200, ref
        kind = next(v for k, v in ASSET_TYPES.items() if ref.endswith(k))
        assert kind in asset.headers["Content-Type"], (ref, asset.headers["Content-Type"])
    spec = web.http.get(web.url + "/docs/openapi.json", timeout=10).json()
    assert "/api/v1/ticker/price" in spec["paths"]
    # Swagger UI's OAuth2 redirect page: from the package too (sanic-ext's fetched it from a CDN)
    assert web.http.get(web.url + "/docs/oauth2-redirect.html", timeout=10).status_code == 200


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed")
def test_a_browser_without_internet_renders_the_api_docs(web):
    # Every host but loopback fails to resolve: a CDN reference would leave the page blank.
    result = subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            "--virtual-time-budget=15000",
            "--dump-dom",
            web.url + "/docs",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    dom = result.stdout
    assert 'class="swagger-ui"' in dom, result.stderr[-2000:]
    assert "/api/v1/ticker/price" in dom and "/api/v1/order" in dom  # operations rendered from the spec
