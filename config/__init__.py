"""Configuration: one Settings object from the environment, and logging setup."""

from config.logging import SecretRedactingFilter, setup_logging
from config.settings import Settings

__all__ = ["SecretRedactingFilter", "Settings", "setup_logging"]
