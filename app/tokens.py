"""`python -m app.tokens`: mint a JWT, or hash a password for AUTH_USERS, from the command line.

    python -m app.tokens issue --sub NAME --role trader [--ttl 30d]   prints an access token
    python -m app.tokens hash-password                                 prints scrypt$n$r$p$salt$hash

Settings come from the environment (and .env), as for the web process: the same JWT_SECRET, or
JWT_PUBLIC_KEY + JWT_PRIVATE_KEY for RS256.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from config.settings import ROLES, Settings, parse_duration

from .errors import ApiError
from .passwords import hash_password
from .token_codec import DEFAULT_ISSUED_TTL, SUBJECT_RE, Role, TokenCodec


def _duration(text: str) -> int:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _subject(text: str) -> str:
    if not SUBJECT_RE.match(text):
        raise argparse.ArgumentTypeError("must be 1-128 of A-Z a-z 0-9 . _ @ : -")
    return text


def _read_password() -> str:
    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            raise SystemExit("error: the passwords differ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise SystemExit("error: the password must not be empty")
    return password


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.tokens", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    issue = commands.add_parser("issue", help="print a signed access token")
    issue.add_argument("--sub", required=True, type=_subject, help="who the token is for")
    issue.add_argument("--role", required=True, choices=ROLES)
    issue.add_argument(
        "--ttl",
        default=DEFAULT_ISSUED_TTL,
        type=_duration,
        help=f"lifetime: 90s, 15m, 12h, 30d (default {DEFAULT_ISSUED_TTL})",
    )
    commands.add_parser("hash-password", help="read a password (prompt or stdin), print its hash for AUTH_USERS")
    args = parser.parse_args(argv)

    if args.command == "hash-password":
        print(hash_password(_read_password()))
        return 0
    try:
        codec = TokenCodec.from_settings(Settings.from_env())
        token = codec.issue(args.sub, Role.parse(args.role), args.ttl).token
    except (ValueError, ApiError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(token)
    return 0


if __name__ == "__main__":
    sys.exit(main())
