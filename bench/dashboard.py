"""The dashboard in headless Chromium: page load to the first price, and frame times while streaming.

    python bench/dashboard.py [--runs 3] [--seconds 5] [--step-ms 50] [--interval 1s]

Starts the whole stack (paper exchange with a `--step-ms` market, worker with beat, stream relay, web —
tests/e2e's System) and Debian's /usr/bin/chromium (Playwright drives it; its own browser download is
never used). Prints one JSON object:
- page_load: `first_price_ms`, navigation start → the header shows the first BTCUSDT price (a tab
  already signed in: REST symbols, klines, ticker and the WebSocket all on the way); floor in the
  same run: `signin_shown_ms`, navigation start → the sign-in form (the same page and modules, no data).
- streaming: `--seconds` windows with ticker, depth, trades and klines (`--interval`) of BTCUSDT streaming —
  WebSocket messages a second, frame intervals (requestAnimationFrame, p50/p95/p99/max), long tasks
  (> 50 ms) and the page's own draw time per frame; floor in the same run: the same frame measure on
  the idle sign-in page.
Every figure is the median of `--runs` with min and max. Needs Redis at REDIS_URL (`make bench`
provides one); traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.conftest import System  # noqa: E402
from tests.stream.conftest import eventually  # noqa: E402

CHROMIUM = os.environ.get("SPOTGATE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
VIEWPORT = {"width": 1280, "height": 800}

# Frame intervals and long tasks over `ms` milliseconds, measured in the page.
MEASURE_FRAMES = """async (ms) => {
  const frames = globalThis.spotgate?.frames;
  const before = frames ? {count: frames.frames, draw: frames.drawMs} : null;
  const longTasks = [];
  const observer = new PerformanceObserver((list) => longTasks.push(...list.getEntries().map(e => e.duration)));
  try { observer.observe({type: 'longtask'}); } catch {}
  const intervals = [];
  await new Promise((resolve) => {
    let last = null;
    const end = performance.now() + ms;
    const tick = (now) => {
      if (last !== null) intervals.push(now - last);
      last = now;
      if (now < end) requestAnimationFrame(tick); else resolve();
    };
    requestAnimationFrame(tick);
  });
  observer.disconnect();
  const drawn = frames ? {count: frames.frames - before.count, draw: frames.drawMs - before.draw} : null;
  return {intervals, longTasks, drawn};
}"""


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def spread(values: list[float], digits: int = 1) -> dict:
    return {
        "median": round(statistics.median(values), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
        "runs": len(values),
    }


def frame_summary(sample: dict) -> dict:
    intervals = sample["intervals"]
    summary = {
        "frames": len(intervals),
        "p50_ms": quantile(intervals, 0.5),
        "p95_ms": quantile(intervals, 0.95),
        "p99_ms": quantile(intervals, 0.99),
        "max_ms": max(intervals) if intervals else 0.0,
        "long_tasks": len(sample["longTasks"]),
        "long_task_ms": sum(sample["longTasks"]),
    }
    if sample.get("drawn") and sample["drawn"]["count"]:
        summary["draw_ms_per_frame"] = sample["drawn"]["draw"] / sample["drawn"]["count"]
        summary["frames_drawn"] = sample["drawn"]["count"]
    return summary


def combine(samples: list[dict]) -> dict:
    return {key: spread([s[key] for s in samples], 2) for key in samples[0]}


def signed_in_context(browser, system, token: str):
    """A tab that is already signed in: the session the page keeps in sessionStorage."""
    now = int(time.time())
    state = {"token": token, "refreshToken": None, "sub": "bench", "role": "trader", "exp": now + 3600, "iat": now}
    context = browser.new_context(viewport=VIEWPORT)
    context.add_init_script(
        f"sessionStorage.setItem('spotgate.session', {json.dumps(json.dumps(state))});"
        "localStorage.setItem('spotgate.symbol', 'BTCUSDT');"
    )
    return context


def mark(page, name: str, timeout_ms: float = 30_000) -> float:
    page.wait_for_function(f"() => performance.getEntriesByName({json.dumps(name)}).length > 0", timeout=timeout_ms)
    return page.evaluate(f"performance.getEntriesByName({json.dumps(name)})[0].startTime")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--step-ms", type=int, default=50)
    parser.add_argument("--interval", default="1s", help="the chart's candle interval while streaming")
    args = parser.parse_args()
    if not os.access(CHROMIUM, os.X_OK):
        raise SystemExit(f"no Chromium at {CHROMIUM}: `make bench` installs Debian's chromium when run as root")
    from playwright.sync_api import sync_playwright

    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    system = System(
        redis_url, seed=97, paper_env={"PAPER_STEP_MS": str(args.step_ms)}, relay_env={"STREAM_SYMBOLS": "BTCUSDT"}
    )
    try:
        eventually(system.user_stream_ready, 30, what="the user stream subscribed")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                result = measure(browser, system, args)
            finally:
                browser.close()
    finally:
        system.stop()
    print(json.dumps(result))


def measure(browser, system, args) -> dict:
    url = system.web.url + "/"
    signin, first_price, idle, streaming = [], [], [], []
    # warm-up: the web process's caches and the relay's subscriptions exist before anything is timed
    warm = signed_in_context(browser, system, system.web.token("trader", sub="bench"))
    page = warm.new_page()
    page.goto(url)
    mark(page, "spotgate:first-price", 60_000)
    warm.close()
    for _ in range(args.runs):
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        page.goto(url)
        signin.append(mark(page, "spotgate:signin-shown"))
        idle.append(frame_summary(page.evaluate(MEASURE_FRAMES, args.seconds * 1000)))
        context.close()

        context = signed_in_context(browser, system, system.web.token("trader", sub="bench"))
        page = context.new_page()
        received = {"n": 0}

        def count_frames(ws, counter=received):
            ws.on("framereceived", lambda _: counter.__setitem__("n", counter["n"] + 1))

        page.on("websocket", count_frames)
        page.goto(url)
        first_price.append(mark(page, "spotgate:first-price"))
        page.click(f'#intervals button[data-interval="{args.interval}"]')
        page.wait_for_selector('#ladder[data-state="live"]')
        page.wait_for_function(
            f"() => document.getElementById('chart-caption').textContent.endsWith('· {args.interval}')"
        )
        # one more second: the new interval's history is drawn and its channel subscribed
        page.evaluate("new Promise(r => setTimeout(r, 1000))")
        before, started = received["n"], time.monotonic()
        sample = frame_summary(page.evaluate(MEASURE_FRAMES, args.seconds * 1000))
        sample["ws_messages_per_s"] = (received["n"] - before) / (time.monotonic() - started)
        streaming.append(sample)
        context.close()
    figures = [
        {
            "id": "dashboard_first_price",
            "label": "dashboard: page load → first price",
            "unit": "ms",
            "values": [round(v, 1) for v in first_price],
            "floor": {"label": "page load → sign-in form", "values": [round(v, 1) for v in signin]},
            "target": None,
        },
        {
            "id": "dashboard_frame_p95",
            "label": "dashboard: frame interval p95 while streaming",
            "unit": "ms",
            "values": [round(s["p95_ms"], 1) for s in streaming],
            "floor": {"label": "idle sign-in page", "values": [round(s["p95_ms"], 1) for s in idle]},
            "target": None,
        },
    ]
    return {
        "figures": figures,
        "bench": "dashboard",
        "chromium": browser.version,
        "viewport": VIEWPORT,
        "paper_step_ms": args.step_ms,
        "interval": args.interval,
        "page_load": {"first_price_ms": spread(first_price), "floor_signin_shown_ms": spread(signin)},
        "streaming": {"seconds": args.seconds, "while_streaming": combine(streaming), "floor_idle_page": combine(idle)},
    }


if __name__ == "__main__":
    main()
