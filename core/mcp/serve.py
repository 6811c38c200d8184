"""`python -m core mcp`: serve the Coach over stdio (the default) or streamable HTTP.

Off loopback the server needs `--token`: anyone who can reach the port could otherwise spend the
Coach's key and fill the database, so every HTTP request must carry the token as a bearer token.
"""

from __future__ import annotations

import ipaddress
import os

from core.exchange.errors import InvalidInput
from core.exchange.house import HouseCoach
from core.journal.options import db_path
from core.journal.store import Store
from core.mcp.desk import Desk, Limits

KEY_ENV = "ANTHROPIC_API_KEY"
TOKEN_ENV = "PLAYER_COACH_MCP_TOKEN"
"""Where the bearer token may come from instead of --token, which every user of the machine can read in `ps`."""
LOOPBACK_NAMES = ("localhost",)


def add_parser(sub) -> None:
    """The `mcp` command and its options."""
    defaults = Limits()
    p = sub.add_parser("mcp", help="serve the Coach over MCP: an outside agent plays the Player (stdio by default)")
    p.add_argument("--http", metavar="HOST:PORT", help="serve streamable HTTP at http://HOST:PORT/mcp instead of stdio")
    p.add_argument("--token", default=os.environ.get(TOKEN_ENV) or None,
                   help=f"bearer token every HTTP request must carry (required off loopback; default ${TOKEN_ENV})")
    p.add_argument("--coach", choices=("house", "claude"), default="house",
                   help=f"the Coach; claude needs {KEY_ENV} in the environment")
    p.add_argument("--db", type=db_path, help="store the exchanges in this SQLite file (default: the app's)")
    p.add_argument("--max-open", type=int, default=defaults.open_exchanges, help="open exchanges per client")
    p.add_argument("--per-hour", type=int, default=defaults.consultations_per_hour,
                   help="consultations per client per hour (check, start, submit, challenge)")
    p.add_argument("--min-interval", type=float, default=defaults.min_interval_s,
                   help="seconds between two consultations of one client")
    p.add_argument("--timeout", type=float, default=defaults.open_timeout_s,
                   help="seconds an exchange may wait for its next proposal before it ends INTERRUPTED")
    p.set_defaults(run=run)


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidInput(f"--http: expected HOST:PORT such as 127.0.0.1:8765, got {text[:80]!r}")
    return host, int(port)


def is_loopback(host: str) -> bool:
    """Whether `host` names this machine only (127.0.0.0/8, ::1, localhost): no one else can connect."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _coach_factory(choice: str):
    if choice == "house":
        return HouseCoach
    key = os.environ.get(KEY_ENV, "")
    if not key:
        raise InvalidInput(f"--coach claude: set {KEY_ENV} in the server's environment")
    from core.claude.agents import ClaudeCoach

    return lambda: ClaudeCoach(api_key=key)


def run(args) -> int:
    from core.mcp.server import build_server

    for name in ("max_open", "per_hour"):
        if getattr(args, name) < 1:
            raise InvalidInput(f"--{name.replace('_', '-')}: must be at least 1, got {getattr(args, name)}")
    if args.min_interval < 0 or args.timeout <= 0:
        raise InvalidInput("--min-interval must be 0 or more and --timeout more than 0")
    limits = Limits(open_exchanges=args.max_open, consultations_per_hour=args.per_hour,
                    min_interval_s=args.min_interval, open_timeout_s=args.timeout)
    desk = Desk(_coach_factory(args.coach), Store(args.db) if args.db else Store(), limits)
    if not args.http:
        build_server(desk).run("stdio")
        return 0
    host, port = _address(args.http)
    if not is_loopback(host) and not args.token:
        raise InvalidInput(f"--http {host}: serving beyond this machine needs --token (a bearer token every "
                           "request must carry); see the README")
    url = f"http://{host}:{port}"
    build_server(desk, token=args.token, url=url).run("streamable-http", host=host, port=port)
    return 0
