"""The Coach as an MCP server, played from outside with the SDK's own client over stdio and HTTP."""

from __future__ import annotations

import contextlib
from functools import partial

import anyio
import httpx2
import pytest

import core
from core.exchange.agent import Turn
from core.mcp.desk import Desk, Limits
from tests.support.mcp_clients import FIXED, THIN, WORLD, Clock, http_client, proposal, serve_http, stdio_client

pytestmark = pytest.mark.anyio
TRANSPORTS = ["stdio", "http"]
OPEN_LIMITS = Limits(min_interval_s=0)


@pytest.fixture
def anyio_backend():
    return "asyncio"


@contextlib.asynccontextmanager
async def connected(transport: str, db, name: str = "scripted-player", limits: Limits = OPEN_LIMITS):
    """A client of a fresh server over `transport`, storing in `db`, with `limits`."""
    if transport == "stdio":
        options = ["--max-open", str(limits.open_exchanges), "--per-hour", str(limits.consultations_per_hour),
                   "--min-interval", str(limits.min_interval_s), "--timeout", str(limits.open_timeout_s)]
        async with stdio_client(db, name, *options) as client:
            yield client
    else:
        with serve_http(Desk(core.HouseCoach, core.Store(db), limits)) as url:
            async with http_client(url, name) as client:
                yield client


async def call(client, tool: str, **arguments) -> dict:
    """A tool's structured answer; a tool error fails the test with its message."""
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content[0].text
    return result.structured_content


async def refused(client, tool: str, **arguments) -> str:
    """The one-line message of a tool error (and that it is one)."""
    result = await client.call_tool(tool, arguments)
    assert result.is_error, result.structured_content
    message = result.content[0].text
    assert "\n" not in message and len(message) < 500, message
    assert "Traceback" not in message and "Error executing tool" not in message, message
    return message


async def start(client, **extra) -> dict:
    return await call(client, "start_exchange", symbol="AMZN", preset="moderate", world=WORLD, **extra)


class ScriptedPlayer:
    """The same two proposals, played in this process: what run_exchange stores for them."""

    name = "scripted"

    def __init__(self, *proposals: dict):
        self.proposals = list(proposals)

    def propose(self, world, constraints, portfolio, history):
        yield ""
        return Turn(core.Proposal.model_validate(self.proposals[len(history)]))


