from __future__ import annotations

import pytest

from tests.processes import PaperProcess


@pytest.fixture(scope="module")
def exchange():
    """A paper exchange process for this module's client tests."""
    px = PaperProcess(seed=3)
    yield px
    px.stop()


@pytest.fixture(autouse=True)
def _no_faults_left(request):
    yield
    if "exchange" in request.fixturenames:
        request.getfixturevalue("exchange").admin("DELETE", "faults")
