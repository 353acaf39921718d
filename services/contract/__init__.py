"""The contract between the web, worker and relay processes: Redis keys and channels (keys.py)."""