def comparable(artifact: core.Artifact) -> dict:
    """An artifact without what differs between two runs of the same rounds: ids, clocks, agent names."""
    data = artifact.model_dump(mode="json", exclude={"run_id", "timestamp", "agents"})
    for record in data["rounds"]:
        record.pop("latency_ms")
    return data


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_an_outside_player_is_rejected_revises_and_is_approved(transport, tmp_path):
    db = tmp_path / "mcp.db"
    async with connected(transport, db) as client:
        opened = await start(client)
        assert opened["open"] and opened["max_rounds"] == 3 and opened["world"]["symbol"] == "AMZN"
        first = await call(client, "submit_proposal", exchange_id=opened["exchange_id"], proposal=THIN)
        assert (first["decision"], first["violations"], first["another_round_allowed"]) == (
            "REJECT", ["min_risk_reward"], True)
        assert "1.00 < 1.50 FAIL" in first["critique"] and first["rounds_left"] == 2
        assert first["reasoning_check"]["score"] == 1.0
        second = await call(client, "submit_proposal", exchange_id=opened["exchange_id"], proposal=FIXED)
        assert (second["decision"], second["outcome"], second["another_round_allowed"]) == ("APPROVE", "APPROVE", False)
        shown = await call(client, "get_exchange", exchange_id=opened["exchange_id"])
        listed = await call(client, "history", outcome="APPROVE", since="2025-03-04", until="2025-03-04",
                            dates_by="market")
        assert (await call(client, "history", since="2025-03-05", dates_by="market"))["exchanges"] == []
        mine = await call(client, "history", player="external: scripted-player 1.0")
        assert [row["run_id"] for row in mine["exchanges"]] == [opened["exchange_id"]]
        assert (await call(client, "history", player="house-player"))["exchanges"] == []
    stored = core.Store(db).get_exchange(opened["exchange_id"])
    assert shown == stored.model_dump(mode="json")
    assert stored.agents.player == "external: scripted-player 1.0"
    assert [row["player"] for row in listed["exchanges"]] == ["external: scripted-player 1.0"]
    reference = core.Store(tmp_path / "reference.db")
    core.run_exchange_sync(core.WorldState(**WORLD), core.load_preset("moderate"), core.Portfolio(),
                           ScriptedPlayer(THIN, FIXED), core.HouseCoach(), store=reference)
    assert comparable(stored) == comparable(reference.get_exchange(reference.list_exchanges()[0]["run_id"]))
    replayed = list(core.replay_exchange(stored))  # History's Replay
    assert isinstance(replayed[-1], core.ExchangeFinished) and replayed[-1].artifact.outcome == "APPROVE"


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_reject_max_after_max_rounds_and_no_round_after(transport, tmp_path):
    async with connected(transport, tmp_path / "mcp.db") as client:
        opened = await start(client)
        answers = [await call(client, "submit_proposal", exchange_id=opened["exchange_id"], proposal=THIN)
                   for _ in range(3)]
        assert [a["another_round_allowed"] for a in answers] == [True, True, False]
        assert (answers[-1]["outcome"], answers[-1]["termination_reason"]) == ("REJECT-MAX", "max_rounds")
        message = await refused(client, "submit_proposal", exchange_id=opened["exchange_id"], proposal=FIXED)
    assert "is closed (REJECT-MAX, max_rounds)" in message


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_breaker_aborts_at_start_exchange(transport, tmp_path):
    db = tmp_path / "mcp.db"
    async with connected(transport, db) as client:
        opened = await start(client, portfolio={"equity": 85_000, "peak_equity": 100_000})
        assert (opened["open"], opened["outcome"], opened["termination_reason"]) == (False, "ABORT", "mll_breached")
        assert "85,000" in opened["breaker_detail"] or "85000" in opened["breaker_detail"]
        message = await refused(client, "submit_proposal", exchange_id=opened["exchange_id"], proposal=FIXED)
    assert "closed (ABORT, mll_breached)" in message
    assert core.Store(db).get_exchange(opened["exchange_id"]).rounds_taken == 0


async def test_two_clients_at_once_keep_their_exchanges_apart(tmp_path):
    store = core.Store(tmp_path / "mcp.db")
    with serve_http(Desk(core.HouseCoach, store, OPEN_LIMITS)) as url:
        async with http_client(url, "alpha") as alpha, http_client(url, "beta") as beta:
            mine, theirs = await start(alpha), await start(beta)
            message = await refused(beta, "submit_proposal", exchange_id=mine["exchange_id"], proposal=FIXED)
            assert "belongs to another client" in message
            async with anyio.create_task_group() as both:  # both play at once
                both.start_soon(partial(call, alpha, "submit_proposal", exchange_id=mine["exchange_id"], proposal=FIXED))
                both.start_soon(partial(call, beta, "submit_proposal", exchange_id=theirs["exchange_id"], proposal=THIN))
    assert store.get_exchange(mine["exchange_id"]).agents.player == "external: alpha 1.0"
    assert store.get_exchange(mine["exchange_id"]).outcome == "APPROVE"
    assert store.get_exchange(theirs["exchange_id"]).agents.player == "external: beta 1.0"
    assert store.get_exchange(theirs["exchange_id"]).rounds_taken == 1


