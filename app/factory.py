"""The web tier's app factory, `create_app` (what `sanic app:create_app --factory` calls through app/__init__)."""

from __future__ import annotations

import dataclasses

from sanic import Sanic

from config import Settings
from config.logging import setup_logging
from config.signing_env import SIGNING_SECRETS, drop_from_environment

from .auth import Role, protect, setup_auth
from .dashboard import setup_dashboard
from .docs import setup_docs
from .errors import setup_errors
from .health import setup_health
from .market import bp as market_bp, setup_market
from .metrics import setup_metrics
from .observability import setup_observability
from .orders import reads as account_reads, writes as order_writes
from .positions import bp as positions_bp
from .quotas import setup_quotas
from .resources import setup_resources
from .risk import bp as risk_bp
from .ws import setup_ws


def create_app(settings: Settings | None = None, *, name: str = "spotgate") -> Sanic:
    """The app factory only wires: one setup call per concern, each registering its own listeners.

    `name` must be unique per process (Sanic keeps a registry); tests building several apps pass their own.
    """
    if settings is not None and not isinstance(settings, Settings):
        # `sanic app:create_app --factory` passes its CLI arguments here, and would log a ValueError
        # and exit 0: a misconfigured web process must exit non-zero.
        try:
            return create_app(name=name)
        except ValueError as exc:
            raise SystemExit(f"spotgate refuses to start: {exc}") from None
    if settings is None:
        # Started as a process (sanic's --factory): it must not even hold the secret in its environment.
        drop_from_environment(("BINANCE_API_KEY", *SIGNING_SECRETS))
    settings = settings or Settings.from_env()
    setup_logging(settings.log_level, settings.secret_values(), settings.log_format)
    # The web tier never holds Binance credentials, whatever the environment offers it.
    settings = dataclasses.replace(
        settings,
        binance_api_key="",
        binance_api_secret="",
        binance_private_key_file=None,
        binance_private_key_passphrase=None,
    )
    # Sanic's own handlers would print its lines a second time, in another format: every logger
    # propagates to the one handler setup_logging installed.
    app = Sanic(name, configure_logging=False)
    app.ctx.settings = settings
    setup_metrics(app)  # GET /metrics; this process's metrics (multiprocess under --workers N)
    setup_resources(app)  # Redis, the Binance client, the weight budget (opened at start)
    setup_quotas(app)  # upstream weight charged per client (token subject, or IP)
    setup_observability(app)  # request ids, access log, HTTP metrics, CORS
    setup_errors(app)  # the error envelope
    setup_docs(app)  # OpenAPI at /docs
    setup_auth(app)  # /api/v1/auth/*, JWT verification
    protect(market_bp, Role.VIEWER)
    setup_market(app)  # /api/v1 market data
    protect(account_reads, Role.VIEWER)
    protect(order_writes, Role.TRADER)
    app.blueprint(account_reads)  # /api/v1 orders, jobs, account (signed work runs in workers)
    app.blueprint(order_writes)
    protect(positions_bp, Role.VIEWER)
    app.blueprint(positions_bp)  # /api/v1/positions (average entry and P&L from trades, valued in USDT)
    protect(risk_bp, Role.ADMIN)
    app.blueprint(risk_bp)  # /api/v1/risk/limits, /api/v1/admin/kill-switch
    setup_health(app)  # /health, /health/ready, /api/v1/status
    setup_ws(app)  # /ws WebSocket API and the per-process Redis fan-out hub
    setup_dashboard(app)  # the trading page at / (static ES modules, public; its API calls carry the token)
    return app
