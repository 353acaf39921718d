"""Binance Spot protocol: request builders, signing, errors, rate-limit state, sync + async transports.

Imports nothing of spotgate: settings are passed in, so it can be tested and reused alone.
"""

from .client import AsyncBinanceClient, BinanceClient
from .endpoints import Request
from .errors import BinanceError
from .signing import KeyType, Signer, load_signer, load_signer_file

__all__ = [
    "AsyncBinanceClient",
    "BinanceClient",
    "BinanceError",
    "KeyType",
    "Request",
    "Signer",
    "load_signer",
    "load_signer_file",
]