async def test_rate_limits_refuse_with_a_clear_message(tmp_path):
    clock = Clock()
    desk = Desk(core.HouseCoach, core.Store(tmp_path / "mcp.db"),
                Limits(open_exchanges=1, consultations_per_hour=3, min_interval_s=5), clock=clock)
    with serve_http(desk) as url:
        async with http_client(url) as client:
            await call(client, "check_proposal", proposal=FIXED)
            assert "too fast: at least 5 s between consultations" in await refused(
                client, "check_proposal", proposal=FIXED)
            clock.now += 5
            opened = await start(client)
            clock.now += 5
            assert "open exchanges: this client already has 1" in await refused(client, "start_exchange",
                                                                               symbol="AMZN", world=WORLD)
            clock.now += 5
            await call(client, "submit_proposal", exchange_id=opened["exchange_id"], proposal=THIN)
            clock.now += 5
            assert "rate limit: 3 consultations per hour" in await refused(client, "check_proposal", proposal=FIXED)
            clock.now += 3600
            await call(client, "check_proposal", proposal=FIXED)


def test_the_server_bounds_open_exchanges_across_clients(tmp_path):
    desk = Desk(core.HouseCoach, core.Store(tmp_path / "mcp.db"), Limits(open_exchanges_total=2, min_interval_s=0))
    world, moderate = core.WorldState(**WORLD), core.load_preset("moderate")
    for name in ("a 1", "b 1"):
        desk.start(name, world, moderate, core.Portfolio())
    with pytest.raises(core.InvalidInput, match="the server has 2 open"):
        desk.start("c 1", world, moderate, core.Portfolio())


async def test_rate_limit_over_stdio(tmp_path):
    async with connected("stdio", tmp_path / "mcp.db", limits=Limits(consultations_per_hour=2, min_interval_s=0)) as c:
        await call(c, "check_proposal", proposal=FIXED)
        await call(c, "check_proposal", proposal=THIN)
        assert "rate limit: 2 consultations per hour" in await refused(c, "check_proposal", proposal=FIXED)
        assert (await call(c, "get_constraints", preset="strict"))["max_open_positions"] == 1  # reading is free


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_bad_input_is_one_sentence_and_the_server_goes_on(transport, tmp_path):
    db = tmp_path / "mcp.db"
    async with connected(transport, db) as client:
        opened = await start(client)
        await call(client, "submit_proposal", exchange_id=opened["exchange_id"], proposal=THIN)
        cases = {
            "no open exchange 'nope'": dict(exchange_id="nope", proposal=FIXED),
            "proposal.actions: Field required": dict(exchange_id=opened["exchange_id"], proposal={"reasoning": "x"}),
            "proposal.actions.0.evil: Extra inputs are not permitted": dict(
                exchange_id=opened["exchange_id"], proposal={"reasoning": "x", "actions": [{**FIXED["actions"][0],
                                                                                         "evil": 1}]}),
            "proposal.actions.0.size_pct: Input should be a valid number (got 1000": dict(
                exchange_id=opened["exchange_id"], proposal=proposal(190, size=10 ** 400)),
            "proposal.actions.0.size_pct: Input should be a valid number (got '0.03')": dict(
                exchange_id=opened["exchange_id"], proposal=proposal(190, size="0.03")),
            "proposal.reasoning: Input should be a valid string": dict(
                exchange_id=opened["exchange_id"], proposal={"reasoning": {"a": [1]}, "actions": FIXED["actions"]}),
            "no open exchange 'xxxxxxxx": dict(exchange_id="x" * 100_000, proposal=FIXED),
            "proposal.reasoning: 100,000 characters; at most 20,000": dict(
                exchange_id=opened["exchange_id"], proposal=proposal(190, reasoning="x" * 100_000)),
        }
        for expected, arguments in cases.items():
            assert expected in await refused(client, "submit_proposal", **arguments)
        assert "unknown preset 'nope'" in await refused(client, "start_exchange", symbol="AMZN", preset="nope")
        assert "give as_of or world, not both" in await refused(client, "start_exchange", symbol="AMZN",
                                                                 world=WORLD, as_of="2025-03-04")
        assert "outcome: 'WIN' is not one of" in await refused(client, "history", outcome="WIN")
        assert "strategy: 1,000 characters; at most 64" in await refused(client, "start_exchange", symbol="AMZN",
                                                                        world=WORLD, strategy="s" * 1000)
        # The exchange the bad calls aimed at is untouched: it still plays its next round.
        last = await call(client, "submit_proposal", exchange_id=opened["exchange_id"], proposal=FIXED)
        assert (last["round"], last["outcome"]) == (2, "APPROVE")
    assert core.Store(db).get_exchange(opened["exchange_id"]).rounds_taken == 2


