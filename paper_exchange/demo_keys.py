"""`python -m paper_exchange.demo_keys [DIR]`: make the paper exchange's demo RSA and Ed25519 key pairs.

Writes `rsa-private.pem`, `rsa-public.pem`, `ed25519-private.pem` and `ed25519-public.pem` (PKCS#8 /
SubjectPublicKeyInfo PEM, private keys unencrypted, mode 0600) into DIR (default `.run/demo-keys`),
each only when it is absent, so `make` can run it every time. They are made per clone and never
committed: a private key in a repository gets copied into places it should not be. They are demo
keys all the same — for the paper exchange only, never to be registered on Binance.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

DEFAULT_DIR = Path(".run") / "demo-keys"


def _write(path: Path, data: bytes, private: bool) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def ensure(directory: Path = DEFAULT_DIR) -> dict[str, Path]:
    """The four files, made where missing (a pair is remade whole if either half is missing)."""
    directory.mkdir(parents=True, exist_ok=True)
    files = {}
    for kind, make in (
        ("rsa", lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        ("ed25519", ed25519.Ed25519PrivateKey.generate),
    ):
        private_path, public_path = directory / f"{kind}-private.pem", directory / f"{kind}-public.pem"
        if not (private_path.exists() and public_path.exists()):
            for path in (private_path, public_path):
                path.unlink(missing_ok=True)
            key = make()
            _write(
                private_path,
                key.private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
                ),
                private=True,
            )
            _write(
                public_path,
                key.public_key().public_bytes(
                    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
                ),
                private=False,
            )
        files[f"{kind}_private"], files[f"{kind}_public"] = private_path, public_path
    return files


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    for name, path in ensure(Path(args[0]) if args else DEFAULT_DIR).items():
        print(f"{name}: {path}")


if __name__ == "__main__":
    main()
