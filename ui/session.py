"""Every session-state key the app uses, named in one place, and the per-session objects.

The API key lives here and only here: in `st.session_state[API_KEY]` for the browser session.
It is never written to a file, the database, a log, a query parameter or an error message.
"""

from __future__ import annotations

import re
import threading
from datetime import date, datetime, timezone

import streamlit as st

import core
import core.journal.store
from core.exchange.plugins import InstalledAgent, installed_agents
from core.prices import DEFAULT_MODEL
from ui.text import literal

def today() -> date:
    """The calendar day the pages reason from (model retirements, date defaults); tests set it with time-machine."""
    return date.today()


def now() -> datetime:
    """The moment the pages reason from (past runs' state, pruning ages), in UTC."""
    return datetime.now(timezone.utc)


# -- keys that hold app state (not widgets) ------------------------------------------------
API_KEY = "api_key"  # the validated Anthropic key (str); absent = house agents
KEY_VERIFIED = "api_key_verified"  # False: the key is kept but the API could not be asked whether it works
KEY_STATUS = "api_key_status"  # the last validation message shown on Settings
MODEL = "model"  # the Claude model for both agents
MODEL_LIST = "model_list"  # the models the key may use, from the Models API: list of core.prices.ModelInfo
MODEL_LIST_NOTE = "model_list_note"  # why the built-in list is shown instead (str), when it is
BASE_URL = "base_url"  # a gateway that speaks Anthropic's API (Settings, advanced); None = ANTHROPIC_BASE_URL or Anthropic
INDEPENDENT = "independent_coach"  # the Claude Coach also judges without the checks (bool)
GRADE_REASONING = "grade_reasoning"  # a third Claude call per round grades the Player's reasoning (bool, off)
CALLS_PER_HOUR = "spend_calls_per_hour"  # spend guard: most paid calls in any hour
DOLLARS_PER_SESSION = "spend_dollars_per_session"  # spend guard: most dollars in this session
SPEND_GUARD = "spend_guard"  # the session's core.SpendGuard, made on first use
PUSHED_SCHEMA = "pushed_schema"  # a Constraints pushed from the Constraints page (dict)
PUSHED_NAME = "pushed_name"  # its name: the preset it is, or "Edited schema (from <preset>)"
PUSH_PENDING = "push_pending"  # Trade Review should select the pushed schema on its next run
LAST_RUN_ID = "last_run_id"  # the exchange Trade Review shows (live or finished)
TR_LIVE = "tr_live"  # run_id of the exchange Trade Review is playing; still set next run = it was cut short
TR_CLOSED = "tr_closed"  # threading.Event set once the exchange Trade Review played is on record (even cut short)
TR_CUT_SHORT = "tr_cut_short"  # run_id of the exchange the last Trade Review run was cut short in, for its toast
TR_SCHEMAS = "tr_schemas"  # run_id -> the preset or schema name the exchange ran under
EDITOR = "constraints_editor"  # the Constraints editor's working copy (dict, maybe invalid)
EDITOR_BASE = "constraints_base"  # name of the preset the Constraints editor loaded
EDITOR_NOTICE = "constraints_notice"  # a one-off message for the Constraints page (kind, text)
DERIVED = "derived"  # the last derive result on Constraints: {strategy, schema, evidence}
HISTORY_SELECTED = "history_selected"  # run_id selected on History
HISTORY_CHARTS = "history_charts"  # History has painted once in this session: its charts draw at once from now on
PRUNE_PENDING = "prune_pending"  # Settings: the deletion waiting for its confirmation (before ISO text or None, count)
PRUNE_DONE = "prune_done"  # Settings: what the last deletion did, in words
KEPT = "kept."  # prefix: copies of widget values that outlive a page switch