async def test_hostile_json_is_refused_by_the_protocol_layer_and_the_server_goes_on(tmp_path):
    store = core.Store(tmp_path / "mcp.db")
    with serve_http(Desk(core.HouseCoach, store, OPEN_LIMITS)) as url:
        headers = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
        bodies = ["{not json", "[" * 100_000 + "]" * 100_000, '{"jsonrpc": "2.0", "id": 1, "method": NaN}',
                  '{"jsonrpc": "2.0", "id": 1, "id": 2, "method": "tools/call", "params": ' + "9" * 5000 + "}",
                  "\xff\xfe"]
        async with httpx2.AsyncClient(timeout=30) as raw:
            for body in bodies:
                answer = await raw.post(url, content=body.encode("latin-1"), headers=headers)
                assert 400 <= answer.status_code < 500, (answer.status_code, body[:40])
        async with http_client(url) as client:
            opened = await start(client)
    assert store.get_exchange(opened["exchange_id"]) is not None


async def test_a_client_that_disconnects_mid_exchange_leaves_it_interrupted_with_its_rounds(tmp_path):
    db = tmp_path / "mcp.db"
    async with connected("stdio", db) as client:
        opened = await start(client)
        await call(client, "submit_proposal", exchange_id=opened["exchange_id"], proposal=THIN)
    stored = core.Store(db).get_exchange(opened["exchange_id"])
    assert (stored.outcome, stored.rounds_taken) == ("INTERRUPTED", 1)
    assert stored.termination_reason == "closed: the client went away or the server stopped"
    assert stored.rounds[0].evaluation.violations == ["min_risk_reward"]


async def test_an_exchange_left_open_past_the_timeout_ends_interrupted_over_http(tmp_path):
    clock, store = Clock(), core.Store(tmp_path / "mcp.db")
    desk = Desk(core.HouseCoach, store, Limits(min_interval_s=0, open_timeout_s=600), clock=clock)
    with serve_http(desk) as url:
        async with http_client(url) as client:
            opened = await start(client)
            await call(client, "submit_proposal", exchange_id=opened["exchange_id"], proposal=THIN)
            clock.now += 601
            message = await refused(client, "submit_proposal", exchange_id=opened["exchange_id"], proposal=FIXED)
    assert "is closed (INTERRUPTED, timed out: no proposal within 600 s)" in message
    stored = store.get_exchange(opened["exchange_id"])
    assert (stored.outcome, stored.rounds_taken, desk.open_count()) == ("INTERRUPTED", 1, 0)
    assert stored.termination_reason == "timed out: no proposal within 600 s"


async def test_http_without_the_token_is_refused(tmp_path):
    with serve_http(Desk(core.HouseCoach, core.Store(tmp_path / "mcp.db"), OPEN_LIMITS), token="s3cret-t0ken") as url:
        async with httpx2.AsyncClient(timeout=30) as raw:
            for headers in ({}, {"Authorization": "Bearer wrong"}):
                answer = await raw.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
                                        headers={"accept": "application/json, text/event-stream", **headers})
                assert answer.status_code == 401
        with pytest.raises(Exception):
            async with http_client(url, token="wrong") as client:
                await client.list_tools()
        async with http_client(url, token="s3cret-t0ken") as client:
            assert (await call(client, "get_constraints"))["max_rounds"] == 3


