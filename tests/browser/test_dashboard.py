"""The dashboard as a trader meets it, in headless Chromium against the whole stack: signing in, live
prices, candles, the order book ladder against the exchange's own book, orders placed, rejected and
cancelled from the page, account events resumed after a dropped socket, the connection indicator
while the stream relay is down, what viewers and admins see, and screenshots at desktop and phone
sizes in light and dark."""

from __future__ import annotations

import json
import re
import time
from decimal import Decimal

import pytest
import requests

from tests.support import eventually

from .conftest import (
    DESKTOP,
    PHONE,
    Tab,
    sign_in_with_password,
    sign_in_with_token,
    wait_live,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BOOK_WAIT = 5  # seconds for the ladder to settle on a paused market (diffs go out every 100 ms)


def trader(open_tab, stack, sub="alice", role="trader", **options) -> Tab:
    tab = open_tab(**options)
    sign_in_with_token(tab, stack.web.token(role, sub=sub))
    wait_live(tab)
    return tab


def session_state(tab: Tab) -> dict | None:
    raw = tab.page.evaluate("sessionStorage.getItem('spotgate.session')")
    return json.loads(raw) if raw else None


def resting_price(stack, symbol="BTCUSDT") -> str:
    """A BUY price well under the market: the order rests and never fills."""
    bid = Decimal(stack.paper.get("/api/v3/ticker/bookTicker", symbol=symbol).json()["bidPrice"])
    return str((bid * Decimal("0.9")).quantize(Decimal("0.01")))


def open_order_row(tab: Tab, order_id: int):
    return tab.page.locator(f'#open-orders-body tr[data-order-id="{order_id}"]')


def event_texts(tab: Tab, kind: str = "order") -> list[str]:
    return tab.page.eval_on_selector_all(
        f'#events li[data-kind="{kind}"] .event-text', "els => els.map(e => e.textContent)"
    )


def wait_event(tab: Tab, pattern: str, kind: str = "order", timeout: float = 15) -> str:
    regex = re.compile(pattern)
    return eventually(
        lambda: next((t for t in event_texts(tab, kind) if regex.search(t)), None),
        timeout,
        what=f"an event log line matching {pattern!r}",
    )


def paper_order(stack, order_id: int, symbol="BTCUSDT") -> dict:
    answer = stack.paper.signed("GET", "/api/v3/order", symbol=symbol, orderId=order_id)
    assert answer.status_code == 200, answer.text
    return answer.json()


def event_id(raw: str) -> tuple[int, int]:
    ms, seq = raw.split("-")
    return int(ms), int(seq)


def api(stack, method: str, path: str, role: str = "trader", sub: str = "alice", **kwargs) -> requests.Response:
    return stack.web.http.request(
        method,
        stack.web.url + path,
        timeout=30,
        headers={"Authorization": f"Bearer {stack.web.token(role, sub=sub)}"},
        **kwargs,
    )


# -- signing in -------------------------------------------------------------------------------------


def test_signing_in_with_a_password_keeps_the_token_for_the_tab_refreshes_it_and_signs_out(open_tab, stack):
    tab = open_tab()
    page = tab.page
    page.wait_for_selector("#signin:not([hidden])")
    page.fill("#login-username", "alice")
    page.fill("#login-password", "not-the-password")
    page.click("#login-form button[type=submit]")
    page.wait_for_function(
        "() => document.getElementById('signin-error').textContent.includes('Invalid username or password')"
    )
    assert page.is_hidden("#app")

    sign_in_with_password(tab, "alice")
    wait_live(tab)
    assert page.text_content("#who") == "alice · trader"
    first = session_state(tab)
    assert first["role"] == "trader" and first["refreshToken"]
    # the tab keeps it: a reload opens the dashboard again without asking
    page.reload()
    page.wait_for_selector("#app:not([hidden])")
    wait_live(tab)
    # refreshed before it expires (ACCESS_TOKEN_TTL is 20 s here): a new pair, the old refresh token spent
    page.wait_for_function(
        f"() => JSON.parse(sessionStorage.getItem('spotgate.session')).token !== {json.dumps(first['token'])}",
        timeout=30_000,
    )
    second = session_state(tab)
    assert second["refreshToken"] != first["refreshToken"]
    me = requests.get(
        stack.web.url + "/api/v1/auth/me", headers={"Authorization": f"Bearer {second['token']}"}, timeout=10
    )
    assert me.status_code == 200 and me.json()["data"]["sub"] == "alice"

    page.click("#signout")
    page.wait_for_selector("#signin:not([hidden])")
    assert session_state(tab) is None
    # signing out revoked the token on the gateway, not only in the page
    eventually(
        lambda: (
            requests.get(
                stack.web.url + "/api/v1/auth/me", timeout=10, headers={"Authorization": f"Bearer {second['token']}"}
            ).status_code
            == 401
        ),
        5,
        what="the signed-out token refused",
    )
    # and neither refresh token of the session works any more (the first was spent by the rotation:
    # presented again it counts as reuse, tests/app/test_sessions.py)
    for refresh_token in (first["refreshToken"], second["refreshToken"]):
        spent = requests.post(stack.web.url + "/api/v1/auth/refresh", json={"refreshToken": refresh_token}, timeout=10)
        assert spent.status_code == 401 and spent.json()["error"]["code"] in ("TOKEN_REUSED", "TOKEN_REVOKED")


def test_a_viewer_sees_market_data_but_no_order_form_and_no_admin_controls(open_tab, stack):
    tab = trader(open_tab, stack, sub="vera", role="viewer")
    page = tab.page
    assert page.is_hidden("#order-form") and page.is_visible("#order-readonly")
    assert page.is_hidden("#admin-panel") and page.is_hidden("#cancel-all")
    assert page.locator("#open-orders-body button").count() == 0
    page.wait_for_selector('#ladder[data-state="live"]')


# -- market data --------------------------------------------------------------------------------------


def test_the_header_price_updates_live_and_settles_on_the_exchange_price(open_tab, stack):
    tab = trader(open_tab, stack)
    page = tab.page
    seen = {page.text_content("#last-price")}
    eventually(
        lambda: seen.add(page.text_content("#last-price")) or len(seen) >= 3,
        30,
        what="the header price changing twice without a reload",
    )
    stack.paper.pause()
    try:
        exchange = Decimal(stack.paper.get("/api/v3/ticker/price", symbol="BTCUSDT").json()["price"])
        eventually(
            lambda: Decimal(page.text_content("#last-price")) == exchange,
            10,
            what="the header showing the exchange's last price",
        )
        assert page.text_content("#high-24h") != "–" and "BTC" in page.text_content("#volume-24h")
    finally:
        stack.paper.resume()


def test_the_chart_holds_at_least_100_candles_and_adds_live_ones(open_tab, stack):
    tab = trader(open_tab, stack)
    page = tab.page
    page.wait_for_function("() => Number(document.getElementById('chart').dataset.candles) >= 100")
    assert page.text_content("#chart-caption").endswith("· 1m")
    assert page.locator("#chart canvas").count() > 0
    page.click('#intervals button[data-interval="1s"]')
    page.wait_for_function("() => document.getElementById('chart-caption').textContent.endsWith('· 1s')")
    page.wait_for_function("() => Number(document.getElementById('chart').dataset.candles) >= 100")
    start = int(page.get_attribute("#chart", "data-candles"))
    # 1 s candles from the kline channel: new ones keep arriving
    page.wait_for_function(
        f"() => Number(document.getElementById('chart').dataset.candles) >= {start + 2}", timeout=20_000
    )
    assert page.get_attribute('#intervals button[data-interval="1s"]', "aria-pressed") == "true"


def ladder(tab: Tab) -> dict:
    return tab.page.evaluate("""() => {
      const side = (id) => [...document.querySelectorAll(`#${id} .level:not(.empty)`)]
        .map(r => [r.children[0].textContent, r.children[1].textContent]);
      return {asks: side('asks').reverse(), bids: side('bids'),
              state: document.getElementById('book-state').textContent};
    }""")


def test_the_depth_ladder_equals_the_exchange_book_top_20(open_tab, stack):
    tab = trader(open_tab, stack)
    tab.page.wait_for_selector('#ladder[data-state="live"]')
    stack.paper.pause()
    try:
        book = stack.paper.get("/_paper/book", symbol="BTCUSDT").json()
        expected_bids = sorted(((Decimal(p), Decimal(q)) for p, q in book["bids"]), reverse=True)[:20]
        expected_asks = sorted((Decimal(p), Decimal(q)) for p, q in book["asks"])[:20]
        assert len(expected_bids) == 20 and len(expected_asks) == 20

        def matches():
            shown = ladder(tab)
            bids = [(Decimal(p), Decimal(q)) for p, q in shown["bids"]]
            asks = [(Decimal(p), Decimal(q)) for p, q in shown["asks"]]
            return (
                bids == expected_bids and asks == expected_asks and shown["state"] == f"update {book['lastUpdateId']}"
            )

        started = time.monotonic()
        eventually(matches, BOOK_WAIT, what="the ladder equal to the exchange's top 20 levels")
        print(f"ladder matched the paused exchange book {time.monotonic() - started:.2f} s after the pause")
        spread = Decimal(expected_asks[0][0]) - Decimal(expected_bids[0][0])
        assert Decimal(tab.page.text_content("#spread").split()[-1]) == spread
    finally:
        stack.paper.resume()


def test_the_book_rules_drop_the_book_on_a_gap_until_the_next_snapshot(open_tab, stack):
    """book.js, the module the ladder uses, fed Binance's cases in the browser itself."""
    tab = open_tab()
    result = tab.page.evaluate("""async () => {
      const { OrderBook } = await import('/dashboard/js/book.js');
      const b = new OrderBook();
      const out = [];
      out.push(b.diff({U: 1, u: 2, bids: [], asks: []}));                      // no snapshot yet
      b.snapshot({lastUpdateId: 10, bids: [['100.00', '1.0'], ['99.00', '2.0']], asks: [['101.00', '1.5']]});
      out.push(b.diff({U: 5, u: 9, bids: [['100.00', '9']], asks: []}));       // older than the snapshot
      out.push(b.diff({U: 9, u: 12, bids: [['100.00', '0.00000000']], asks: [['102.00', '3']]}));  // straddles 11
      out.push(b.diff({U: 13, u: 14, bids: [['98.00', '1']], asks: []}));      // continues
      const before = b.top(20);
      out.push(b.diff({U: 16, u: 17, bids: [['97.00', '1']], asks: []}));      // 15 is missing: a gap
      const after = {state: b.state, top: b.top(20)};
      out.push(b.diff({U: 18, u: 19, bids: [], asks: []}));                    // still waiting
      b.snapshot({lastUpdateId: 30, bids: [['96.00', '1']], asks: [['103.00', '1']]});
      out.push(b.diff({U: 31, u: 31, bids: [], asks: [['103.00', '2']]}));
      return {out, before, after, final: b.top(20), state: b.state};
    }""")
    assert result["out"] == ["gap", "old", "applied", "applied", "gap", "gap", "applied"]
    assert result["before"] == {
        "bids": [["99.00", "2.0"], ["98.00", "1"]],
        "asks": [["101.00", "1.5"], ["102.00", "3"]],
    }
    assert result["after"] == {"state": "waiting", "top": {"bids": [], "asks": []}}
    assert result["final"] == {"bids": [["96.00", "1"]], "asks": [["103.00", "2"]]} and result["state"] == "live"


# -- orders ---------------------------------------------------------------------------------------------


def test_a_limit_order_from_the_form_appears_in_open_orders_and_the_log_and_is_cancelled_from_the_page(open_tab, stack):
    tab = trader(open_tab, stack)
    page = tab.page
    price = resting_price(stack)
    # keyboard only: type the price, Tab to the quantity, Enter submits
    page.focus("#order-price")
    page.keyboard.type(price)
    page.keyboard.press("Tab")
    page.keyboard.type("0.001")
    assert page.text_content("#hint-notional").endswith("USDT")
    page.keyboard.press("Enter")
    row = page.locator('#open-orders-body tr[data-status="NEW"]').filter(has_text=f"{Decimal(price):.2f}")
    row.wait_for(timeout=15_000)
    order_id = int(row.get_attribute("data-order-id"))
    assert paper_order(stack, order_id)["status"] == "NEW"
    assert int(page.text_content("#open-count")) >= 1
    shown_price = re.escape(format(Decimal(price).normalize(), "f"))
    wait_event(tab, rf"BUY LIMIT 0\.001 BTCUSDT @ {shown_price} — NEW .*\(#{order_id}\)")

    open_order_row(tab, order_id).get_by_role("button", name=re.compile("^Cancel BUY")).click()
    open_order_row(tab, order_id).wait_for(state="detached", timeout=15_000)
    wait_event(tab, rf"— CANCELED .*\(#{order_id}\)")
    assert paper_order(stack, order_id)["status"] == "CANCELED"
    page.click("#tab-history")
    history_row = page.locator(f'#history-body tr[data-order-id="{order_id}"]')
    history_row.wait_for()
    assert history_row.get_attribute("data-status") == "CANCELED"


def test_a_rejected_order_shows_the_api_message_at_the_field_it_names(open_tab, stack):
    tab = trader(open_tab, stack)
    page = tab.page
    before = api(stack, "GET", "/api/v1/openOrders").json()["data"]
    cases = [  # (field, price, quantity): what the API refuses, and where the page must say so
        ("price", "60000.001", "0.001"),  # not on the 0.01 tick
        ("quantity", "60000.00", "0.00001"),  # 0.6 USDT: under the minimum notional
    ]
    for field, price, quantity in cases:
        answer = api(
            stack,
            "POST",
            "/api/v1/order",
            json={"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "price": price, "quantity": quantity},
        )
        assert answer.status_code == 400 and answer.json()["error"]["details"]["field"] == field
        message = answer.json()["error"]["message"]
        page.fill("#order-price", price)
        page.fill("#order-quantity", quantity)
        assert page.locator(f"#hint-{field if field == 'price' else 'notional'}.warn").count() == 1  # hinted first
        page.click("#order-submit")
        page.wait_for_function(f"() => document.getElementById('error-{field}').textContent === {json.dumps(message)}")
        assert page.get_attribute(f"[name={field}]", "aria-invalid") == "true"
        assert page.evaluate("document.activeElement.name") == field
        other = "quantity" if field == "price" else "price"
        assert page.text_content(f"#error-{other}") == ""
    # nothing was placed
    assert api(stack, "GET", "/api/v1/openOrders").json()["data"] == before


def test_account_events_missed_while_the_socket_was_down_arrive_after_it_reconnects(open_tab, stack):
    """The page resumes `user` with lastEventId: an order placed over REST while its socket was down
    still reaches its event log (and its open orders)."""
    state = {"block": False, "blocked": 0, "subscribes": []}

    def route(ws):
        if state["block"]:
            state["blocked"] += 1
            ws.close(code=1001, reason="network down")
            return
        server = ws.connect_to_server()

        def from_page(message):
            if '"subscribe"' in message:
                state["subscribes"].append(json.loads(message))
            server.send(message)

        ws.on_message(from_page)
        state["current"] = ws

    tab = open_tab(setup=lambda page: page.route_web_socket(re.compile(r"/ws$"), route))
    sign_in_with_token(tab, stack.web.token("trader", sub="alice"))
    wait_live(tab)
    first = stack.place_limit()  # an event before the drop gives the page an id to resume from
    wait_event(tab, rf"— NEW .*\(#{first['orderId']}\)")
    last_id = tab.page.evaluate("sessionStorage.getItem('spotgate.lastEventId')")
    assert last_id

    state["block"] = True
    state["current"].close(code=1001, reason="network down")
    tab.page.wait_for_selector('#conn-state[data-state="reconnecting"]')
    second = stack.place_limit()
    stack.cancel(first)
    # the outage lasts until the page has retried (and failed) twice
    # (wait_for_timeout, not sleep: Playwright runs the route handler only while the test calls into it)
    eventually(
        lambda: tab.page.wait_for_timeout(50) or state["blocked"] >= 2,
        15,
        what="the page retrying while the network is down",
    )
    state["block"] = False
    tab.page.wait_for_selector('#conn-state[data-state="restored"], #conn-state[data-state="live"]', timeout=30_000)
    wait_event(tab, rf"— NEW .*\(#{second['orderId']}\)")
    wait_event(tab, rf"— CANCELED .*\(#{first['orderId']}\)")
    open_order_row(tab, second["orderId"]).wait_for()
    assert open_order_row(tab, first["orderId"]).count() == 0
    resumed = [s for s in state["subscribes"] if "user" in s["channels"]][-1]
    assert event_id(resumed["lastEventId"]) >= event_id(last_id)
    stack.cancel(second)


def test_an_order_placed_while_open_orders_are_being_read_is_not_lost_to_the_older_answer(open_tab, stack):
    """The page reads open orders again (here: the trader picks another symbol) while an order is placed
    elsewhere; the answer, read before the order existed, arrives after its executionReport. The order
    stays in open orders: an older read never wipes out a newer event."""
    tab = trader(open_tab, stack)
    page = tab.page
    held: list = []

    def hold(route):
        if held:
            route.continue_()
        else:
            held.append((route, route.fetch()))  # the first read's answer as it was then, fulfilled later

    page.route("**/api/v1/openOrders*", hold)
    page.select_option("#symbol", "ETHUSDT")
    # (wait_for_timeout, not sleep: Playwright runs the route handler only while the test calls into it)
    eventually(lambda: page.wait_for_timeout(50) or held, 15, what="the page reading open orders")
    order = stack.place_limit()
    try:
        wait_event(tab, rf"— NEW .*\(#{order['orderId']}\)")
        route, stale = held[0]
        envelope = stale.json()
        assert all(o["orderId"] != order["orderId"] for o in envelope["data"]), "the read was not older"
        sentinel = {**order, "orderId": 1, "clientOrderId": "stale-read-sentinel", "updateTime": 1}
        envelope["data"].append(sentinel)
        route.fulfill(response=stale, json=envelope)
        open_order_row(tab, 1).wait_for(timeout=15_000)  # the older answer has been laid out
        assert open_order_row(tab, order["orderId"]).is_visible()
    finally:
        stack.cancel(order)
    open_order_row(tab, order["orderId"]).wait_for(state="detached", timeout=15_000)


def test_reads_refused_for_a_spent_weight_budget_are_made_again_after_the_retry_after(open_tab, stack):
    """The page's first klines and open-orders reads are answered 429 UPSTREAM_BUDGET_SPENT (as the
    gateway answers when market data has spent its share of the minute's weight): the page says it
    waits, reads again after the Retry-After, and fills the chart and open orders by itself."""
    order = stack.place_limit()
    calls = {"klines": 0, "openOrders": 0}

    def spent_once(name):
        def handle(route):
            calls[name] += 1
            if calls[name] > 1:
                return route.continue_()
            route.fulfill(
                status=429,
                headers={"Retry-After": "1", "Content-Type": "application/json"},
                body=json.dumps(
                    {
                        "error": {
                            "code": "UPSTREAM_BUDGET_SPENT",
                            "message": "Upstream request-weight budget for this minute is spent",
                            "details": {"usedWeight": 4320, "limit": 4320},
                        },
                        "requestId": "test",
                        "timestamp": int(time.time() * 1000),
                    }
                ),
            )

        return handle

    def setup(page):
        page.route("**/api/v1/klines*", spent_once("klines"))
        page.route("**/api/v1/openOrders*", spent_once("openOrders"))

    tab = open_tab(setup=setup)
    sign_in_with_token(tab, stack.web.token("trader", sub="alice"))
    page = tab.page
    try:
        page.wait_for_function("() => Number(document.getElementById('chart').dataset.candles) >= 100")
        open_order_row(tab, order["orderId"]).wait_for(timeout=15_000)
        assert calls["klines"] >= 2 and calls["openOrders"] >= 2
        waits = event_texts(tab, kind="error")
        waited = [t for t in waits if t.startswith("orders: Upstream request-weight budget")]
        assert any("retrying in 1 s" in t for t in waited), waits
        assert "candles" in page.text_content("#chart-caption")
    finally:
        stack.cancel(order)


# -- admin ---------------------------------------------------------------------------------------------


def test_an_admin_sets_risk_limits_and_engages_the_kill_switch_after_confirming(open_tab, stack):
    tab = trader(open_tab, stack, sub="ops", role="admin")
    page = tab.page
    try:
        page.wait_for_selector("#admin-panel:not([hidden])")
        # a risk limit set on the page refuses the next order, with the API's message on the form
        page.fill("#limit-notional", "10")
        page.click("#limits-form button[type=submit]")
        page.wait_for_function("() => document.getElementById('limits-outcome').textContent.startsWith('saved')")
        assert api(stack, "GET", "/api/v1/risk/limits", role="admin").json()["data"]["maxOrderNotional"] == "10"
        page.fill("#order-price", "60000.00")
        page.fill("#order-quantity", "0.001")
        page.click("#order-submit")
        page.wait_for_function("() => document.getElementById('error-form').dataset.code === 'RISK_MAX_NOTIONAL'")
        assert "exceeds the limit 10" in page.text_content("#error-form")
        page.fill("#limit-notional", "")
        page.click("#limits-form button[type=submit]")
        eventually(
            lambda: api(stack, "GET", "/api/v1/risk/limits", role="admin").json()["data"]["maxOrderNotional"] is None,
            10,
            what="the limit cleared",
        )

        order = stack.place_limit()  # placed elsewhere: the page learns of it from the user channel
        open_order_row(tab, order["orderId"]).wait_for(timeout=15_000)
        page.click("#kill-toggle")
        page.wait_for_selector("#confirm[open]")
        page.click("#confirm-cancel")  # nothing happens without the confirmation
        page.wait_for_selector("#confirm", state="hidden")
        assert page.get_attribute("#kill-state", "data-engaged") == "false"
        assert api(stack, "GET", "/api/v1/admin/kill-switch", role="admin").json()["data"]["engaged"] is False

        page.click("#kill-toggle")
        page.fill("#confirm-reason", "browser test")
        page.click("#confirm-ok")
        page.wait_for_selector('#kill-state[data-engaged="true"]', timeout=30_000)
        assert "browser test" in page.text_content("#kill-state")
        open_order_row(tab, order["orderId"]).wait_for(state="detached", timeout=15_000)
        assert paper_order(stack, order["orderId"])["status"] == "CANCELED"
        page.fill("#order-price", resting_price(stack))
        page.fill("#order-quantity", "0.001")
        page.click("#order-submit")
        page.wait_for_function("() => document.getElementById('error-form').dataset.code === 'KILL_SWITCH_ENGAGED'")

        page.click("#kill-toggle")
        page.click("#confirm-ok")
        page.wait_for_selector('#kill-state[data-engaged="false"]')
    finally:
        api(stack, "POST", "/api/v1/admin/kill-switch", role="admin", json={"engaged": False})
        api(stack, "PUT", "/api/v1/risk/limits", role="admin", json={})


# -- the feed behind the page ---------------------------------------------------------------------------


def test_stopping_the_stream_relay_turns_the_indicator_to_reconnecting_and_restarting_it_back_to_live(open_tab, stack):
    tab = trader(open_tab, stack)
    page = tab.page
    stack.stop_relay()
    try:
        page.wait_for_selector('#conn-state[data-state="reconnecting"]', timeout=30_000)
        page.wait_for_function(
            "() => document.getElementById('sys-relay').textContent.startsWith('not running')", timeout=30_000
        )
        wait_event(tab, "^reconnecting", kind="connection")
        silent_since = page.text_content("#sys-last-message")
    finally:
        stack.start_relay(STREAM_SYMBOLS="BTCUSDT")
    page.wait_for_selector('#conn-state[data-state="restored"], #conn-state[data-state="live"]', timeout=60_000)
    page.wait_for_selector('#conn-state[data-state="live"]', timeout=30_000)
    assert page.text_content("#sys-relay").startswith("running")
    assert page.text_content("#sys-last-message") != silent_since
    eventually(stack.user_stream_ready, 30, what="the user stream subscribed again")


# -- how it looks ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_screenshots_at_desktop_and_phone_sizes(open_tab, stack, artifacts, scheme):
    for name, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        tab = trader(open_tab, stack, sub="ops", role="admin", viewport=viewport, color_scheme=scheme)
        page = tab.page
        assert page.get_attribute("html", "data-theme") == scheme
        order = stack.place_limit()  # something in open orders and in the event log
        try:
            page.wait_for_selector('#ladder[data-state="live"]')
            page.wait_for_function("() => Number(document.getElementById('chart').dataset.candles) >= 100")
            open_order_row(tab, order["orderId"]).wait_for(timeout=15_000)
            wait_event(tab, rf"— NEW .*\(#{order['orderId']}\)")
            page.wait_for_function("() => !document.getElementById('sys-workers').textContent.startsWith('–')")
            # nothing sticks out sideways: the page fits the screen's width
            assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
            # two more frames: the chart's canvas has drawn what the last messages brought
            page.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
            page.screenshot(path=artifacts / f"dashboard-{name}-{scheme}.png")
            page.screenshot(path=artifacts / f"dashboard-{name}-{scheme}-full.png", full_page=True)
        finally:
            stack.cancel(order)