# -- widget keys ---------------------------------------------------------------------------
TR_FILLED_FOR = "tr_filled_for"  # (symbol, day) the world-state widgets were filled for
TR_SYMBOL = "tr_symbol"
TR_DATE = "tr_date"  # a trading day of the market data
TR_FREE_DATE = "tr_free_date"  # any day, for a symbol without market data
TR_TIME = "tr_time"
TR_PRICE = "tr_price"
TR_SMA5 = "tr_sma5"
TR_SMA10 = "tr_sma10"
TR_VOLUME = "tr_volume"
TR_REGIME = "tr_regime"
TR_SESSION = "tr_session"
TR_POSITION = "tr_position"
TR_ATR = "tr_atr"
TR_EQUITY = "tr_equity"
TR_PEAK = "tr_peak_equity"
TR_SOD = "tr_start_of_day_equity"
TR_CUM_PNL = "tr_cumulative_pnl"
TR_TODAY_PNL = "tr_today_pnl"
TR_POSITIONS = "tr_positions"
TR_SCHEMA = "tr_schema"
TR_AGENTS = "tr_agents"  # House, Claude or an installed agent; drawn only when an agent is installed
TR_STRATEGY = "tr_strategy"
TR_SEED = "tr_seed"
TR_SPEED = "tr_speed"
TR_RUN = "tr_run"
TR_HOUSE_RUN = "tr_house_run"  # after Claude could not be reached: run the exchange with the house agents
TR_REPEAT_K = "tr_repeat_k"  # how many times "Run k times" plays the exchange (2-10)
TR_REPEAT_RUN = "tr_repeat_run"  # the "Run k times" button
TR_LAST_REPEAT = "tr_last_repeat"  # repeat_id of the group Trade Review ran last (shown instead of LAST_RUN_ID)
TR_RETRY = "tr_retry"  # the Retry button under an ERROR outcome: runs the exchange again as Run does
TR_STOP = "tr_stop"
CONSTRAINT_FIELD = "c."  # prefix: one editor widget per Constraints field, e.g. "c.max_leverage"
C_PRESET = "c_preset"
C_NO_CUTOFF = "c_no_cutoff"
C_ATR_OFF = "c_atr_off"
C_UPLOAD = "c_upload"
C_SAVE_NAME = "c_save_name"
C_SAVED = "c_saved"  # the last save on Constraints: {"name", "schema"}, for the "Saved" note beside the button
C_REPLACE = "c_replace"  # a save waiting for the user to confirm replacing a custom preset: {"name", "schema", "key"}
C_DECIMALS = "c_decimals"  # decimals each Constraints slider shows (more when a loaded value has them)
C_DERIVE_STRATEGY = "c_derive_strategy"
C_DERIVED_NAME = "c_derived_name"
H_OUTCOME = "h_outcome"
H_SYMBOL = "h_symbol"
H_STRATEGY = "h_strategy"
H_PLAYER = "h_player"
H_SINCE = "h_since"  # History: the first day of the date filter
H_UNTIL = "h_until"  # and the last
H_DATES_BY = "h_dates_by"
H_TEXT = "h_text"
H_UNFAITHFUL = "h_unfaithful"
H_PAGE = "h_page"
H_TABLE = "h_table"
H_PICK = "h_pick"
H_SPEED = "h_speed"
H_GROUP_PICK = "h_group_pick"  # History: which exchange of the picked group is shown
H_CHARTS_CUE = "h_charts_cue"  # History: the browser says the table is drawn, so the charts may come
S_KEY_INPUT = "s_key_input"
S_MODEL = "s_model"
S_BASE_URL = "s_base_url"
S_INDEPENDENT = "s_independent_coach"
S_GRADE = "s_grade_reasoning"
S_CALLS = "s_calls_per_hour"
S_DOLLARS = "s_dollars_per_session"
S_PRUNE_SCOPE = "s_prune_scope"
S_PRUNE_DAYS = "s_prune_days"

EDITED = "Edited schema"  # an unsaved schema is called so; a saved one is a preset
SPEEDS = {"Slow": 0.05, "Normal": 0.012, "Fast": 0.004, "Instant": 0.0}
"""Animation speeds, slowest first: seconds per streamed word (a two-round house exchange in under 5 s at Normal)."""


