"""`python -m app.serve [sanic options]`: the web process as the Procfile starts it (Sanic's CLI on
`app:create_app --factory`), safe to stop with a dyno-wide SIGTERM when it runs several workers.

With `--workers N` Sanic's main process first starts a multiprocessing manager (a helper process that
holds the workers' states) and only then installs its own SIGTERM handler. Heroku signals every
process of a dyno at once: the helper died of that SIGTERM before the main process could read from it,
and the main process exited 1 ("Broken pipe") instead of 0. Ignoring SIGTERM until Sanic installs its
handler makes the helper inherit "ignore" (it is stopped by the main process, as Sanic intends); the
workers, started after, install their own handlers.
"""

from __future__ import annotations

import signal
import sys

from sanic.__main__ import main

if __name__ == "__main__":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sys.argv = ["sanic", "app:create_app", "--factory", *sys.argv[1:]]
    main()
