"""The Backtest page's tables and sentences: numbers formatted for people, a run that made no trade
explained, and the past runs labelled with their true state."""

from __future__ import annotations

import math
from datetime import date

import pandas as pd
import streamlit as st

from core.backtest import result as metrics
from core.backtest.job import PastRun
from ui import session
from ui.exchange_view import literal

TRADES = {
    "symbol": st.column_config.TextColumn("symbol"),
    "side": st.column_config.TextColumn("side"),
    "size_pct": st.column_config.NumberColumn("size", format="percent", help="Fraction of equity at the entry."),
    "qty": st.column_config.NumberColumn("quantity", format="%,.2f"),
    "entry_day": st.column_config.DateColumn("entry day", format="D MMM YYYY"),
    "entry_price": st.column_config.NumberColumn("entry", format="%,.2f"),
    "stop": st.column_config.NumberColumn("stop", format="%,.2f"),
    "target": st.column_config.NumberColumn("target", format="%,.2f"),
    "exit_day": st.column_config.DateColumn("exit day", format="D MMM YYYY"),
    "exit_price": st.column_config.NumberColumn("exit", format="%,.2f"),
    "exit_reason": st.column_config.TextColumn("why it closed"),
    "bars_held": st.column_config.NumberColumn("days held", format="%d"),
    "fees": st.column_config.NumberColumn("fees ($)", format="%,.2f"),
    "pnl": st.column_config.NumberColumn("P&L after fees ($)", format="%+,.2f"),
    "return_pct": st.column_config.NumberColumn("return", format="%+.2f %%"),
    "regime": st.column_config.TextColumn("volatility"),
}
"""The trade list's columns, in the trader's words."""

BY_SYMBOL = {
    "trades": st.column_config.NumberColumn("trades", format="%d"),
    "pnl": st.column_config.NumberColumn("P&L after fees ($)", format="%+,.2f"),
    "win_rate": st.column_config.NumberColumn("win rate", format="%.0f %%"),
    "exposure_pct": st.column_config.NumberColumn("days held", format="%.0f %%",
                                                  help="Share of the days on which the symbol was held at the close."),
}

LIMITS = {
    "rejected": st.column_config.NumberColumn("proposals rejected", format="%d"),
    "aborted": st.column_config.NumberColumn("exchanges aborted", format="%d"),
    "unfilled": st.column_config.NumberColumn("refused at the fill", format="%d"),
    "days_blocked": st.column_config.NumberColumn("days it kept an entry out", format="%d"),
}

LIMIT_COUNTS = ("rejected", "aborted", "unfilled", "days_blocked")
"""What the Limits table shows: counts. What a limit cost in money is "What each rule costs" (counterfactual runs)."""

EXCEPTIONS = {
    "day": st.column_config.DateColumn("day", format="D MMM YYYY"),
    "symbol": st.column_config.TextColumn("symbol"),
    "outcome": st.column_config.TextColumn("outcome"),
    "reason": st.column_config.TextColumn("reason", width="medium"),
    "note": st.column_config.TextColumn("note", width="large"),
}

METRICS = {"better": st.column_config.TextColumn("better", help=metrics.BETTER_RULE)}
"""The side-by-side table's columns: the `better` column states its rule."""

_PERCENT = {"total_return_pct", "buy_hold_return_pct", "cagr_pct", "max_drawdown_pct", "win_rate", "approval_rate"}
_MONEY = {"cost_usd", "final_equity"}
_COUNTS = {"trades", "days_traded", "days_aborted", "days_skipped", "tokens", "days", "longest_drawdown_days",
           "recovery_days"}