def init() -> None:
    """Defaults for the app-state keys; called by app.py at the top of every run."""
    st.session_state.setdefault(MODEL, DEFAULT_MODEL)
    st.session_state.setdefault(INDEPENDENT, False)
    st.session_state.setdefault(GRADE_REASONING, False)
    st.session_state.setdefault(CALLS_PER_HOUR, 60)
    st.session_state.setdefault(DOLLARS_PER_SESSION, 1.00)


@st.cache_resource(show_spinner=False)
def _store(path: str) -> core.Store:
    return core.Store(path)


def store() -> core.Store:
    """The process's one Store for the configured path ($PLAYER_COACH_DB or data/).

    A file the app cannot use stops the page with the reason in words, never a traceback.
    """
    try:
        found = _store(str(core.journal.store.default_path()))
    except core.StoreError as error:
        st.error(f"{literal(error)}. Set PLAYER_COACH_DB to another file, or move this one aside.",
                 icon=":material/database:")
        st.stop()
    for said in (found.problem, found.note):  # a damaged or read-only file: what it can still show, and why
        if said:
            st.warning(f"Database {literal(found.path)}: {literal(said)}.", icon=":material/database:")
    return found


def note_cut_short() -> None:
    """At the start of every run, on every page (app.py): when Trade Review's previous run was cut short while it
    played an exchange (Stop, or the trader opened another page), that exchange is on record INTERRUPTED; its
    termination reason now says which, at once, and Trade Review's next run finds its id for a toast."""
    state = st.session_state
    run_id = state.pop(TR_LIVE, None)
    if run_id is None:
        return
    # Streamlit may start this run before the cut-short one has finished closing its exchange in another thread:
    # wait (briefly) until the round it stopped in is on record.
    state.get(TR_CLOSED, threading.Event()).wait(timeout=5)
    store().explain_interruption(run_id, "stopped with the Stop button" if state.get(TR_STOP)
                                 else "stopped because you left Trade Review")
    state[TR_CUT_SHORT] = run_id


def sticky(widget, label: str, *, key: str, **kwargs):
    """A widget whose value survives a visit to another page.

    Streamlit forgets a widget's value when a run does not draw it; a copy under KEPT + key
    brings it back. The default is passed only the first time, so Streamlit never sees both a
    default and a session-state value.
    """
    kept = KEPT + key
    if key not in st.session_state and kept in st.session_state:
        st.session_state[key] = st.session_state[kept]
    if key in st.session_state:
        for default in ("value", "index", "default"):
            kwargs.pop(default, None)
    value = widget(label, key=key, **kwargs)
    st.session_state[kept] = value
    return value


def spend_guard() -> core.SpendGuard:
    """The session's spend guard, shared by every Claude agent of the session (made on first use)."""
    guard = st.session_state.get(SPEND_GUARD)
    if guard is None:
        guard = st.session_state[SPEND_GUARD] = core.SpendGuard(
            calls_per_hour=int(st.session_state[CALLS_PER_HOUR]),
            dollars_per_session=float(st.session_state[DOLLARS_PER_SESSION]))
    return guard


def base_url() -> str | None:
    """Where Claude requests go: the gateway set on Settings, else $ANTHROPIC_BASE_URL, else None (Anthropic)."""
    from core.claude.keys import gateway  # the one rule; no SDK in it

    return gateway(st.session_state.get(BASE_URL))


def has_key() -> bool:
    return bool(st.session_state.get(API_KEY))


def key_verified() -> bool:
    """Whether the session's key is known to work: only a check that could not reach the API says it is not."""
    return has_key() and st.session_state.get(KEY_VERIFIED) is not False


def connection_failed(artifact: core.Artifact) -> bool:
    """An exchange that ended ERROR because Claude could not be reached (no network, a dropped or stalled line)."""
    reason = artifact.termination_reason or ""
    return artifact.outcome == "ERROR" and bool(re.search(r"could not reach|connection", reason, re.IGNORECASE))


