"""Celery tasks: thin — they take ids and primitives, re-read state and call a service."""
