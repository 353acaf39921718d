"""Fixtures for paper exchange tests: a real `python -m paper_exchange` process on a loopback port."""

from __future__ import annotations

import pytest

# The paper exchange process and its key material live with the other processes; imported here too
# because paper tests have always found them in this module.
from tests.processes import (  # noqa: F401
    DEMO_KEY,
    DEMO_SECRET,
    ED25519_KEY,
    ROOT,
    RSA_KEY,
    PaperProcess,
    asymmetric_signature,
    free_port,
    key_files,
    private_key,
)


@pytest.fixture(scope="session")
def _paper_session():
    px = PaperProcess(seed=7)
    yield px
    px.stop()


@pytest.fixture
def paper(_paper_session):
    """One paper exchange for the session; tests must not assume balances others left. Fault rules
    a test adds are cleared after it, and so are the rate-limit counters (the whole suite's traffic
    would otherwise share one REQUEST_WEIGHT minute and end in 429s)."""
    yield _paper_session
    _paper_session.reset()


@pytest.fixture
def fresh_paper():
    """A paper exchange of its own, for tests that need known balances or a quiet market."""
    px = PaperProcess(seed=11)
    yield px
    px.stop()


@pytest.fixture
def make_paper():
    """Start paper exchanges with their own PAPER_* settings: `make_paper(PAPER_WEIGHT_LIMIT="30")`.
    Every process started is stopped after the test."""
    started: list[PaperProcess] = []

    def start(seed: int = 13, **env: str) -> PaperProcess:
        px = PaperProcess(seed=seed, **env)
        started.append(px)
        return px

    yield start
    for px in reversed(started):
        px.stop()
