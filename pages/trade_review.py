"""Trade Review: a live Player–Coach exchange on the world state in the sidebar."""

import threading
import uuid
from typing import get_args
from datetime import date, datetime

import streamlit as st
from pydantic import ValidationError

from ui import shell

shell.require_app()

import core  # noqa: E402
from core.exchange.json_input import read_json, shorten  # noqa: E402
from core import prices  # noqa: E402
from core.exchange.presets import explain  # noqa: E402
from core.exchange.repeat import repeat_exchanges  # noqa: E402
from core.exchange.schema import CAPITAL, PositionSide, TradingSession, VolatilityRegime, normalise_symbol  # noqa: E402
from core.journal import record  # noqa: E402
from ui import exchange_view, market_defaults, repeat_view, session  # noqa: E402
from ui.session import sticky  # noqa: E402

store = session.store()
sidebar = st.sidebar
state = st.session_state
# A click on Run starts this run: the sidebar is locked until the exchange ends, so nothing the
# user touches can cut it short without a word (Stop and leaving the page still can, and say so).
live = any(bool(state.get(button)) for button in (session.TR_RUN, session.TR_RETRY, session.TR_HOUSE_RUN,
                                                  session.TR_REPEAT_RUN))
repeating = bool(state.get(session.TR_REPEAT_RUN))
cut_short = state.pop(session.TR_CUT_SHORT, None)  # the exchange the previous run was cut short in (app.py)

# -- sidebar: market, portfolio, constraints, agents ---------------------------------------------
sidebar.header("Market")
symbols = market_defaults.symbols()
choices = session.schemas()
first_schema = choices.get(state.get(session.KEPT + session.TR_SCHEMA)) or choices.get("moderate")
newest = market_defaults.newest_symbol(tuple(first_schema.allowed_symbols) if first_schema else ())
symbol = sticky(sidebar.selectbox, "Symbol", key=session.TR_SYMBOL, options=symbols, index=symbols.index(newest),
                accept_new_options=True, disabled=live, help="Pick a symbol of the market data or type another ticker.")
dates = market_defaults.dates(symbol)
if dates:
    # A calendar bounded by the data, not its ~4,000 days as options (a 68 KB message, 0.4 s to draw on first paint).
    first, last = dates[0], dates[-1]
    wanted = st.session_state.get(session.TR_DATE, st.session_state.get(session.KEPT + session.TR_DATE))
    if wanted is not None and not first <= wanted <= last:
        # Another symbol's day, outside this one's data: the nearest day it has (its last or its first).
        st.session_state[session.TR_DATE] = market_defaults.day_on_or_before(dates, wanted)
    picked = sticky(sidebar.date_input, "Date", key=session.TR_DATE, value=last, min_value=first, max_value=last,
                    disabled=live, format="YYYY-MM-DD",
                    help=f"From {first:%d %b %Y} to {last:%d %b %Y}; a day without a bar uses the trading day "
                         "before it.")
    day = market_defaults.day_on_or_before(dates, picked)
    if day != picked:
        sidebar.caption(f"No bar on {picked:%a %d %b %Y}: using {day:%a %d %b %Y}")
else:
    day = sticky(sidebar.date_input, "Date", key=session.TR_FREE_DATE, value=date(2025, 3, 4), disabled=live,
                 help="No market data for this symbol: any date, and fill the world state by hand.")
at = sticky(sidebar.time_input, "Time (ET)", key=session.TR_TIME, value=market_defaults.DECISION_TIME, step=300, disabled=live)
filled, source = market_defaults.world(symbol, day)
sidebar.caption(source)
if st.session_state.get(session.TR_FILLED_FOR) != (symbol, str(day)):
    # A new symbol or day: refill the world state from the market data (the user may edit it after).
    st.session_state[session.TR_FILLED_FOR] = (symbol, str(day))
    for key, field in ((session.TR_PRICE, "price"), (session.TR_SMA5, "sma5"), (session.TR_SMA10, "sma10"),
                       (session.TR_VOLUME, "volume"), (session.TR_REGIME, "volatility_regime"),
                       (session.TR_SESSION, "session")):
        st.session_state[key] = filled[field]
    st.session_state[session.TR_ATR] = filled["atr"] or 0.0

