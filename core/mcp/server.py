"""The Coach as an MCP server (the official `mcp` SDK's MCPServer): tools, resources and one prompt.

An outside agent plays the Player: `start_exchange`, then `submit_proposal` once a round until the
exchange ends. Each tool's input and output schemas come from the engine's pydantic models. Bad
input is a tool error of one sentence; nothing an outside agent sends can stop the server.
"""

from __future__ import annotations

import contextlib
import hmac
import json
from datetime import date, timedelta
from typing import Any, Literal

import anyio
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import ValidationError

from core import market
from core.backtest.challenge import ChallengeRules
from core.exchange.errors import InvalidInput, PlayerCoachError
from core.exchange.presets import explain, list_presets, load_preset
from core.exchange.rules import check_proposal
from core.exchange.schema import OUTCOMES, Constraints, Portfolio, Proposal, WorldState, normalise_symbol
from core.exchange.artifact import Artifact, Verdict
from core.mcp.desk import Desk
from core.mcp.replies import ChallengeAnswer, ExchangeOpened, History, Preset, Presets, RoundResult

UNKNOWN_CLIENT = "unnamed client"
MAX_ID = 64
"""The longest exchange id or name quoted back: ids are UUIDs, so anything longer is not one."""

INSTRUCTIONS = """You play the Player against a Coach that checks trades against a constraint schema.
Loop: get_constraints (or list_presets), start_exchange(symbol, preset), then submit_proposal(exchange_id,
proposal) once per round: 1-3 actions with reasoning first. The Coach answers with every check's
arithmetic and the violations; revise what it names and submit again while another_round_allowed is true.
The exchange ends APPROVE, REJECT-MAX (after max_rounds) or ABORT (a circuit breaker or an abort violation).
check_proposal tries a proposal without playing a round. Every exchange is stored and can be replayed."""


class StaticToken:
    """The one bearer token the server was started with (`--token`): a TokenVerifier for the SDK."""

    def __init__(self, token: str):
        self._token = token

    async def verify_token(self, token: str) -> AccessToken | None:
        if not hmac.compare_digest(token.encode(), self._token.encode()):
            return None
        return AccessToken(token="bearer", client_id="bearer", scopes=[])  # never the token itself


class CoachServer(MCPServer):
    """MCPServer whose tool errors are one sentence: a malformed argument names its field and value
    (the CLI's wording), an error of ours says what is wrong, an unexpected one says no more."""

    async def call_tool(self, name: str, arguments: dict[str, Any], context=None):
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as error:
            cause = error.__cause__
            if isinstance(cause, ValidationError):
                raise ToolError(f"{name}: {explain(cause)}") from None
            if isinstance(cause, PlayerCoachError):
                raise ToolError(f"{name}: {cause}") from None
            raise


def client_of(ctx: Context) -> str:
    """Who is calling: the client's name and version from the MCP handshake (or the request's envelope)."""
    params = ctx.session.client_params
    if params is None:
        return UNKNOWN_CLIENT
    info = params.client_info
    said = f"{info.name[:MAX_ID]} {info.version[:MAX_ID]}"
    # The client names itself: keep it one printable line, since History and logs show it as it is.
    return " ".join("".join(ch if ch.isprintable() else " " for ch in said).split()) or UNKNOWN_CLIENT


def _constraints(store, preset: str | None, constraints: Constraints | None) -> Constraints:
    if preset is not None and constraints is not None:
        raise InvalidInput("give preset or constraints, not both")
    if constraints is not None:
        return constraints
    preset = preset or "moderate"
    if preset in list_presets():
        return load_preset(preset)
    saved = store.custom_presets() if store is not None else {}
    if preset in saved:
        return saved[preset]
    raise InvalidInput(f"preset: unknown preset {preset[:MAX_ID]!r}; known: {', '.join(list_presets() + list(saved))}")


def market_world(symbol: str, as_of: date | None) -> WorldState:
    """The world on a market day from the local bars, as Trade Review builds it (the newest day by default)."""
    try:
        days = market.available_dates(symbol)[market.MIN_HISTORY:]
        day = as_of or (days[-1] if days else None)
        if day is None:
            raise market.MarketDataError(f"no local market data for {symbol}")
        bars = market.load_bars(symbol, day - timedelta(days=400), day, online=False)
        return market.world_state(symbol, day, bars)
    except (ValueError, market.MarketDataError) as error:
        raise InvalidInput(f"world: {error}; pass a world of your own") from None


def _round_result(run_id: str, record, artifact: Artifact | None, max_rounds: int) -> RoundResult:
    ev = record.evaluation
    ended = artifact is not None
    return RoundResult(
        exchange_id=run_id, round=record.round, decision=ev.decision, violations=ev.violations, checks=ev.checks,
        critique=ev.feedback, reasoning_check=record.reasoning_check, another_round_allowed=not ended,
        rounds_left=0 if ended else max_rounds - record.round,
        outcome=artifact.outcome if ended else None, termination_reason=artifact.termination_reason if ended else None,
    )


