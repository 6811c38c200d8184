"""The constraint schema as widgets: a control per field, the diff and the derive evidence.

The widgets' state *is* the schema being edited: `current()` reads it, and the live JSON, the diff,
Save and "Use in Trade Review" all call it after the widgets have taken the latest change, so
what is shown is what is saved and pushed. `st.session_state[EDITOR]` keeps only a copy of the
last schema drawn, to refill the widgets after a visit to another page (Streamlit forgets them).
Percentages are shown as % and stored as fractions; validation is always `core.parse_constraints`.
"""

from __future__ import annotations

from datetime import time
from typing import NamedTuple, get_args

import pandas as pd
import streamlit as st

import core
import core.exchange.schema
from core.exchange.schema import TIER_CONDITIONS, TIER_LIMITS, VolatilityRegime
from ui import session
from ui.text import literal

EDITOR = session.EDITOR


class Knob(NamedTuple):
    """A numeric field's slider: its words, usual range and step (in shown units), decimals shown."""

    words: str
    low: float
    high: float
    step: float
    decimals: int
    percent: bool = False  # stored as a fraction, shown as a percentage


# A value outside the usual range (a preset, an import) widens it; one with more decimals is shown with them.
KNOBS = {
    "max_position_pct": Knob("Largest position in one symbol", 0.5, 100.0, 0.1, 1, True),
    "max_single_trade_pct": Knob("Largest single trade", 0.1, 25.0, 0.1, 1, True),
    "max_leverage": Knob("Most leverage", 0.1, 10.0, 0.1, 1),
    "max_drawdown_pct": Knob("Largest drawdown from the peak", 0.5, 50.0, 0.1, 1, True),
    "max_daily_loss_pct": Knob("Largest loss in a day", 0.1, 10.0, 0.1, 1, True),
    "consistency_rule_pct": Knob("Most of the total profit in one day", 1.0, 100.0, 1.0, 1, True),
    "max_open_positions": Knob("Most open positions", 1, 20, 1, 0),
    "min_risk_reward": Knob("Smallest reward-to-risk ratio", 0.1, 10.0, 0.05, 2),
    "max_rounds": Knob("Most rounds per exchange", 1, 10, 1, 0),
    "min_stop_atr_multiple": Knob("Smallest stop, in ATRs", 0.1, 10.0, 0.1, 1),
}
WORDS = {
    **{field: knob.words for field, knob in KNOBS.items()},
    "trading_cutoff_time": "No new exchange from, ET",
    "allowed_symbols": "Symbols the Player may trade",
    "abort_on_violations": "Violations that end the exchange at once",
    "tiers": "Limits that change with the book",
}
KNOWN_SYMBOLS = ["AMZN", "MSFT", "TSLA", "BTC-USD", "AAPL", "NVDA", "SPY", "QQQ", "ES=F"]


def label(field: str) -> str:
    """A field in words with its name beside: 'Largest single trade (max_single_trade_pct)'."""
    return f"{WORDS[field]} ({field})"


def widget(field: str) -> str:
    return session.CONSTRAINT_FIELD + field


def help_for(field: str) -> str:
    return core.Constraints.model_fields[field].description or ""


def _integer(field: str) -> bool:
    return KNOBS[field].decimals == 0


def _to_widget(field: str, value: float) -> float | int:
    if _integer(field):
        return int(value)
    return round(value * 100, 10) if KNOBS[field].percent else float(value)


def _from_widget(field: str, value: float | int) -> float | int:
    if _integer(field):
        return int(value)
    return round(value / 100, 10) if KNOBS[field].percent else float(value)


def _decimals(field: str, shown: float) -> int:
    """The knob's decimals, or as many more as `shown` needs (up to 6), so the slider never rounds a value."""
    for digits in range(KNOBS[field].decimals, 7):
        if abs(round(shown, digits) - shown) < 1e-9:
            return digits
    return 6


def shown(field: str, value) -> str:
    """A schema value as the editor shows it: 5.0 %, 1.50, 16:20, a list, or 'off'."""
    if value is None:
        return "off" if field == "min_stop_atr_multiple" else "none"
    if field == "tiers":
        return "; ".join(tier_text(tier) for tier in value) or "—"
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "—"
    if field in KNOBS and isinstance(value, (int, float)) and not isinstance(value, bool):
        number = _to_widget(field, value)
        text = f"{number:.{_decimals(field, number)}f}" if not _integer(field) else str(number)
        return text + (" %" if KNOBS[field].percent else "")
    return str(value)


def rounded(values: dict, unchanged_from: dict | None = None) -> dict:
    """A schema with its numbers at the knobs' decimals (a derived R/R of 1.5009 becomes 1.50).

    Fields equal to `unchanged_from` keep their exact value: only what changed is rounded.
    """
    out = dict(values)
    for field, knob in KNOBS.items():
        if unchanged_from is not None and unchanged_from.get(field) == out.get(field):
            continue
        if isinstance(out.get(field), float):
            out[field] = _from_widget(field, round(_to_widget(field, out[field]), knob.decimals))
    return out


