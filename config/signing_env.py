"""Take the Binance signing secrets out of the environment of a process that does not sign.

Heroku (and most platforms) give every process type the same config vars, so the web and stream
processes start with BINANCE_API_SECRET in their environment. Blanking it in Settings is not enough:
`os.environ` would still hand it to any library or child process that asks, and the kernel keeps the
initial environment block for the process's whole life (what /proc/<pid>/environ shows, readable by
anything running as the same user). So the process removes the names from `os.environ` and then
re-executes itself (same pid, same argv): the new image's initial environment never held them.
"""

from __future__ import annotations

import logging
import os
import sys

log = logging.getLogger("spotgate.config")

# What only the worker (the one process that signs) may hold.
SIGNING_SECRETS = (
    "BINANCE_API_SECRET",
    "BINANCE_PRIVATE_KEY",
    "BINANCE_PRIVATE_KEY_FILE",
    "BINANCE_PRIVATE_KEY_PASSPHRASE",
)


def drop_from_environment(names: tuple[str, ...] = SIGNING_SECRETS, *, reexec: bool = True) -> None:
    """Remove `names` from os.environ; with `reexec`, restart this process image without them.

    Returns only when none of them was set, or when the re-exec failed (then os.environ is clean
    and the failure is logged: the initial environment block still holds them)."""
    present = [name for name in names if name in os.environ]
    if not present:
        return
    for name in present:
        del os.environ[name]  # also unsetenv(): children and C libraries stop seeing it
    if not reexec:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(sys.executable, sys.orig_argv, dict(os.environ))
    except OSError as exc:
        log.warning("could not re-execute without %s (%s): removed from os.environ only", ", ".join(present), exc)
