"""How a web server process stops: one stop signal is enough, a second must not break the stop."""

from __future__ import annotations

import asyncio
import signal

from sanic import Sanic


def setup_lifecycle(app: Sanic) -> None:
    @app.before_server_stop
    async def ignore_further_stop_signals(app_: Sanic):
        # A dyno's SIGTERM reaches every Sanic worker directly, and the main process then asks each
        # worker to stop again (SIGINT). A second stop while the worker closes its sockets stops the
        # event loop under that cleanup ("Event loop stopped before Future completed"), and the
        # worker exits with an error. The stop is under way: later stop signals change nothing
        # (Heroku's SIGKILL 30 s after SIGTERM still ends a stuck process).
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.remove_signal_handler(sig)
            except (NotImplementedError, RuntimeError):  # no loop signal handlers (not the main thread)
                continue
            signal.signal(sig, signal.SIG_IGN)