def metric_text(metric: str, value) -> str:
    """One metric as a person reads it: 12.34 %, $101,234.00, 1,234, 1.52; '—' where it is not defined."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, float) and math.isinf(value):
        return "∞" if value > 0 else "−∞"
    if metric in _PERCENT:
        return f"{value:,.2f} %"
    if metric in _MONEY:
        return f"${value:,.2f}" if metric == "final_equity" else f"${value:,.4f}"
    if metric in _COUNTS:
        return f"{int(value):,d}"
    return f"{value:,.2f}"


def metrics_table(results: dict) -> pd.DataFrame:
    """The side-by-side metrics, labelled and formatted; a risk metric of a run with no trade reads
    'no trades', and the `better` column credits nobody for it."""
    table = metrics.compare_table(results)
    idle = {name for name, r in results.items() if int(r.metrics["trades"]) == 0}
    shown = pd.DataFrame(index=table.index)
    for name in results:
        shown[literal(name)] = [("no trades" if name in idle and metric in metrics.NEEDS_TRADES
                                 else metric_text(metric, value)) for metric, value in table[name].items()]
    if len(results) > 1:
        shown["better"] = [literal(v) if v not in ("", "=", metrics.NOT_COMPARABLE) else v for v in table["better"]]
    return shown.rename(index=metrics.METRIC_LABELS)


def why_no_trades(result) -> str:
    """Why a run made no trade, in one markdown sentence: its exchanges by outcome and the limits that blocked most."""
    counts = metrics.outcome_counts(result.days)
    if not len(counts):
        return "No trade: no day was decided."
    outcomes = ", ".join(f"{n:,d} {literal(str(outcome))}" for outcome, n in counts.items())
    text = f"**No trade.** {int(counts.sum()):,d} exchanges: {outcomes}."
    blockers = metrics.top_blockers(result.limits)
    if len(blockers):
        text += " What blocked the entries most: " + ", ".join(
            f"`{name}` ({n:,d} proposals)" for name, n in blockers.items()) + "."
    return text


STATE_ICONS = {"finished": "✓", "running": "…", "interrupted": "⚠", "cancelled": "✕"}


def past_label(entry: PastRun) -> str:
    """One line per past run: state, symbols, dates, preset(s) with their return, agents, days done."""
    form = entry.form
    returns = []
    for name, run in zip(form["presets"], entry.runs):
        ret = run["metrics"].get("total_return_pct")
        returns.append(f"{name} {ret:+.2f} %" if ret is not None and entry.state == "finished" else name)
    missing = form["presets"][len(entry.runs):]
    presets = " vs ".join(returns + missing)
    done = " · ".join(f"{r['days_done']}/{r['days_total']} days" for r in entry.runs) or "no day decided"
    agents = form.get("agents") or (entry.runs[0]["player"] if entry.runs else "")
    return (f"{STATE_ICONS[entry.state]} {entry.state} · {','.join(form['symbols'])} {form['start']} → {form['end']} · "
            f"{presets} · {agents} · {done}")


def missing_presets(form: dict, presets: list[str]) -> list[str]:
    """The presets of a past run that no longer exist (a custom preset deleted or renamed)."""
    return [name for name in form["presets"] if name not in presets]


def restored_form(form: dict, agent_options: list[str]) -> dict:
    """The widget values that put a past run's form back on the page, by session key."""
    chosen = form["presets"]
    values = {
        session.BT_SYMBOL: form["symbols"][0], session.BT_MORE: form["symbols"][1:],
        session.BT_START: date.fromisoformat(form["start"]), session.BT_END: date.fromisoformat(form["end"]),
        session.BT_PRESET: chosen[0], session.BT_COMPARE: chosen[1] if len(chosen) > 1 else "(none)",
        # a run started outside the page, or by agents no longer offered, comes back with the house agents
        session.BT_AGENTS: form["agents"] if form.get("agents") in agent_options else agent_options[0],
        session.BT_DEPTH: form["depth"],
    }
    for key, field in ((session.BT_CAPITAL, "capital"), (session.BT_FEE, "fee_bps"),
                       (session.BT_SLIPPAGE, "slippage_bps"), (session.BT_HOLD, "max_hold_days")):
        if field in form:
            values[key] = form[field]
    return values
