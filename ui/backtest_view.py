"""The Backtest page's tables and sentences: numbers formatted for people, a run that made no trade
explained, and the past runs labelled with their true state."""

from __future__ import annotations

import math
import time

import pandas as pd
import streamlit as st

from core.backtest import limits
from core.backtest import result as metrics
from core.backtest.job import PastRun
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

LIMITS = {  # short headers, the meaning in each help: four counts beside a limit's name fit a phone's width
    "rejected": st.column_config.NumberColumn("rejected", format="%d", width="small",
                                              help="proposals it rejected"),
    "aborted": st.column_config.NumberColumn("aborted", format="%d", width="small", help="exchanges it aborted"),
    "unfilled": st.column_config.NumberColumn("unfilled", format="%d", width="small",
                                              help="approved entries it refused at the fill"),
    "days_blocked": st.column_config.NumberColumn("days", format="%d", width="small",
                                                  help="days it kept an entry out of the book"),
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


def listed(items: list[str]) -> str:
    """Names as a sentence lists them: 'A', 'A and B', 'A, B and C'."""
    items = [literal(i) for i in items]
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def tradable(result) -> list[str]:
    """The symbols of a run's book its constraints allowed it to trade."""
    allowed = result.spec.preset.constraints.allowed_symbols if result.spec else result.symbols
    return [s for s in result.symbols if s in allowed]


def different_books(results: dict) -> str | None:
    """A sentence when the compared runs could trade different symbols (their allowed_symbols differ on the
    book), else None: such a comparison is of different books, not of the same book under other limits."""
    books = {name: tradable(r) for name, r in results.items()}
    if len(results) < 2 or len({tuple(b) for b in books.values()}) == 1:
        return None
    return ("These presets could trade different symbols, so this compares different books: " + "; ".join(
        f"{literal(name)} {listed(b) if b else 'none'}" for name, b in books.items()) + ".")


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
    if len(results) > 1:  # first, beside the labels: on a phone the presets' columns scroll, the verdict stays
        better = [literal(v) if v not in ("", "=", metrics.NOT_COMPARABLE) else v for v in table["better"]]
        shown.insert(0, "better", better)
    return shown.rename(index=metrics.METRIC_LABELS)


def why_no_trades(result) -> str:
    """Why a run made no trade, in one markdown sentence: its exchanges by outcome and the limits that blocked most."""
    counts = metrics.outcome_counts(result.days)
    if not len(counts):
        return "No trade: no day was decided."
    outcomes = ", ".join(f"{n:,d} {literal(str(outcome))}" for outcome, n in counts.items())
    text = f"**No trade.** {int(counts.sum()):,d} exchanges: {outcomes}."
    blockers = limits.top_blockers(result.limits)
    if len(blockers):
        text += " What blocked the entries most: " + ", ".join(
            f"`{name}` ({n:,d} proposals)" for name, n in blockers.items()) + "."
    return text


STATE_ICONS = {"finished": "✓", "running": "…", "interrupted": "⚠", "cancelled": "✕"}


def past_label(entry: PastRun) -> str:
    """One line per past run: state, symbols, dates, preset(s) with their return, agents, days done."""
    spec = entry.spec
    returns = []
    for name, run in zip(entry.presets, entry.runs):
        ret = run["metrics"].get("total_return_pct")
        returns.append(f"{name} {ret:+.2f} %" if ret is not None and entry.state == "finished" else name)
    presets = " vs ".join(returns + entry.presets[len(entry.runs):])
    done = " · ".join(days_done(r["days_done"], r["days_total"]) for r in entry.runs) or "no day decided"
    return (f"{STATE_ICONS[entry.state]} {entry.state} · {spec.symbol} {spec.start} → {spec.end} · "
            f"{presets} · {AGENTS.get(spec.agents, spec.agents)} · {done}")


AGENTS = {"house": "House agents (offline, free)", "claude": "Claude (your key from Settings)"}
"""The agents choice of the page, as a spec names them (an installed agent goes by its own name)."""


def days_done(done: int, total: int) -> str:
    """How far a run got, in days (a portfolio's exchanges per day are not days): '320 of 3,260 days'."""
    return f"{done:,d} of {total:,d} days"


def data_note(result) -> str:
    """Where the bars came from, in one markdown line. yfinance's own guess for a download it could not make
    ("possibly delisted", its words offline too) is not repeated: a symbol served from the shipped data is not
    delisted, it was merely not downloaded."""
    return f"Bars from **{literal(result.source)}**: {literal(_without_guesses(result.note))}."


_FAILED = "yfinance failed ("
_UNREACHED = "yfinance could not download it (offline, or a name it does not know)"


def _without_guesses(note: str) -> str:
    """`note` with each "yfinance failed (...)" that guesses "delisted" said plainly (its text may hold brackets)."""
    out, i = [], 0
    while (j := note.find(_FAILED, i)) >= 0:
        k, depth = j + len(_FAILED), 1
        while k < len(note) and depth:
            depth += {"(": 1, ")": -1}.get(note[k], 0)
            k += 1
        out += [note[i:j], _UNREACHED if "delisted" in note[j:k] else note[j:k]]
        i = k
    return "".join(out) + note[i:]


def why_idle(result, symbol: str) -> str:
    """Why a symbol of a run never traded, in one markdown sentence: not allowed, else its exchanges by outcome
    and the reason they ended most often."""
    name = literal(result.preset)
    if symbol not in tradable(result):
        return f"No trade in {literal(symbol)}: it is not in {name}'s allowed_symbols, so it never could."
    mine = result.days[result.days["symbol"] == symbol]
    counts = metrics.outcome_counts(mine)
    if not len(counts):
        return f"No trade in {literal(symbol)}: no day of it was decided."
    text = f"No trade in {literal(symbol)}: {int(counts.sum()):,d} exchanges, " + ", ".join(
        f"{n:,d} {literal(str(outcome))}" for outcome, n in counts.items()) + "."
    reasons = mine.loc[mine["reason"].astype(bool), "reason"].value_counts()
    if len(reasons):
        text += f" Most often ended by `{literal(str(reasons.index[0]))}` ({int(reasons.iloc[0]):,d})."
    return text


PROGRESS_EVERY_S = 0.1
"""The progress bar moves at most this often. Each move is a message that the browser draws on the same two cores
the slice decides on: a move per day was 250 for a year of days, and a few a second show the same progress."""


def progress(bar):
    """A backtest's progress callback (n, total, day) that moves `bar` at most every PROGRESS_EVERY_S. A click
    elsewhere on the page still stops the slice at the bar's next move (Streamlit stops a script at its next st call)."""
    moved = 0.0

    def move(n: int, total: int, day) -> None:
        nonlocal moved
        if (now := time.monotonic()) - moved >= PROGRESS_EVERY_S:
            moved = now
            bar.progress(min(1.0, (n + 1) / total), text=f"day {n + 1} of {total}: {day:%d %b %Y}")

    return move