with sidebar.expander("World state", expanded=False):
    price = sticky(st.number_input, "Price", key=session.TR_PRICE, value=filled["price"], min_value=0.0, disabled=live, format="%.2f")
    sma5 = sticky(st.number_input, "SMA 5", key=session.TR_SMA5, value=filled["sma5"], min_value=0.0, disabled=live, format="%.2f")
    sma10 = sticky(st.number_input, "SMA 10", key=session.TR_SMA10, value=filled["sma10"], min_value=0.0, disabled=live, format="%.2f")
    volume = sticky(st.number_input, "Volume", key=session.TR_VOLUME, value=filled["volume"], min_value=0.0, disabled=live,
                    step=1000.0, format="%.0f")
    regimes = list(get_args(VolatilityRegime))
    regime = sticky(st.selectbox, "Volatility regime", key=session.TR_REGIME, options=regimes, disabled=live,
                    index=regimes.index(filled["volatility_regime"]))
    sessions = list(get_args(TradingSession))
    trading_session = sticky(st.selectbox, "Session", key=session.TR_SESSION, options=sessions, disabled=live,
                             index=sessions.index(filled["session"]))
    positions_ = list(get_args(PositionSide))
    position = sticky(st.selectbox, "Position", key=session.TR_POSITION, options=positions_, index=0, disabled=live)
    atr = sticky(st.number_input, "ATR (14 days, 0 = unknown)", key=session.TR_ATR, value=filled["atr"] or 0.0, disabled=live,
                 min_value=0.0, format="%.2f")

with sidebar.expander("Portfolio", expanded=False):
    equity = sticky(st.number_input, "Equity", key=session.TR_EQUITY, value=CAPITAL, disabled=live, min_value=0.0, step=1000.0)
    peak = sticky(st.number_input, "Peak equity", key=session.TR_PEAK, value=CAPITAL, disabled=live, min_value=0.0, step=1000.0)
    start_of_day = sticky(st.number_input, "Start-of-day equity", key=session.TR_SOD, value=CAPITAL, disabled=live,
                          min_value=0.0, step=1000.0)
    cumulative = sticky(st.number_input, "Cumulative P&L", key=session.TR_CUM_PNL, value=0.0, disabled=live, step=100.0)
    today = sticky(st.number_input, "Today's P&L", key=session.TR_TODAY_PNL, value=0.0, disabled=live, step=100.0)
    held = sticky(st.text_input, "Positions (JSON, fractions of equity)", key=session.TR_POSITIONS, value="{}", disabled=live,
                  help='Signed fractions of equity, e.g. {"MSFT": 0.05, "TSLA": -0.02}.')

sidebar.header("Constraints")
if st.session_state.pop(session.PUSH_PENDING, False):
    st.session_state[session.TR_SCHEMA] = session.pushed_label()
labels = list(choices)
schema_label = sticky(sidebar.selectbox, "Preset", key=session.TR_SCHEMA, options=labels, disabled=live,
                      index=labels.index("moderate") if "moderate" in labels else 0,
                      help="A shipped preset, one you saved on Constraints, or the edited schema pushed from there.")
if schema_label not in choices:
    schema_label = labels[0]
constraints = choices[schema_label]
sidebar.caption(f"max {constraints.max_rounds} rounds · R/R ≥ {constraints.min_risk_reward:g} · "
                f"trade ≤ {constraints.max_single_trade_pct:.1%} · cutoff {constraints.trading_cutoff_time or 'none'}")
try:
    allowed = normalise_symbol(symbol) in constraints.allowed_symbols
except ValueError:  # not a ticker: the world state says so below
    allowed = True
if not allowed:  # said before Run: such an exchange ends ABORT before round 1, no agent called, nothing spent
    sidebar.warning(f"**{exchange_view.literal(symbol)}** is not in {exchange_view.literal(schema_label)}'s "
                    f"allowed_symbols ({exchange_view.literal(', '.join(constraints.allowed_symbols))}): an exchange on "
                    "it ends ABORT before round 1, with no agent called. Pick another symbol or preset.",
                    icon=":material/block:")
sidebar.page_link("pages/constraints.py", label="Edit on Constraints", icon=":material/tune:", disabled=live)
for name, reason in session.store().unusable_presets().items():
    sidebar.warning(f"Saved preset **{exchange_view.literal(name)}** is unusable and not offered: "
                    f"{exchange_view.literal(shorten(reason))}", icon=":material/warning:")

sidebar.header("Agents")
strategy = sticky(sidebar.text_input, "Strategy", key=session.TR_STRATEGY, value="trend-following", disabled=live,
                  help="Exchanges are grouped by strategy on History and for deriving constraints.")
