"""spotgate test suite (a package, so tests/app and tests/binance_client never shadow the real packages)."""
