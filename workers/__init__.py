"""Celery app and configuration, and the stream relay process."""
