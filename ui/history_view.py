"""History's table and exports: what a trader scans for, in the order they scan for it.

The market time first (what the trade decided on), the run time beside it, the outcome, the
symbol, the preset, the trade of the last round (side, size, entry, stop, target), then why:
the violations that stand and the ones an earlier round had that the last one fixed.
"""

from __future__ import annotations

import re
from datetime import date

import pandas as pd
import streamlit as st

from core.exports import safe_csv
from core.journal.history import HistoryFilter


EARLIEST, LATEST = date(1990, 1, 1), date(2100, 1, 1)
"""The date filter's reach: market data (and backtests) go back decades, beyond the widget's default ten years."""

DATES_BY = {"market": "Market date (ET)", "run": "Run time (UTC)"}
"""What the date filter and the order mean; the keys are core.store.DATES_BY's."""

COLUMNS = {
    "market": st.column_config.TextColumn("market (ET)", help="The market time the exchange decided on, Eastern."),
    "run": st.column_config.TextColumn("run (UTC)", help="When the exchange was run."),
    "outcome": st.column_config.TextColumn("outcome", width=110),
    "symbol": st.column_config.TextColumn("symbol"),
    "preset": st.column_config.TextColumn("preset", help="The preset the Coach checked against; 'edited' for an "
                                                         "edited schema that matches no preset."),
    "side": st.column_config.TextColumn("side", help="The last round's trade; +N: more actions in that proposal."),
    "size": st.column_config.TextColumn("size %", alignment="right", help="Percent of equity."),
    "entry": st.column_config.TextColumn("entry", alignment="right"),
    "stop": st.column_config.TextColumn("stop", alignment="right"),
    "target": st.column_config.TextColumn("target", alignment="right"),
    "rounds": st.column_config.NumberColumn("rounds", format="%d"),
    "runs": st.column_config.TextColumn("runs", help="Exchanges run as one group (Run k times): how many, and how "
                                                     "many of them ended on the most common outcome. Pick the row "
                                                     "to open the group."),
    "violations": st.column_config.TextColumn("violations", width="medium",
                                              help="Standing in the last round; 'fixed:' ones an earlier round had."),
    "reasoning": st.column_config.TextColumn(
        "reasoning", alignment="right", help="How faithful the Player's reasoning was to its own trade: the share of the "
                                         "numbers and sides it stated that its actions do, in its worst round (1.00: "
                                         "all of them; blank: it stated none)."),
    "reason": st.column_config.TextColumn("reason", help="Why the exchange ended, when it did not approve."),
    "strategy": st.column_config.TextColumn("strategy"),
    "tokens": st.column_config.NumberColumn("tokens", format="%,d"),
    "cost": st.column_config.TextColumn("cost $", alignment="right"),
    "player": st.column_config.TextColumn("player", help="Who played the Player: house-player, claude-player, your "
                                          "own agent, or external: <client> for an agent that played over MCP."),
    "run_id": st.column_config.TextColumn("run id", width="small"),
}


def _violations(standing: str | None, fixed: str | None) -> str:
    parts = [standing] if standing else []
    if fixed:
        parts.append(f"fixed: {fixed}")
    return " · ".join(parts)


def _runs(row: dict, groups: dict[str, list[str]] | None) -> str:
    """A group's row: '5 runs · APPROVE 4/5'; in an export of every exchange, the group it belongs to."""
    group = row.get("repeat_id")
    if not group:
        return ""
    if groups is None or group not in groups:
        return f"group {group[:8]}"
    outcomes = groups[group]
    top = max(set(outcomes), key=outcomes.count)
    return f"{len(outcomes)} runs · {top} {outcomes.count(top)}/{len(outcomes)}"


def figures(rows: list[dict], groups: dict[str, list[str]] | None = None) -> pd.DataFrame:
    """The rows of Store.list_exchanges as History shows them, numbers as numbers (size in %), missing as None.
    `groups` (repeat_id -> the group's outcomes) marks the rows that stand for a group."""
    return pd.DataFrame([{
        "market": (r["market_time"] or "")[:16].replace("T", " "),
        "run": _utc_minutes(r["timestamp"]),
        "outcome": r["outcome"], "runs": _runs(r, groups), "symbol": r["symbol"], "preset": r["preset"] or "", "side": r["side"] or "",
        "size": None if r["size_pct"] is None else round(r["size_pct"] * 100, 4),
        "entry": r["entry"], "stop": r["stop"], "target": r["target"],
        "rounds": r["rounds_taken"], "violations": _violations(r["violations"], r["fixed"]),
        "reasoning": r["reasoning_score"], "reason": r["termination_reason"] or "", "strategy": r["strategy_id"] or "",
        "tokens": r["total_tokens"], "cost": r["cost_usd"], "player": r["player"], "run_id": r["run_id"],
    } for r in rows], columns=list(COLUMNS))


SHOWN = {"size": "{:,.2f}", "entry": "{:,.2f}", "stop": "{:,.2f}", "target": "{:,.2f}", "reasoning": "{:.2f}",
         "cost": "{:.4f}"}
"""How the table writes the figures a row may lack (a hold, a breaker, an ERROR): a missing one is an empty
cell, never a grey "None" (a number column would show one)."""


def table(rows: list[dict], groups: dict[str, list[str]] | None = None) -> pd.DataFrame:
    """The rows as History's table shows them, one column per COLUMNS entry (`groups`: see figures)."""
    frame = figures(rows, groups)
    for column, form in SHOWN.items():
        frame[column] = [("" if value is None or pd.isna(value) else form.format(value)) for value in frame[column]]
    return frame


def _utc_minutes(stamp: str) -> str:
    return pd.Timestamp(stamp).tz_convert("UTC").strftime("%Y-%m-%d %H:%M") if stamp else ""


def csv(rows: list[dict]) -> str:
    """What the table shows, headed by its labels (the unit in the header: size %), numbers in full for a
    spreadsheet, a missing figure as an empty cell."""
    frame = figures(rows)
    return safe_csv(frame.rename(columns={k: c["label"] for k, c in COLUMNS.items()}))


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.=-]+", "-", text).strip("-")


def csv_name(matching: HistoryFilter) -> str:
    """exchanges_<what the filter picks>.csv, e.g. exchanges_AMZN_APPROVE_market-2021-03-01-to-2021-03-31.csv."""
    parts = []
    for chosen in (matching.symbol, matching.outcome, matching.strategy, matching.player):
        parts.extend(_slug(v) for v in ([chosen] if isinstance(chosen, str) else chosen or []))
    since, until = matching.since, matching.until
    if since:
        span = str(since) if until in (None, since) else f"{since}-to-{until}"
        parts.append(f"{matching.dates_by}-{span}")
    if matching.text:
        parts.append("matching-" + _slug(matching.text)[:30])
    if matching.unfaithful:
        parts.append("unfaithful")
    return "exchanges_" + ("_".join(p for p in parts if p) or "all") + ".csv"


def label(row: dict) -> str:
    """One exchange in a picker: market time, symbol, outcome, run id."""
    return f"{(row['market_time'] or '')[:16].replace('T', ' ')} ET · {row['symbol']} · {row['outcome']} · {row['run_id'][:8]}"
