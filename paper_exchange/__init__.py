"""Binance-compatible paper exchange: a pure matching core with thin REST and WebSocket adapters."""