HOUSE, CLAUDE = "House agents", "Claude"


def own_agents() -> list[InstalledAgent]:
    """The agents installed as entry points (player_coach.agents) that load; never a path typed into a page."""
    return [agent for agent in installed_agents() if agent.roles]


def agent_choices() -> list[str]:
    """Who can play, as offered beside each other: House, Claude (with a key), then each installed agent."""
    return [HOUSE, *([CLAUDE] if has_key() else []), *(agent.name for agent in own_agents())]


def choose_house() -> None:
    """Trade Review's agents choice set to the house agents (a button's callback: before the widget is drawn)."""
    st.session_state[TR_AGENTS] = st.session_state[KEPT + TR_AGENTS] = HOUSE


def agents_label(choice: str | None = None) -> str:
    """Which agents will play, in the trader's words (choice None: Claude with a key, else House)."""
    own = {agent.name: agent for agent in own_agents()}.get(choice)
    if own:
        roles = " and ".join(own.roles)
        return f"{own.name} ({own.target}) as {roles}" + ("" if len(own.roles) == 2 else ", the house agent as the other")
    if choice != HOUSE and has_key():
        return f"Claude ({st.session_state[MODEL]}" + ("" if key_verified() else ", key not verified") + ")"
    return "House agents (offline, deterministic)"


def agents(seed: int = 0, strategy: str | None = None, choice: str | None = None):
    """(player, coach) for a choice of `agent_choices()`; None: Claude when the session holds a key, else House.

    An installed agent plays the role(s) it has and the house agent the other. The Claude Player
    is told what the strategy's coach memory says it breaks most.
    """
    if choice not in (None, HOUSE, CLAUDE):
        own = {agent.name: agent for agent in own_agents()}.get(choice)
        if own is None:
            raise core.InvalidInput(f"agent {choice!r} is no longer installed")
        return (own.make("player") if "player" in own.roles else core.HousePlayer(seed=seed),
                own.make("coach") if "coach" in own.roles else core.HouseCoach())
    if choice != HOUSE and has_key():
        from core.claude import agents as claude  # imported on demand: the house agents need no SDK

        options = {"api_key": st.session_state[API_KEY], "model": st.session_state[MODEL], "guard": spend_guard(),
                   "base_url": base_url()}
        memory = store().memory_summary(strategy) if strategy else []
        return (claude.ClaudePlayer(**options, memory=memory),
                claude.ClaudeCoach(**options, independent=bool(st.session_state[INDEPENDENT])))
    return core.HousePlayer(seed=seed), core.HouseCoach()


def grader():
    """The Claude grader when the session holds a key and grading is on (Settings), else None."""
    if not (has_key() and st.session_state.get(GRADE_REASONING)):
        return None
    from core.claude import agents as claude

    return claude.ClaudeGrader(st.session_state[API_KEY], model=st.session_state[MODEL], guard=spend_guard(),
                               base_url=base_url())


def grading_cost() -> str | None:
    """What grading the reasoning costs a round, in words, when it is on (Settings); else None."""
    if not (has_key() and st.session_state.get(GRADE_REASONING)):
        return None
    from core import prices
    from core.claude import prompts

    return prices.cost_text(prompts.grade_estimate(st.session_state[MODEL], core.Constraints()))


def schemas() -> dict[str, core.Constraints]:
    """Every schema the user can pick: the shipped presets, the saved custom ones, the pushed one."""
    choices: dict[str, core.Constraints] = {name: core.load_preset(name) for name in core.list_presets()}
    for name, constraints in store().custom_presets().items():
        choices[f"{name} (custom)"] = constraints
    pushed = pushed_label()
    if pushed and pushed not in choices:
        choices[pushed] = core.Constraints.model_validate(st.session_state[PUSHED_SCHEMA])
    return choices


