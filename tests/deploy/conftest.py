"""Fixtures for the deployment tests: a private TLS Redis as Heroku's add-on presents it."""

from __future__ import annotations

import pytest

from tests.processes import RedisServer


@pytest.fixture(scope="package")
def tls_redis():
    server = RedisServer(tls=True, password="tls-test-password")
    yield server
    server.stop()
