"""The dashboard in a real browser: Debian's headless Chromium driven by Playwright, against the whole
stack (paper exchange, Redis, a worker with embedded beat, the stream relay, the web process) from
tests/e2e — one deployment for every browser test, the page talking to the web process only.

Playwright's own browser download is never used: the tests launch /usr/bin/chromium (`make test`
installs Debian's `chromium` when it is missing and it runs as root) and are skipped, saying why,
only where no Chromium is installed. Screenshots go to test-artifacts/dashboard/ (SPOTGATE_ARTIFACTS).
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from app.passwords import hash_password
from tests.e2e.conftest import System
from tests.processes import ROOT
from tests.support import eventually

CHROMIUM = os.environ.get("SPOTGATE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = Path(os.environ.get("SPOTGATE_ARTIFACTS", ROOT / "test-artifacts")) / "dashboard"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
PASSWORDS = {
    "alice": "alice-trades-" + uuid.uuid4().hex[:8],
    "ops": "ops-admin-" + uuid.uuid4().hex[:8],
    "vera": "vera-views-" + uuid.uuid4().hex[:8],
}
ROLES = {"alice": "trader", "ops": "admin", "vera": "viewer"}
# Short access tokens, so a signed-in page refreshes its token while the tests watch it.
ACCESS_TOKEN_TTL = 20


def chromium_or_skip() -> str:
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.skip(
            f"no Chromium at {CHROMIUM}: install Debian's `chromium` package (`make test` does when it "
            "runs as root) or set SPOTGATE_CHROMIUM; Playwright's own browser download is not used"
        )
    return CHROMIUM


@pytest.fixture(scope="package")
def browser():
    path = chromium_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="package")
def stack(redis_url, browser):
    """One deployment for all browser tests (started after the browser, so a machine without
    Chromium skips before spending anything on it)."""
    users = ",".join(f"{name}:{ROLES[name]}:{hash_password(password)}" for name, password in PASSWORDS.items())
    system = System(
        redis_url,
        seed=91,
        # Binance's 6000 a minute is spent here: the tests sign in and reload tens of times a minute,
        # each load ~250 weight, far more than a trader's one page. The page waits a spent minute out
        # (test_reads_refused_for_a_spent_weight_budget_...), but a test would wait with it.
        paper_env={"PAPER_WEIGHT_LIMIT": "60000"},
        relay_env={"STREAM_SYMBOLS": "BTCUSDT"},
        web_env={
            "AUTH_USERS": users,
            "ACCESS_TOKEN_TTL": f"{ACCESS_TOKEN_TTL}s",
            # the tests sign one subject in and reload tens of times a minute: each
            # load reads open orders, account and positions (~250 weight)
            "CLIENT_WEIGHT_PER_MINUTE": "100000",
        },
    )
    try:
        eventually(system.user_stream_ready, 30, what="the user stream subscribed")
        yield system
    finally:
        system.stop()


@pytest.fixture(scope="package")
def artifacts() -> Path:
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


# Chrome logs every 4xx answer as a console error; the page expects those (a wrong password, a
# rejected order) and shows them. A 5xx, an exception or a CSP violation is a failure.
HANDLED = re.compile(r"^Failed to load resource: the server responded with a status of 4\d\d ")


@dataclass
class Tab:
    """One browser tab on the dashboard, with every console error and page error it produced."""

    page: object
    context: object
    errors: list = field(default_factory=list)

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def open_tab(browser, stack):
    """open_tab(viewport=DESKTOP, color_scheme="light", setup=None) → a Tab on `/`, not signed in
    (`setup(page)` runs before it navigates). At the end of
    the test no tab may have logged a console error (a CSP violation, an exception, a failed module)."""
    tabs: list[Tab] = []

    def open_(viewport=DESKTOP, color_scheme="light", path="/", setup=None) -> Tab:
        context = browser.new_context(
            viewport=viewport,
            color_scheme=color_scheme,
            device_scale_factor=1,
            is_mobile=viewport["width"] < 500,
            has_touch=viewport["width"] < 500,
        )
        page = context.new_page()
        tab = Tab(page, context)
        page.on(
            "console", lambda m: tab.errors.append(m.text) if m.type == "error" and not HANDLED.match(m.text) else None
        )
        page.on("pageerror", lambda exc: tab.errors.append(str(exc)))
        if setup is not None:
            setup(page)
        page.goto(stack.web.url + path)
        tabs.append(tab)
        return tab

    yield open_
    errors = [e for tab in tabs for e in tab.errors]
    for tab in tabs:
        tab.close()
    assert not errors, f"the page logged errors: {errors}"


def sign_in_with_token(tab: Tab, token: str) -> None:
    page = tab.page
    page.fill("#token-input", token)
    page.click("#token-form button[type=submit]")
    page.wait_for_selector("#app:not([hidden])")


def sign_in_with_password(tab: Tab, user: str) -> None:
    page = tab.page
    page.fill("#login-username", user)
    page.fill("#login-password", PASSWORDS[user])
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#app:not([hidden])")


def wait_live(tab: Tab, timeout: float = 30) -> None:
    """The connection indicator says live, and the header shows a price."""
    tab.page.wait_for_selector('#conn-state[data-state="live"]', timeout=timeout * 1000)
    tab.page.wait_for_function(
        "() => document.getElementById('last-price').textContent.trim() !== '–'", timeout=timeout * 1000
    )
