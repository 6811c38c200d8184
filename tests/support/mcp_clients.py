"""The MCP server under test, reached with the SDK's own client: over stdio (a `python -m core mcp`
subprocess) or over streamable HTTP (the server's ASGI app under uvicorn on a free loopback port, in
this process, so a test can hold the desk and its clock). The bench uses these too."""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
import time
from pathlib import Path

import httpx2
import uvicorn
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.types import Implementation

from core.mcp.desk import Desk
from core.mcp.server import build_server

ROOT = Path(__file__).resolve().parents[2]
WORLD = {"symbol": "AMZN", "as_of": "2025-03-04 10:00", "price": 185, "sma5": 183, "sma10": 180}
"""The caller's world of the scripted exchanges: no market data needed."""


def entry(take_profit: float, *, size: float = 0.03, symbol: str = "AMZN") -> dict:
    """A long entry at 185 with its stop at 183: a target of 188 is R/R 1.5, 187 is 1.0."""
    return {"action_type": "enter_long", "symbol": symbol, "size_pct": size, "entry_price": 185.0,
            "stop_loss": 183.0, "take_profit": take_profit}


def proposal(take_profit: float, reasoning: str | None = None, **kw) -> dict:
    return {"reasoning": reasoning or f"Long AMZN at 185.00, stop 183.00, target {take_profit:.2f}.",
            "actions": [entry(take_profit, **kw)]}


THIN, FIXED = proposal(187.0), proposal(190.0)
"""Round 1 (min_risk_reward 1.00 < 1.50: REJECT) and round 2 (2.50: APPROVE) of the scripted Player."""


def me(name: str) -> Implementation:
    return Implementation(name=name, version="1.0")


def stdio_client(db: Path, name: str = "scripted-player", *options: str) -> Client:
    """A client of `python -m core mcp --db db` started as a subprocess (stdio)."""
    params = StdioServerParameters(command=sys.executable, args=["-m", "core", "mcp", "--db", str(db), *options],
                                   cwd=str(ROOT))
    return Client(params, client_info=me(name))


def http_client(url: str, name: str = "scripted-player", token: str | None = None, mode: str = "auto") -> Client:
    """A client of the server at `url`, carrying `token` as a bearer token when given; `mode` "legacy" speaks
    the protocol of before 2026 (an initialize handshake and a session), as many agents still do."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    transport = streamable_http_client(url, http_client=httpx2.AsyncClient(headers=headers, timeout=30))
    return Client(transport, client_info=me(name), mode=mode)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def serve_http(desk: Desk, token: str | None = None):
    """Serve `desk` over streamable HTTP on 127.0.0.1 in a thread; yields the endpoint URL."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    app = build_server(desk, token=token, url=url).streamable_http_app(host="127.0.0.1")
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:  # waiting on the server's own readiness flag, not a fixed time
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the MCP HTTP server did not start")
        time.sleep(0.01)
    try:
        yield f"{url}/mcp"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self):
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now
