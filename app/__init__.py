"""spotgate's web tier: `sanic app:create_app --factory`. Holds the JWT secret, never a Binance key.

`create_app` lives in app/factory.py and is imported on first use, so the command-line tools in this
package (`python -m app.tokens`) start without loading Sanic and every route.
"""

from __future__ import annotations


def __getattr__(name: str):
    if name == "create_app":
        from .factory import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["create_app"]