def test_serving_beyond_loopback_needs_a_token_and_claude_a_key(capsys, monkeypatch, tmp_path):
    from core.__main__ import main

    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    assert main(["mcp", "--http", "0.0.0.0:8765", "--db", str(tmp_path / "mcp.db")]) == 3
    assert "needs --token" in capsys.readouterr().err
    monkeypatch.setenv("PLAYER_COACH_MCP_TOKEN", "from-the-environment")
    from core.__main__ import parser

    assert parser().parse_args(["mcp", "--http", "0.0.0.0:8765"]).token == "from-the-environment"
    assert main(["mcp", "--coach", "claude", "--db", str(tmp_path / "mcp.db")]) == 3
    assert "set ANTHROPIC_API_KEY in the server's environment" in capsys.readouterr().err


async def test_tools_are_typed_and_the_prompt_and_resources_are_there(tmp_path):
    async with connected("http", tmp_path / "mcp.db") as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert set(tools) == {"list_presets", "get_constraints", "check_proposal", "start_exchange",
                              "submit_proposal", "get_exchange", "history", "challenge"}
        assert all(tool.input_schema and tool.output_schema for tool in tools.values())
        assert "actions" in str(tools["submit_proposal"].input_schema)
        assert "another_round_allowed" in str(tools["submit_proposal"].output_schema)
        presets = await call(client, "list_presets")
        assert {p["name"] for p in presets["presets"]} >= {"moderate", "strict"}
        verdict = await call(client, "check_proposal", proposal=THIN, preset="moderate")
        assert verdict["decision"] == "REJECT" and any("FAIL" in c["arithmetic"] for c in verdict["checks"])
        prompt = await client.get_prompt("play_the_player")
        assert "submit_proposal" in prompt.messages[0].content.text
        strict = await client.read_resource("coach://presets/strict")
        assert '"max_open_positions": 1' in strict.contents[0].text
        returns = [0.01, -0.005, 0.004] * 20
        answer = await call(client, "challenge", profit_target_pct=0.05, preset="moderate", returns=returns, paths=500)
        assert 0 <= answer["p_pass"] <= 1 and answer["days"] == 60 and answer["rules"]["max_drawdown_pct"] == 0.1
        two_step = await call(client, "challenge", template="two_step", returns=returns, paths=500)
        assert len(two_step["rules"]["phases"]) == 2
        own = await call(client, "challenge", rules={"profit_target_pct": 0.02, "max_drawdown_pct": 0.5,
                                                     "max_daily_loss_pct": None}, returns=returns, paths=500)
        assert own["p_pass"] == 1.0
        assert "give one of template, rules, or profit_target_pct" in await refused(client, "challenge",
                                                                                   returns=returns)
        assert "max_drawdown_pct" in await refused(client, "challenge", returns=returns, rules={
            "profit_target_pct": 0.02, "max_drawdown_pct": 2, "max_daily_loss_pct": None})
    assert core.Store(tmp_path / "mcp.db").count_exchanges() == 0  # checking stores nothing


async def test_the_key_appears_in_no_tool_result_log_or_row(tmp_path, fake, key, caplog):
    from core.claude.agents import ClaudeCoach

    store = core.Store(tmp_path / "mcp.db")
    desk = Desk(lambda: ClaudeCoach(api_key=key, base_url=fake.base_url), store, OPEN_LIMITS)
    seen = []
    with serve_http(desk) as url:
        async with http_client(url) as client:
            opened = await start(client)
            for step in (THIN, FIXED):
                result = await client.call_tool("submit_proposal", {"exchange_id": opened["exchange_id"],
                                                                    "proposal": step})
                seen.append(str(result.content) + str(result.structured_content))
            seen.append(str(await client.call_tool("get_exchange", {"exchange_id": opened["exchange_id"]})))
    assert store.get_exchange(opened["exchange_id"]).agents.coach.startswith("claude")
    assert not any(key in text for text in seen + [caplog.text])
    assert not any(key.encode() in path.read_bytes() for path in tmp_path.glob("mcp.db*"))