def build_server(desk: Desk, *, token: str | None = None, url: str | None = None) -> MCPServer:
    """The MCP server over `desk` (its store holds the exchanges). With `token`, HTTP requests need it as a
    bearer token; `url` is where the server listens (the token's issuer)."""
    store = desk.store

    @contextlib.asynccontextmanager
    async def lifespan(app):
        # An exchange waiting past the timeout is ended even when no one calls; and when the client goes
        # (stdio: the pipe closes) or the server stops, every open exchange ends INTERRUPTED with its rounds.
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(_sweep, desk)
            try:
                yield {}
            finally:
                tasks.cancel_scope.cancel()
                desk.close_all()

    auth = dict(token_verifier=StaticToken(token), auth=AuthSettings(issuer_url=url or "http://127.0.0.1",
                                                                     resource_server_url=None)) if token else {}
    server = CoachServer("player-coach", instructions=INSTRUCTIONS, lifespan=lifespan, **auth)
    _reading_tools(server, store)
    _consulting_tools(server, desk)
    _exchange_tools(server, desk)
    _resources(server, store)

    @server.prompt()
    def play_the_player() -> str:
        """How to play the Player against this Coach: the rules you are judged by and the order of the tools."""
        return INSTRUCTIONS + "\n\n" + RULES

    return server


def _reading_tools(server: MCPServer, store) -> None:
    """The tools that only read: presets and stored exchanges."""

    @server.tool(name="list_presets")
    def presets() -> Presets:
        """The shipped and saved constraint presets, with every value and tier."""
        saved = store.custom_presets() if store is not None else {}
        return Presets(presets=[Preset(name=n, source="shipped", constraints=load_preset(n)) for n in list_presets()]
                       + [Preset(name=n, source="saved", constraints=c) for n, c in saved.items()])

    @server.tool()
    def get_constraints(preset: str = "moderate") -> Constraints:
        """One preset's constraint schema: the limits every proposal is checked against."""
        return _constraints(store, preset, None)

    @server.tool()
    def get_exchange(exchange_id: str) -> Artifact:
        """One stored exchange: every round's proposal, checks, critique and reasoning check, as the CLI prints it."""
        found = store.get_exchange(exchange_id) if store is not None and len(exchange_id) <= MAX_ID else None
        if found is None:
            raise InvalidInput(f"exchange_id: no stored exchange {exchange_id[:MAX_ID]!r}")
        return found

    @server.tool()
    def history(outcome: str | None = None, symbol: str | None = None, strategy: str | None = None,
                since: date | None = None, until: date | None = None, text: str | None = None,
                dates_by: Literal["run", "market"] = "run", limit: int = 20, player: str | None = None) -> History:
        """Stored exchanges, newest first, filtered (the days run or the market days, `dates_by`, both ends
        included); exchanges played over MCP name their Player `external: <client name and version>`, which
        `player` filters on (as house-player or claude-player)."""
        if outcome is not None and outcome not in OUTCOMES:
            raise InvalidInput(f"outcome: {outcome[:MAX_ID]!r} is not one of {', '.join(OUTCOMES)}")
        if not 1 <= limit <= 500:
            raise InvalidInput(f"limit: {limit} is not between 1 and 500")
        rows = store.list_exchanges(outcome=outcome, symbol=symbol, strategy=strategy, since=since, until=until,
                                    text=text, dates_by=dates_by, limit=limit, player=player) \
            if store is not None else []
        return History(exchanges=rows)


def _consulting_tools(server: MCPServer, desk: Desk) -> None:
    """The Coach consulted outside an exchange: a check that stores nothing, the challenge's odds."""
    store = desk.store

    @server.tool(name="check_proposal")
    def check(proposal: Proposal, ctx: Context, preset: str | None = None, constraints: Constraints | None = None,
              portfolio: Portfolio | None = None, world: WorldState | None = None) -> Verdict:
        """Check a proposal against a preset (or a schema of your own) without playing a round; nothing is stored."""
        desk.consult(client_of(ctx))
        return check_proposal(proposal, _constraints(store, preset, constraints), portfolio or Portfolio(), world)

    @server.tool()
    def challenge(ctx: Context, returns: list[float] | None = None, backtest_id: str | None = None,
                  template: str | None = None, rules: ChallengeRules | None = None, preset: str | None = None,
                  profit_target_pct: float | None = None, max_days: int | None = None, min_trading_days: int = 0,
                  paths: int = 10_000, block: int = 1, seed: int = 0) -> ChallengeAnswer:
        """Probability of passing a funded-account challenge, from daily returns or a stored backtest's. The
        challenge: a shipped template (one_step, two_step), rules of your own, or a preset's drawdown, daily-loss
        and consistency limits with profit_target_pct."""
        from core.mcp.challenge import pass_probability_of, rules_of

        limits = dict(max_days=max_days, min_trading_days=min_trading_days)
        schema = _constraints(store, preset, None) if profit_target_pct is not None else None
        chosen = rules_of(template, rules, schema, profit_target_pct, limits)
        desk.consult(client_of(ctx))
        return pass_probability_of(store, returns, backtest_id, chosen, dict(paths=paths, block=block, seed=seed))