agent_choice = None  # the automatic pair: Claude with a key, else House
offered = session.agent_choices()
if len(offered) > 1:  # a key or an installed agent: say who plays, the house agents one click away
    if state.get(session.TR_AGENTS) not in offered:  # e.g. Claude, after the key was cleared
        state.pop(session.TR_AGENTS, None)
        state.pop(session.KEPT + session.TR_AGENTS, None)
    # The labels are made here, in the run: a format_func reading the session later may not see the key.
    claude_label = session.agents_label(session.CLAUDE)
    agent_choice = sticky(sidebar.selectbox, "Agents", key=session.TR_AGENTS, options=offered, disabled=live,
                          index=offered.index(session.CLAUDE if session.has_key() else session.HOUSE),
                          format_func=lambda choice: claude_label if choice == session.CLAUDE else choice,
                          help="House (offline, free), Claude with the session's key, or an agent installed as a "
                               "player_coach.agents entry point.")
house_seed = agent_choice == session.HOUSE or not session.has_key()
seed = sticky(sidebar.number_input, "House Player seed", key=session.TR_SEED, value=0, min_value=0, step=1,
              disabled=live or not house_seed)
speed_label = sticky(sidebar.select_slider, "Animation speed", key=session.TR_SPEED, options=list(session.SPEEDS), disabled=live,
                     value="Normal", help="Slow to Fast; Instant draws the whole exchange at once.")

# -- main ------------------------------------------------------------------------------------
st.title("Trade Review")
agents_label = session.agents_label(agent_choice)
if session.has_key() and agent_choice != session.HOUSE:
    grading = session.grading_cost()
    st.caption(f"Agents: **{agents_label}**. The house agents are one click away: Agents, in the sidebar."
               + (f" Claude also grades the reasoning: about {grading} a round (Settings)." if grading else ""))
elif session.has_key():
    st.info(f"Agents: **{agents_label}**. Claude is one click away: Agents, in the sidebar.", icon=":material/home:")
else:
    st.info(f"Agents: **{agents_label}**. To let Claude play both roles, add your Anthropic API key on "
            "Settings (it stays in this browser session only).", icon=":material/home:")

problems = []
try:
    world = core.WorldState(
        symbol=symbol, as_of=datetime.combine(day, at), price=price, sma5=sma5, sma10=sma10, volume=volume,
        volatility_regime=regime, session=trading_session, position=position, atr=atr or None,
    )
except ValidationError as error:
    problems.append(f"World state — {explain(error)}")
try:
    portfolio = core.Portfolio(equity=equity, peak_equity=peak, start_of_day_equity=start_of_day,
                               cumulative_pnl=cumulative, today_pnl=today, positions=read_json(held or "{}", "positions"))
except core.InvalidInput as error:  # broken or hostile JSON: nesting, huge numbers, a key given twice
    problems.append(f"Portfolio — {error}")
except ValidationError as error:
    problems.append(f"Portfolio — {explain(error)}")
for problem in problems:
    st.error(exchange_view.literal(problem))

buttons = st.container(horizontal=True, vertical_alignment="bottom")  # side by side on a phone too
# Disabled while its own exchange plays (a disabled button reads False, hence `live` from the top).
buttons.button("Run exchange", key=session.TR_RUN, type="primary", icon=":material/play_arrow:",
            disabled=bool(problems) or live)
run = live and not problems
stop = buttons.button("Stop", key=session.TR_STOP, icon=":material/stop:", disabled=not live,
                    help="End the running exchange as INTERRUPTED, keeping what is on screen.")
times = sticky(buttons.number_input, "Times", key=session.TR_REPEAT_K, min_value=2, max_value=10, value=5, step=1,
               disabled=live, width=120, help="How many times Run k times plays the same exchange (2 to 10).")
buttons.button(f"Run {times} times", key=session.TR_REPEAT_RUN, icon=":material/repeat:", disabled=bool(problems) or live,
               help="The same exchange, with fresh agents each time: do they agree on the outcome and the trade?")
if session.has_key() and agent_choice in (None, session.CLAUDE):  # paid calls: their cost before they run
    estimate = prices.estimate_cost(times, constraints, "standard", state[session.MODEL])
    st.caption(f"Run {times} times with Claude: about ${estimate['dollars_typical']:,.4f} "
               f"({estimate['calls_typical']} calls), at most ${estimate['dollars_worst']:,.4f} "
               f"({estimate['calls_worst']} calls) if every exchange takes all {constraints.max_rounds} rounds.")
# Everything below the buttons is drawn into this one place: a new run replaces the previous result whole,
# so nothing of it lingers (faded) while the new exchange plays.
result_area = st.empty()