def load(values: dict) -> None:
    """Set every widget from `values` (call before the widgets are drawn)."""
    state = st.session_state
    state[EDITOR] = dict(values)
    decimals = {}
    for field in KNOBS:
        value = values.get(field)
        if field == "min_stop_atr_multiple":
            state[session.C_ATR_OFF] = value is None
            value = 1.0 if value is None else value
        state[widget(field)] = _to_widget(field, value)
        decimals[field] = _decimals(field, state[widget(field)]) if not _integer(field) else 0
    state[session.C_DECIMALS] = decimals
    cutoff = core.exchange.schema.parse_cutoff(values.get("trading_cutoff_time"))
    state[session.C_NO_CUTOFF] = cutoff is None
    state[widget("trading_cutoff_time")] = cutoff or time(16, 0)
    state[widget("allowed_symbols")] = list(values.get("allowed_symbols") or [])
    state[widget("abort_on_violations")] = list(values.get("abort_on_violations") or [])
    _load_tiers(values.get("tiers") or [])


def ensure_loaded(default: dict) -> None:
    """On a first visit (or after another page made Streamlit forget the widgets) fill them again."""
    if EDITOR not in st.session_state:
        load(default)
    elif any(widget(field) not in st.session_state for field in KNOBS):
        load(st.session_state[EDITOR])


def current() -> dict:
    """The schema the widgets hold now, field by field (not yet validated): the one source of truth."""
    state = st.session_state
    values: dict = {field: _from_widget(field, state[widget(field)]) for field in KNOBS}
    if state[session.C_ATR_OFF]:
        values["min_stop_atr_multiple"] = None
    cutoff = state[widget("trading_cutoff_time")]
    values["trading_cutoff_time"] = None if state[session.C_NO_CUTOFF] or cutoff is None else cutoff.strftime("%H:%M")
    values["allowed_symbols"] = list(state[widget("allowed_symbols")])
    values["abort_on_violations"] = list(state[widget("abort_on_violations")])
    values["tiers"] = _current_tiers()
    # Without tiers the schema reads as it did before tiers existed (the JSON view, export and diff).
    ordered = {name: values[name] for name in core.Constraints.model_fields if name != "tiers" or values[name]}
    state[EDITOR] = ordered
    return ordered


def _slider(container, field: str, disabled: bool = False) -> None:
    knob = KNOBS[field]
    state = st.session_state
    value = state.get(widget(field), knob.low)
    decimals = state.get(session.C_DECIMALS, {}).get(field, knob.decimals)
    fmt = None if _integer(field) else f"%.{decimals}f" + (" %%" if knob.percent else "")
    number = int if _integer(field) else float
    container.slider(label(field), min_value=number(min(knob.low, value)), max_value=number(max(knob.high, value)),
                     step=number(knob.step), format=fmt, key=widget(field), disabled=disabled, help=help_for(field))


def controls() -> None:
    """Draw a control for every field; read the schema they hold with `current()`."""
    state = st.session_state
    for field in KNOBS:
        if field != "min_stop_atr_multiple":
            _slider(st, field)
    left, right = st.columns([1, 2], vertical_alignment="bottom")
    off = left.checkbox("No ATR stop rule", key=session.C_ATR_OFF, help="min_stop_atr_multiple = null")
    _slider(right, "min_stop_atr_multiple", disabled=off)

    left, right = st.columns([1, 2], vertical_alignment="bottom")
    no_cutoff = left.checkbox("No cutoff", key=session.C_NO_CUTOFF, help="trading_cutoff_time = null")
    right.time_input(label("trading_cutoff_time"), key=widget("trading_cutoff_time"), step=300, disabled=no_cutoff,
                     help=help_for("trading_cutoff_time"))

    chosen = state.get(widget("allowed_symbols"), [])
    options = list(dict.fromkeys(KNOWN_SYMBOLS + session.known_symbols() + list(chosen)))
    st.multiselect(label("allowed_symbols"), options, key=widget("allowed_symbols"), accept_new_options=True,
                   help=help_for("allowed_symbols") + " Type a ticker that is not listed and press Enter to add it.")
    st.multiselect(label("abort_on_violations"), list(core.RULE_NAMES), key=widget("abort_on_violations"),
                   help=help_for("abort_on_violations"))


# -- tiers: limits that change with the book ----------------------------------------------------------

CONDITION_WORDS = {"drawdown_pct_at_least": "Drawdown from the peak at least (%)",
                   "daily_loss_pct_at_least": "Today's loss at least (%)",
                   "profit_pct_at_least": "Profit since the start at least (%)",
                   "volatility_regime": "Volatility regime is"}