def _exchange_tools(server: MCPServer, desk: Desk) -> None:
    """The tools of an exchange played from outside: open it, then one proposal a round."""
    store = desk.store

    @server.tool()
    def start_exchange(symbol: str, ctx: Context, preset: str | None = None, constraints: Constraints | None = None,
                       as_of: date | None = None, world: WorldState | None = None,
                       portfolio: Portfolio | None = None, strategy: str | None = None) -> ExchangeOpened:
        """Open an exchange in which you are the Player: the world is the market's on `as_of` (the newest day by
        default) or yours. The circuit breakers run now: a tripped one ends the exchange ABORT at once."""
        client = client_of(ctx)
        schema = _constraints(store, preset, constraints)
        try:
            symbol = normalise_symbol(symbol)
        except ValueError as error:
            raise InvalidInput(f"symbol: {error}") from None
        if world is not None and as_of is not None:
            raise InvalidInput("give as_of or world, not both")
        if strategy is not None and len(strategy) > MAX_ID:
            raise InvalidInput(f"strategy: {len(strategy):,} characters; at most {MAX_ID}")
        if world is not None and world.symbol != symbol:
            raise InvalidInput(f"world: its symbol {world.symbol} is not {symbol}")
        world = world or market_world(symbol, as_of)
        portfolio = portfolio or Portfolio()
        opened = desk.start(client, world, schema, portfolio, strategy)
        done = opened.artifact
        return ExchangeOpened(
            exchange_id=opened.run_id, open=done is None, outcome=done and done.outcome,
            termination_reason=done and done.termination_reason,
            breaker_detail=opened.breaker.detail if opened.breaker else None,
            max_rounds=schema.max_rounds, world=world, portfolio=portfolio, constraints=schema,
        )

    @server.tool()
    def submit_proposal(exchange_id: str, proposal: Proposal, ctx: Context) -> RoundResult:
        """Play one round: the Coach checks the proposal and answers with its verdict and critique. Revise what
        it names and submit again while another_round_allowed is true."""
        played = desk.submit(client_of(ctx), exchange_id, proposal)
        artifact = played.artifact
        if played.record is None:  # the round did not finish: the Coach failed
            raise InvalidInput(f"the round did not finish: the exchange ended {artifact.outcome} "
                               f"({artifact.termination_reason})")
        return _round_result(exchange_id, played.record, artifact, played.max_rounds)


RULES = """The rules (fractions: 0.05 = 5 %). For each entry with entry e, stop s, target t, size w:
the bracket is ordered (long s < e < t, short t < e < s); the symbol is allowed; w <= max_single_trade_pct;
the symbol's resulting position <= max_position_pct; symbols held <= max_open_positions; the sum of absolute
positions <= max_leverage; reward/risk >= min_risk_reward; today's loss plus the sum of w*|e-s|/e
<= max_daily_loss_pct; the drawdown plus the same risk <= max_drawdown_pct; optionally |e-s| >=
min_stop_atr_multiple * ATR. A violation listed in abort_on_violations ends the exchange ABORT."""


def _resources(server: MCPServer, store) -> None:
    """Presets and stored exchanges as resources, for clients that read rather than call."""

    @server.resource("coach://presets/{name}", mime_type="application/json")
    def preset_resource(name: str) -> str:
        """A preset's constraint schema as JSON."""
        return _constraints(store, name, None).model_dump_json(indent=2)

    @server.resource("coach://exchanges/{exchange_id}", mime_type="application/json")
    def exchange_resource(exchange_id: str) -> str:
        """A stored exchange's artifact as JSON."""
        found = store.get_exchange(exchange_id) if store is not None and len(exchange_id) <= MAX_ID else None
        if found is None:
            raise InvalidInput(f"no stored exchange {exchange_id[:MAX_ID]!r}")
        return found.model_dump_json(indent=2)

    @server.resource("coach://presets", mime_type="application/json")
    def presets_resource() -> str:
        """The names of the shipped presets and the saved ones."""
        saved = list(store.custom_presets()) if store is not None else []
        return json.dumps({"shipped": list_presets(), "saved": saved})


async def _sweep(desk: Desk) -> None:
    """End the exchanges that waited past the timeout, every so often."""
    every = max(1.0, min(60.0, desk.limits.open_timeout_s / 4))
    while True:
        await anyio.sleep(every)
        await anyio.to_thread.run_sync(desk.expire)
