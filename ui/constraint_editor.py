"""The constraint schema as widgets: a control per field, the diff and the derive evidence.

The editor's working copy is `st.session_state[EDITOR]` (a plain dict, possibly invalid); the
widgets are filled from it when a preset, an import or a derived schema is loaded, and it is
rebuilt from the widgets on every run. Validation is always `core.parse_constraints`.
"""

from __future__ import annotations

from datetime import time

import pandas as pd
import streamlit as st

import core
from ui import session
from ui.exchange_view import literal

EDITOR = session.EDITOR

# field: (min, max, step, format): the usual range; a value outside it (a preset, an import) widens it.
SLIDERS = {
    "max_position_pct": (0.01, 1.0, 0.01, "%.2f"),
    "max_single_trade_pct": (0.005, 1.0, 0.005, "%.3f"),
    "max_leverage": (0.1, 10.0, 0.1, "%.1f"),
    "max_drawdown_pct": (0.01, 1.0, 0.01, "%.2f"),
    "max_daily_loss_pct": (0.005, 1.0, 0.005, "%.3f"),
    "consistency_rule_pct": (0.05, 1.0, 0.05, "%.2f"),
    "max_open_positions": (1, 20, 1, None),
    "min_risk_reward": (0.1, 10.0, 0.1, "%.2f"),
    "max_rounds": (1, 10, 1, None),
    "min_stop_atr_multiple": (0.1, 10.0, 0.1, "%.1f"),
}
KNOWN_SYMBOLS = ["AMZN", "MSFT", "TSLA", "BTC-USD", "AAPL", "NVDA", "SPY", "QQQ", "ES=F"]


def widget(field: str) -> str:
    return session.CONSTRAINT_FIELD + field


def help_for(field: str) -> str:
    return core.Constraints.model_fields[field].description or ""


def load(values: dict) -> None:
    """Make `values` the working copy and set every widget from it (call before the widgets are drawn)."""
    st.session_state[EDITOR] = dict(values)
    state = st.session_state
    for field in SLIDERS:
        value = values.get(field)
        if field == "min_stop_atr_multiple":
            state[session.C_ATR_OFF] = value is None
            value = 1.0 if value is None else value
        state[widget(field)] = int(value) if SLIDERS[field][3] is None else float(value)
    cutoff = core.schema.parse_cutoff(values.get("trading_cutoff_time"))
    state[session.C_NO_CUTOFF] = cutoff is None
    state[widget("trading_cutoff_time")] = cutoff or time(16, 0)
    state[widget("allowed_symbols")] = list(values.get("allowed_symbols") or [])
    state[widget("abort_on_violations")] = list(values.get("abort_on_violations") or [])


def ensure_loaded(default: dict) -> None:
    """On a first visit (or after another page made Streamlit forget the widgets) fill them again."""
    if EDITOR not in st.session_state:
        load(default)
    elif widget("max_leverage") not in st.session_state:
        load(st.session_state[EDITOR])


def controls() -> dict:
    """Draw a control for every field; return the candidate schema (not yet validated)."""
    state = st.session_state
    values: dict = {}
    for field, (low, high, step, fmt) in SLIDERS.items():
        if field == "min_stop_atr_multiple":
            continue
        current = state.get(widget(field), low)
        values[field] = st.slider(field, min_value=min(low, current), max_value=max(high, current), step=step, format=fmt,
                                  key=widget(field), help=help_for(field))
    left, right = st.columns([1, 2])
    off = left.checkbox("No ATR stop rule", key=session.C_ATR_OFF, help="min_stop_atr_multiple = null")
    low, high, step, fmt = SLIDERS["min_stop_atr_multiple"]
    current = state.get(widget("min_stop_atr_multiple"), low)
    atr = right.slider("min_stop_atr_multiple", min_value=min(low, current), max_value=max(high, current),
                       step=step, format=fmt, key=widget("min_stop_atr_multiple"), disabled=off,
                       help=help_for("min_stop_atr_multiple"))
    values["min_stop_atr_multiple"] = None if off else atr

    left, right = st.columns([1, 2])
    no_cutoff = left.checkbox("No cutoff", key=session.C_NO_CUTOFF, help="trading_cutoff_time = null")
    cutoff = right.time_input("trading_cutoff_time (ET)", key=widget("trading_cutoff_time"), step=300,
                              disabled=no_cutoff, help=help_for("trading_cutoff_time"))
    values["trading_cutoff_time"] = None if no_cutoff else cutoff.strftime("%H:%M")

    chosen = state.get(widget("allowed_symbols"), [])
    options = list(dict.fromkeys(KNOWN_SYMBOLS + session.known_symbols() + list(chosen)))
    values["allowed_symbols"] = st.multiselect(
        "allowed_symbols", options, key=widget("allowed_symbols"), accept_new_options=True,
        help=help_for("allowed_symbols") + " Type a ticker that is not listed and press Enter to add it.")
    values["abort_on_violations"] = st.multiselect(
        "abort_on_violations", list(core.RULE_NAMES), key=widget("abort_on_violations"),
        help=help_for("abort_on_violations"))
    ordered = {name: values[name] for name in core.Constraints.model_fields}
    st.session_state[EDITOR] = ordered
    return ordered


def _shown(value) -> str:
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "—"
    return "null" if value is None else str(value)


def diff_frame(before: dict, after: dict) -> pd.DataFrame:
    """The fields whose values differ, before and after."""
    rows = [{"field": f, "before": _shown(before.get(f)), "after": _shown(after.get(f))}
            for f in core.Constraints.model_fields if before.get(f) != after.get(f)]
    return pd.DataFrame(rows, columns=["field", "before", "after"])


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
