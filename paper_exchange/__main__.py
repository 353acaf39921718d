"""`python -m paper_exchange --port 8900 [--seed N]`: run the paper exchange on loopback."""

from __future__ import annotations

import argparse
import logging

from .config import PaperConfig
from .server import create_app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m paper_exchange", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8900)
    parser.add_argument("--seed", type=int, default=None, help="random seed (default PAPER_SEED or 0)")
    args = parser.parse_args(argv)
    config = PaperConfig.from_env(host=args.host, port=args.port, seed=args.seed)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s paper %(message)s")
    logging.getLogger("paper_exchange").info(
        "paper exchange on http://%s:%d (seed %d, demo key %s…)",
        config.host,
        config.port,
        config.seed,
        config.api_key[:8],
    )
    for kind, key, path in (
        ("RSA", config.rsa_api_key, config.rsa_public_key_file),
        ("Ed25519", config.ed25519_api_key, config.ed25519_public_key_file),
    ):
        if path:
            logging.getLogger("paper_exchange").info("%s key %s… registered (public key %s)", kind, key[:8], path)
        else:
            logging.getLogger("paper_exchange").info(
                "no %s key: set PAPER_%s_PUBLIC_KEY_FILE (or run `make demo-keys`)", kind, kind.upper()
            )
    app = create_app(config)
    app.run(host=config.host, port=config.port, single_process=True, motd=False, access_log=False)


if __name__ == "__main__":
    main()
