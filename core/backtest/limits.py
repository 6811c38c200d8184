"""What each limit did in a backtest, and what the entries it kept out would have made.

Each exchange's verdicts say which limits rejected or aborted a proposal; a breaker that ended the
exchange before round 1 aborted it; an entry refused at the fill was `unfilled`. A limit that acted
in an exchange that ended with no entry approved kept the agent's last entry out of the book; that
entry is then re-simulated on its own (`what_if`): filled at that day's open and exited by the same
stops, targets, holding limit and costs. Told after the run, never seen by a decision.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from core.backtest.book import Book, side_of
from core.backtest.breakdown import rows_table
from core.backtest.feed import SymbolFeed
from core.backtest.spec import Costs
from core.exchange.schema import BEFORE_ROUND_ONE, Action

LIMIT_COLUMNS = ["rejected", "aborted", "unfilled", "days_blocked", "pnl_on_blocked_days", "missed_pnl"]


def block(day: date, symbol: str, constraint: str, kind: str, entry: Action | None, equity: float,
          blocked: bool = True) -> dict:
    """One limit acting on one exchange: `kind` rejected, aborted or unfilled; `entry` the one it kept out."""
    return {"day": day, "symbol": symbol, "constraint": constraint, "kind": kind, "blocked": blocked, "entry": entry,
            "equity": equity}


def blocks_of(day: date, symbol: str, decision, equity: float) -> list[dict]:
    """What each limit did in one decided exchange (a core.backtest.engine.Decision)."""
    if decision.outcome == "APPROVE" and len(decision.verdicts) < 2:  # approved at once (most exchanges): none acted
        return []
    out = []
    if decision.outcome == "ABORT" and decision.reason in BEFORE_ROUND_ONE and not decision.verdicts:
        out.append(block(day, symbol, decision.reason, "aborted", None, equity))
    refused = [v for v in decision.verdicts if v["decision"] != "APPROVE"]
    if not refused:  # every round approved (most exchanges): no limit acted
        return out
    entered = decision.outcome == "APPROVE" and any(a.is_entry and a.symbol == symbol for a in decision.actions)
    wanted = next((v["entries"][0] for v in reversed(decision.verdicts) if v.get("entries")), None)
    for verdict in refused:
        kind = "aborted" if verdict["decision"] == "ABORT" else "rejected"
        kept_out = None if entered or not verdict.get("entries") else wanted
        for name in verdict["violations"]:
            out.append(block(day, symbol, name, kind, kept_out, equity, blocked=kept_out is not None))
    return out


def limit_table(blocks: list[dict], feeds: dict[str, SymbolFeed], costs: Costs, days: list[date],
                equity: list[float]) -> pd.DataFrame:
    """Which limits bound and what they cost, a row per constraint or breaker that acted: proposals it
    rejected, exchanges it aborted, approved entries it refused at the fill re-check, the days on which
    it kept an entry out of the book, the book's P&L on those days, and `missed_pnl`: what the entries
    it kept out would have made by the last day run (positive: the rule cost money; negative: it saved some).

    `blocks` are the rows `block` made, in the order they happened; `days` the days run and `equity` the
    book at the close before the first of them and after each."""
    if not blocks:
        return pd.DataFrame(columns=LIMIT_COLUMNS, dtype=float)
    pnl = dict(zip(days, np.diff(np.asarray(equity, dtype=float))))
    missed: dict[tuple, float] = {}  # per (day, symbol): what the entry kept out would have made
    tallies: dict[str, dict] = {}  # per constraint, in the order each first acted
    for b in blocks:
        key = (b["day"], b["symbol"])
        if b["blocked"] and b["entry"] is not None and key not in missed and b["entry"].symbol == b["symbol"]:
            missed[key] = what_if(feeds[b["symbol"]], b["day"], b["entry"], b["equity"], days[-1], costs)
        tally = tallies.setdefault(b["constraint"], {"rejected": 0, "aborted": 0, "unfilled": 0, "kept_out": {}})
        tally[b["kind"]] += 1
        if b["blocked"]:
            tally["kept_out"].setdefault(key, None)
    rows = {}
    for constraint, tally in tallies.items():
        kept_out = tally.pop("kept_out")
        blocked_days = sorted({day for day, _ in kept_out})
        rows[constraint] = {
            **tally, "days_blocked": len(blocked_days),
            "pnl_on_blocked_days": float(sum(pnl.get(d, 0.0) for d in blocked_days)),
            "missed_pnl": float(np.array([missed.get(k, 0.0) for k in kept_out], dtype=float).sum()),
        }
    # most days blocked first, then most rejected, most aborted; ties in the order the limits first acted
    # (sort_values' order: its sort of several columns is stable), sorted before the frame is built
    ranked = sorted(rows.items(), key=lambda kv: (-kv[1]["days_blocked"], -kv[1]["rejected"], -kv[1]["aborted"]))
    return rows_table(dict(ranked), LIMIT_COLUMNS)


def top_blockers(limits_table: pd.DataFrame, top: int = 3) -> pd.Series:
    """The limits that kept most entries out: proposals rejected, aborted or refused at the fill, most first."""
    if not len(limits_table):
        return pd.Series(dtype=int)
    stopped = limits_table[["rejected", "aborted", "unfilled"]].sum(axis=1).astype(int)
    return stopped[stopped > 0].sort_values(ascending=False, kind="stable").head(top)


def what_if(feed: SymbolFeed, day: date, entry: Action, equity: float, last: date, costs: Costs) -> float:
    """The P&L an entry kept out would have made: filled at `day`'s open, exited by the same stops,
    targets, holding limit and costs, by `last` at the latest."""
    book = Book(0.0, costs)
    i = feed.row[day]
    if (feed.opens[i] <= entry.stop_loss) if side_of(entry) > 0 else (feed.opens[i] >= entry.stop_loss):
        return 0.0  # through its stop at the open: it would not have filled
    book.enter(entry, book.fill_price(entry, feed.opens[i]), equity, day, "")
    end = feed.between(day, last).stop  # the row after `last`'s bar (the dates are sorted)
    j = i
    while book.open and j < end:
        bar_day = feed.dates[j]
        if j > i:
            book.exit_at_open(feed.symbol, bar_day, feed.opens[j], False)
        book.exit_on_bar(feed.symbol, bar_day, feed.highs[j], feed.lows[j], feed.closes[j])
        j += 1
    book.close_all(feed.dates[j - 1], {feed.symbol: feed.closes[j - 1]})
    return book.closed[0]["pnl"]