def edited_name(base: str) -> str:
    """The name of a schema edited from `base` and not saved: 'Edited schema (from moderate)'."""
    return base if base.startswith(EDITED) else f"{EDITED} (from {base})"


def push_schema(name: str, constraints: core.Constraints) -> None:
    """Make `constraints`, under its name, the one Trade Review selects on its next run."""
    st.session_state[PUSHED_SCHEMA] = constraints.model_dump(mode="json")
    st.session_state[PUSHED_NAME] = name
    st.session_state[PUSH_PENDING] = True


def pushed_label() -> str | None:
    """The name of the schema pushed from Constraints, or None."""
    if PUSHED_SCHEMA not in st.session_state:
        return None
    return st.session_state.get(PUSHED_NAME) or EDITED


def known_symbols() -> list[str]:
    """Symbols the app has seen: in the market snapshot and in stored exchanges."""
    from ui import market_defaults

    return list(dict.fromkeys(market_defaults.symbols() + store().symbols()))


# -- the Backtest page ---------------------------------------------------------------------
BT_JOB = "bt_job"  # the backtest being run a slice at a time: dict (symbols, dates, schemas, settings, keys)
BT_SHOWN = "bt_shown"  # run keys of the backtest(s) on screen, one per preset
BT_RESULTS = "bt_results"  # run_key -> core.BacktestResult already built this session
BT_DETAILS_CUE = "bt_details_cue"  # Backtest: the browser says a run's figures are drawn, so the rest may come
BT_LOAD_CODE = "bt_load_code"  # Backtest: the component that has the browser load the figures' code early
BT_SYMBOL = "bt_symbol"
BT_MORE = "bt_more_symbols"  # the other symbols of a portfolio backtest (one book with BT_SYMBOL)
BT_START = "bt_start"  # the first day of the backtest (a date box)
BT_END = "bt_end"  # its last day
BT_ALLOW = "bt_allow_book"  # add the book's symbols to each preset's allowed_symbols for this run
BT_PRESET = "bt_preset"
BT_COMPARE = "bt_compare"
BT_AGENTS = "bt_agents"
BT_DEPTH = "bt_depth"
BT_CAPITAL = "bt_capital"
BT_FEE = "bt_fee_bps"
BT_SLIPPAGE = "bt_slippage_bps"
BT_HOLD = "bt_max_hold_days"
BT_CONFIRM = "bt_confirm_cost"
BT_RUN = "bt_run"
BT_CANCEL = "bt_cancel"
BT_PAST = "bt_past"
BT_PICK = "bt_pick"  # the job Past runs selects on its next draw: the run that just finished
BT_OPEN = "bt_open"
BT_RESUME = "bt_resume"
BT_RESTORE = "bt_restore"  # a past run's form, put back into the widgets on the next run (Open, Resume)
BT_AUTORUN = "bt_autorun"  # True: start the restored form's run as soon as the page has drawn it (Resume)
BT_BUY_HOLD = "bt_buy_hold"  # show buy-and-hold on the return chart
BT_WHATIF_CHALLENGE = "bt_whatif.challenge"  # + ".<run_key>": What each rule costs, per shown run
BT_WHATIF_RUN = "bt_whatif.run"
BT_WHATIF_CANCEL = "bt_whatif.cancel"
BT_SENS_LIMIT = "bt_whatif.sens_limit"
BT_SENS_RUN = "bt_whatif.sens_run"
BT_FRONTIER_LIMITS = "bt_whatif.frontier_limits"
BT_FRONTIER_RUN = "bt_whatif.frontier_run"
BT_FRONTIER_PICK = "bt_whatif.frontier_pick"
BT_FRONTIER_NAME = "bt_whatif.frontier_name"
BT_FRONTIER_SAVE = "bt_whatif.frontier_save"
BT_CH = "bt_ch."  # prefix: the challenge panel's inputs, e.g. "bt_ch.target", "bt_ch.moderate.max_drawdown_pct"