FIRST_THRESHOLD = {"drawdown_pct_at_least": 0.05, "daily_loss_pct_at_least": 0.02, "profit_pct_at_least": 0.08,
                   "volatility_regime": "high"}
REGIMES = list(get_args(VolatilityRegime))


def _tier_key(i: int, part: str) -> str:
    return widget(f"tier{i}.{part}")


def _load_tiers(tiers: list[dict]) -> None:
    """Set the tier widgets from `tiers` (the list is kept as the tiers' shape: which limits each sets)."""
    state = st.session_state
    state[widget("tiers")] = [{"when": dict(t.get("when") or {}), "set": dict(t.get("set") or {})} for t in tiers]
    for i, tier in enumerate(state[widget("tiers")]):
        condition = next(iter(tier["when"]), "drawdown_pct_at_least")
        threshold = tier["when"].get(condition)
        state[_tier_key(i, "when")] = condition
        if condition == "volatility_regime":
            state[_tier_key(i, "regime")] = threshold if threshold in REGIMES else "high"
        elif isinstance(threshold, (int, float)):
            state[_tier_key(i, "at")] = round(threshold * 100, 10)
        for limit, value in tier["set"].items():
            if limit in KNOBS and isinstance(value, (int, float)):
                state[_tier_key(i, limit)] = _to_widget(limit, value)


def _current_tiers() -> list[dict]:
    """The tiers the widgets hold now (not yet validated), in the schema's JSON form."""
    state = st.session_state
    tiers = []
    for i, tier in enumerate(state.get(widget("tiers"), [])):
        condition = state.get(_tier_key(i, "when"), next(iter(tier["when"]), "drawdown_pct_at_least"))
        if condition == "volatility_regime":
            threshold = state.get(_tier_key(i, "regime"), tier["when"].get(condition, "high"))
        else:
            shown_at = state.get(_tier_key(i, "at"))
            threshold = round(shown_at / 100, 10) if shown_at is not None else tier["when"].get(condition)
        values = {limit: _from_widget(limit, state[_tier_key(i, limit)]) if _tier_key(i, limit) in state else value
                  for limit, value in tier["set"].items()}
        tiers.append({"when": {condition: threshold}, "set": values})
    state[widget("tiers")] = tiers
    return tiers


def _change_tiers(change, *args) -> None:
    """A button's change to the tiers' shape: read the widgets, change the list, set every tier widget again."""
    tiers = _current_tiers()
    change(tiers, *args)  # first: a change may read the widget that asked for it
    for i in range(len(tiers) + 2):  # a removed tier's widgets go too, so a later one never inherits them
        for key in [k for k in st.session_state if str(k).startswith(_tier_key(i, ""))]:
            del st.session_state[key]
    _load_tiers(tiers)


def _add_tier(tiers: list[dict]) -> None:
    base = st.session_state.get(EDITOR, {}).get("max_single_trade_pct", 0.05)
    tiers.append({"when": {"drawdown_pct_at_least": 0.05}, "set": {"max_single_trade_pct": round(base / 2, 4)}})


def _remove_tier(tiers: list[dict], i: int) -> None:
    del tiers[i]


def _set_condition(tiers: list[dict], i: int) -> None:
    condition = st.session_state[_tier_key(i, "when")]
    tiers[i]["when"] = {condition: FIRST_THRESHOLD[condition]}


def _add_limit(tiers: list[dict], i: int) -> None:
    limit = st.session_state.get(_tier_key(i, "add"))
    if limit:
        base = st.session_state.get(EDITOR, {}).get(limit)
        tiers[i]["set"][limit] = base if base is not None else 1.0  # only min_stop_atr_multiple may be off (None)


def _drop_limit(tiers: list[dict], i: int, limit: str) -> None:
    tiers[i]["set"].pop(limit, None)


