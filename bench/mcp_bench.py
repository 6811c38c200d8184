"""The Coach over MCP, timed from the outside with the SDK's own client.

* a `check_proposal` round trip over stdio (a `python -m core mcp` subprocess) and over streamable
  HTTP (the server under uvicorn on loopback in this process): median and p95 of CALLS calls;
* a two-round external exchange end to end over each (start_exchange, a rejected proposal, the
  revised one approved and stored): median of EXCHANGES exchanges.

Server start-up is not counted: each transport is connected first, then timed.
"""

from __future__ import annotations

import logging
import statistics
import tempfile
import time
from pathlib import Path

import anyio

import core
from core.mcp.desk import Desk, Limits
from tests.support.mcp_clients import FIXED, THIN, WORLD, http_client, serve_http, stdio_client

CALLS = 200
EXCHANGES = 20
UNLIMITED = Limits(consultations_per_hour=1_000_000, min_interval_s=0)


def _ms(seconds: list[float]) -> dict:
    ordered = sorted(seconds)
    return {"median_ms": round(statistics.median(ordered) * 1000, 2),
            "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))] * 1000, 2)}


async def _timed(client) -> dict:
    checks = []
    for _ in range(CALLS):
        start = time.perf_counter()
        result = await client.call_tool("check_proposal", {"proposal": THIN, "preset": "moderate"})
        checks.append(time.perf_counter() - start)
        assert not result.is_error, result.content
    exchanges = []
    for _ in range(EXCHANGES):
        start = time.perf_counter()
        opened = await client.call_tool("start_exchange", {"symbol": "AMZN", "preset": "moderate", "world": WORLD})
        exchange_id = opened.structured_content["exchange_id"]
        for step in (THIN, FIXED):
            answer = await client.call_tool("submit_proposal", {"exchange_id": exchange_id, "proposal": step})
        exchanges.append(time.perf_counter() - start)
        assert answer.structured_content["outcome"] == "APPROVE", answer.content
    return {"check_proposal": _ms(checks), "two_round_exchange": _ms(exchanges)}


async def _over_stdio(db: Path) -> dict:
    async with stdio_client(db, "bench", "--per-hour", "1000000", "--min-interval", "0") as client:
        return await _timed(client)


async def _over_http(db: Path) -> dict:
    with serve_http(Desk(core.HouseCoach, core.Store(db), UNLIMITED)) as url:
        async with http_client(url, "bench") as client:
            return await _timed(client)


def run() -> dict:
    # MCPServer sets the root logger to INFO, and httpx2 then logs every request of the bench's own client:
    # 260 lines between the figures `make bench` prints.
    logging.getLogger("httpx2").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as scratch:
        stdio = anyio.run(_over_stdio, Path(scratch) / "stdio.db")
        http = anyio.run(_over_http, Path(scratch) / "http.db")
    return {
        "check_proposal_stdio": stdio["check_proposal"], "check_proposal_http": http["check_proposal"],
        "two_round_exchange_stdio": stdio["two_round_exchange"], "two_round_exchange_http": http["two_round_exchange"],
        "calls": CALLS, "exchanges": EXCHANGES,
    }


if __name__ == "__main__":
    print(run())