def last_result() -> None:
    """The exchange Trade Review ran last, drawn at once, with Retry and the house agents after an ERROR."""
    run_id = state[session.LAST_RUN_ID]
    artifact = store.get_exchange(run_id)
    if artifact is None:
        st.warning("The last exchange is no longer in the database.")
        return
    if cut_short == run_id:
        st.toast(f"Exchange {exchange_view.literal(artifact.termination_reason or 'interrupted')}.",
                 icon=":material/stop:")
    ran_under = state.get(session.TR_SCHEMAS, {}).get(run_id)
    if artifact.constraint_snapshot != constraints:
        st.info(f"This result came from **{exchange_view.literal(ran_under or 'the constraints of that run')}**; the "
                f"sidebar now selects **{exchange_view.literal(schema_label)}**. Run exchange to review the trade "
                "under it.", icon=":material/swap_horiz:")
    exchange_view.show(artifact, key="last", schema=ran_under)
    if artifact.outcome == "ERROR":  # a busy API, a stall, a long wait: the trader may simply try again
        st.button("Retry", key=session.TR_RETRY, icon=":material/refresh:", disabled=bool(problems),
                  help="Run the exchange again with the inputs in the sidebar (the reason above says how "
                       "long the API asked to wait, when it did).")
    if session.connection_failed(artifact) and artifact.agents.model:  # Claude could not be reached
        st.warning("Claude could not be reached from here. The house agents play offline, at no cost.",
                   icon=":material/wifi_off:")
        st.button("Run with the house agents", key=session.TR_HOUSE_RUN, icon=":material/home:",
                  disabled=bool(problems), on_click=session.choose_house)


if run and repeating:
    group = str(uuid.uuid4())
    state.pop(session.LAST_RUN_ID, None)
    state[session.TR_LAST_REPEAT] = group
    strategy_id = strategy.strip() or None
    pairs = {}  # fresh agents for each exchange: the Player made first, its Coach beside it

    def player(i: int):
        pairs[i] = session.agents(int(seed), strategy_id, agent_choice)
        return pairs[i][0]

    with result_area.container():
        st.caption(f"Playing the same exchange {times} times with {agents_label}…")
        progress, shown, outcomes = st.progress(0.0), st.empty(), []
        for artifact in repeat_exchanges(world, constraints, portfolio, player, lambda i: pairs[i][1], times,
                                         repeat_id=group, strategy_id=strategy_id):
            store.record(artifact)  # each on record as it ends: Stop keeps the finished ones
            outcomes.append(artifact.outcome)
            progress.progress(len(outcomes) / times, text=f"{len(outcomes)} of {times} exchanges")
            with shown.container():
                repeat_view.strip(outcomes)
    st.rerun()
elif run:
    state.pop(session.TR_LAST_REPEAT, None)
    run_id = str(uuid.uuid4())
    state[session.LAST_RUN_ID] = state[session.TR_LIVE] = run_id
    state.setdefault(session.TR_SCHEMAS, {})[run_id] = schema_label
    strategy_id = strategy.strip() or None
    player, coach = session.agents(int(seed), strategy_id, agent_choice)
    events = record(core.run_exchange(world, constraints, portfolio, player, coach, strategy_id=strategy_id, run_id=run_id,
                                      grader=None if agent_choice == session.HOUSE else session.grader()), store)
    state[session.TR_CLOSED] = closed = threading.Event()
    try:
        with result_area.container():
            exchange_view.play(events, exchange_view.ExchangeView(session.SPEEDS[speed_label], key="live",
                                                                  schema=schema_label))
    finally:
        closed.set()  # the exchange is on record, finished or cut short
    del state[session.TR_LIVE]
    st.rerun()  # the exchange is over: unlock the sidebar, disable Stop
elif session.TR_LAST_REPEAT in state:
    with result_area.container():
        group = repeat_view.group_of(store, state[session.TR_LAST_REPEAT])
        if not group:
            st.warning("The last exchanges are no longer in the database.")
        else:
            repeat_view.show(core.Repeatability(state[session.TR_LAST_REPEAT], tuple(group)))
            st.caption("The last of them, round by round:")
            exchange_view.show(group[-1], key="last")
elif session.LAST_RUN_ID in state:
    with result_area.container():
        last_result()
else:
    with result_area.container():
        exchange_view.ExchangeView(key="waiting").waiting(
            f"Ready. Press Run exchange and I will propose a trade on {symbol} at {price:,.2f}, "
            f"from the market on {day:%a %d %b %Y}.",
            f"I will check every action against every constraint of {schema_label}, "
            f"for up to {constraints.max_rounds} rounds.")
