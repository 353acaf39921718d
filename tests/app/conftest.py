"""The gateway's web process against a paper exchange and real Redis, as a user runs them."""

from __future__ import annotations

import pytest

from tests.processes import PaperProcess, WebProcess


@pytest.fixture(scope="module")
def upstream():
    px = PaperProcess(seed=5)
    yield px
    px.stop()


@pytest.fixture(scope="module")
def gateway(upstream, redis_url):
    web = WebProcess(upstream.url, redis_url)
    yield web
    web.stop()


@pytest.fixture(autouse=True)
def _clear_upstream_faults(request):
    yield
    if "upstream" in request.fixturenames:
        request.getfixturevalue("upstream").admin("DELETE", "faults")