def test_history_shows_who_played_an_external_exchange(tmp_path):
    from ui.history_view import table

    store = core.Store(tmp_path / "mcp.db")
    desk = Desk(core.HouseCoach, store, OPEN_LIMITS)
    opened = desk.start("claude-code 2.1", core.WorldState(**WORLD), core.load_preset("moderate"), core.Portfolio())
    desk.submit("claude-code 2.1", opened.run_id, core.Proposal.model_validate(FIXED))
    shown = table(store.list_exchanges())
    assert list(shown["player"]) == ["external: claude-code 2.1"] and list(shown["outcome"]) == ["APPROVE"]


def test_a_round_under_way_is_never_timed_out(tmp_path):
    import threading

    started, go_on = threading.Event(), threading.Event()

    class SlowCoach(core.HouseCoach):
        def critique(self, *args):
            started.set()
            go_on.wait(30)
            return (yield from super().critique(*args))

    clock = Clock()
    desk = Desk(SlowCoach, core.Store(tmp_path / "mcp.db"), Limits(min_interval_s=0, open_timeout_s=600), clock=clock)
    opened = desk.start("a 1", core.WorldState(**WORLD), core.load_preset("moderate"), core.Portfolio())
    played = []
    worker = threading.Thread(target=lambda: played.append(desk.submit("a 1", opened.run_id,
                                                                       core.Proposal.model_validate(THIN))))
    worker.start()
    assert started.wait(30)
    clock.now += 601
    desk.expire()  # the Coach is still speaking: this exchange is not waiting on its Player
    go_on.set()
    worker.join(30)
    assert played[0].record.evaluation.decision == "REJECT" and played[0].artifact is None
    assert desk.open_count("a 1") == 1
    clock.now += 601
    desk.expire()
    assert desk.open_count() == 0
    assert core.Store(tmp_path / "mcp.db").get_exchange(opened.run_id).outcome == "INTERRUPTED"


async def test_start_exchange_builds_the_world_from_market_data_as_trade_review_does(tmp_path):
    from datetime import date

    from ui.market_defaults import world as trade_review_world

    async with connected("http", tmp_path / "mcp.db") as client:
        opened = await call(client, "start_exchange", symbol="msft", as_of="2021-06-01")
        missing = await refused(client, "start_exchange", symbol="MSFT", as_of="1950-01-03")
    fields, _ = trade_review_world("MSFT", date(2021, 6, 1))
    world = opened["world"]
    assert world["symbol"] == "MSFT" and world["as_of"].startswith("2021-06-01T09:30")
    assert {k: round(world[k], 2) for k in ("price", "sma5", "sma10", "atr")} == {
        k: fields[k] for k in ("price", "sma5", "sma10", "atr")}
    assert missing.startswith("start_exchange: world: ") and "pass a world of your own" in missing


async def test_a_client_of_the_older_protocol_is_named_from_its_initialize_handshake(tmp_path):
    store = core.Store(tmp_path / "mcp.db")
    with serve_http(Desk(core.HouseCoach, store, OPEN_LIMITS)) as url:
        async with http_client(url, "claude-code", mode="legacy") as client:
            assert client.protocol_version < "2026"
            opened = await start(client)
            answer = await call(client, "submit_proposal", exchange_id=opened["exchange_id"], proposal=FIXED)
    assert answer["outcome"] == "APPROVE"
    assert store.get_exchange(opened["exchange_id"]).agents.player == "external: claude-code 1.0"


async def test_a_client_name_is_kept_to_one_printable_line(tmp_path):
    store = core.Store(tmp_path / "mcp.db")
    with serve_http(Desk(core.HouseCoach, store, OPEN_LIMITS)) as url:
        async with http_client(url, "evil\nname\x1b[31m" + "x" * 500) as client:
            opened = await start(client)
    assert store.get_exchange(opened["exchange_id"]).agents.player == "external: evil name [31m" + "x" * 50 + " 1.0"