def _tier(i: int, tier: dict) -> None:
    """One tier: its condition and threshold, a slider per limit it sets, and buttons to change it."""
    state = st.session_state
    head, threshold, remove = st.columns([3, 2, 1], vertical_alignment="bottom")
    head.selectbox(f"Tier {i + 1}: in force while", list(TIER_CONDITIONS), key=_tier_key(i, "when"),
                   format_func=CONDITION_WORDS.get, on_change=_change_tiers, args=(_set_condition, i))
    if state[_tier_key(i, "when")] == "volatility_regime":
        threshold.selectbox("Regime", REGIMES, key=_tier_key(i, "regime"))
    else:
        threshold.number_input("Threshold (%)", min_value=0.01, max_value=1000.0, step=0.5, format="%.2f",
                               key=_tier_key(i, "at"))
    remove.button("Remove tier", key=_tier_key(i, "remove"), on_click=_change_tiers, args=(_remove_tier, i),
                  icon=":material/delete:")
    for limit in tier["set"]:
        slider, drop = st.columns([6, 1], vertical_alignment="bottom")
        knob = KNOBS[limit]
        value = state.get(_tier_key(i, limit), knob.low)
        number = int if _integer(limit) else float
        fmt = None if _integer(limit) else f"%.{_decimals(limit, value)}f" + (" %%" if knob.percent else "")
        slider.slider(label(limit), min_value=number(min(knob.low, value)), max_value=number(max(knob.high, value)),
                      step=number(knob.step), format=fmt, key=_tier_key(i, limit), help=help_for(limit))
        drop.button("Drop", key=_tier_key(i, f"drop.{limit}"), on_click=_change_tiers, args=(_drop_limit, i, limit),
                    help=f"Stop setting {limit} in this tier")
    unset = [limit for limit in TIER_LIMITS if limit not in tier["set"]]
    if unset:
        st.selectbox("Add a limit to this tier", unset, index=None, key=_tier_key(i, "add"),
                     placeholder="Choose a limit…", on_change=_change_tiers, args=(_add_limit, i))


def tier_controls() -> None:
    """The tiers: limits that apply while the book is down, losing today, in profit, or in a volatility regime."""
    st.subheader("Tiers: limits that change with the book")
    st.caption("While a tier's condition holds, the limits it sets replace the ones above; where several tiers "
               "hold, the strictest value wins. The conditions are read from the portfolio (drawdown from its "
               "peak, today's loss, profit since the start) or the world's volatility regime, as of the "
               "decision: nothing later.")
    for i, tier in enumerate(st.session_state.get(widget("tiers"), [])):
        with st.container(border=True):
            _tier(i, tier)
    st.button("Add a tier", key=widget("tiers.add"), on_click=_change_tiers, args=(_add_tier,),
              icon=":material/add:")


def tier_text(tier: dict) -> str:
    """A tier as the diff shows it: 'drawdown ≥ 5.00 %: max_single_trade_pct 1.0 %'."""
    (condition, threshold), = (tier.get("when") or {"?": None}).items()
    if condition == "volatility_regime":
        when = f"volatility {threshold}"
    else:
        words = condition.removesuffix("_pct_at_least").replace("_", " ")
        when = f"{words} ≥ {threshold * 100:.2f} %" if isinstance(threshold, (int, float)) else f"{words} ≥ ?"
    sets = ", ".join(f"{limit} {shown(limit, value)}" for limit, value in (tier.get("set") or {}).items())
    return f"{when}: {sets or 'nothing'}"


def diff_frame(before: dict, after: dict) -> pd.DataFrame:
    """The fields whose values differ (indexed by name), in words with the name beside, shown as the editor shows them."""
    def value(schema: dict, f: str):
        return schema.get(f, [] if f == "tiers" else None)  # a schema without tiers has none

    names = [f for f in core.Constraints.model_fields if value(before, f) != value(after, f)]
    rows = [{"field": label(f), "before": shown(f, value(before, f)), "after": shown(f, value(after, f))}
            for f in names]
    return pd.DataFrame(rows, columns=["field", "before", "after"], index=pd.Index(names, dtype=object))


def evidence_line(field: str, facts: dict) -> str:
    """One sentence of evidence for a derived field, in the trader's words."""
    if field == "min_risk_reward":
        if "too_thin" in facts:
            return f"Too thin: {facts['too_thin']}."
        return (f"25th percentile of the R/R of {facts['sample_size']} approved entries = {facts['percentile_25']:.2f} "
                f"(min {facts['min']:.2f}, median {facts['median']:.2f}, max {facts['max']:.2f}).")
    if field == "allowed_symbols":
        symbols = facts.get("symbols", {})
        kept = [s for s, c in symbols.items() if c["allowed"]]
        text = f"{facts['rule']}: kept {', '.join(kept) or 'none'} of {len(symbols)} symbols seen."
        return text + (f" Too thin: {facts['too_thin']}." if "too_thin" in facts else "")
    return str(facts)


def confidence_frame(facts: dict) -> pd.DataFrame:
    """Per-symbol approval confidence behind allowed_symbols."""
    return pd.DataFrame([{"symbol": s, "proposed entries": c["proposed"], "approved": c["approved"],
                          "confidence": c["confidence"], "enough proposals": "yes" if c["counted"] else "no",
                          "allowed": "✓ yes" if c["allowed"] else "✗ no"} for s, c in facts.get("symbols", {}).items()],
                        columns=["symbol", "proposed entries", "approved", "confidence", "enough proposals", "allowed"])


def errors(message: str) -> None:
    """Validation problems, one line each, naming the field."""
    st.error("**The schema is not valid:**\n\n" + "\n".join(f"- {literal(line.strip())}" for line in message.split(";")),
             icon=":material/error:")
