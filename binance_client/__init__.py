"""Binance Spot protocol: request builders, signing, errors, rate-limit state, sync + async transports.

Imports nothing of spotgate: settings are passed in, so it can be tested and reused alone.
"""

from .client import AsyncBinanceClient, BinanceClient
from .errors import BinanceError
from .endpoints import Request

__all__ = ["AsyncBinanceClient", "BinanceClient", "BinanceError", "Request"]
