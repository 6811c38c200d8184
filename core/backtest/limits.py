"""What each limit did in a backtest, and what the entries it kept out would have made.

Each exchange's verdicts say which limits rejected or aborted a proposal; a breaker that ended the
exchange before round 1 aborted it; an entry refused at the fill was `unfilled`. A limit that acted
in an exchange that ended with no entry approved kept the agent's last entry out of the book; that
entry is then re-simulated on its own (`what_if`): filled at that day's open and exited by the same
stops, targets, holding limit and costs. Told after the run, never seen by a decision.
"""

from __future__ import annotations

from datetime import date

import pandas as pd

from core.backtest.book import Book, side_of
from core.backtest.feed import SymbolFeed
from core.backtest.spec import Costs
from core.exchange.schema import BEFORE_ROUND_ONE, Action

BLOCK_COLUMNS = ["day", "symbol", "constraint", "kind", "blocked", "missed_pnl"]


def block(day: date, symbol: str, constraint: str, kind: str, entry: Action | None, equity: float,
          blocked: bool = True) -> dict:
    """One limit acting on one exchange: `kind` rejected, aborted or unfilled; `entry` the one it kept out."""
    return {"day": day, "symbol": symbol, "constraint": constraint, "kind": kind, "blocked": blocked, "entry": entry,
            "equity": equity}


def blocks_of(day: date, symbol: str, decision, equity: float) -> list[dict]:
    """What each limit did in one decided exchange (a core.backtest.engine.Decision)."""
    out = []
    if decision.outcome == "ABORT" and decision.reason in BEFORE_ROUND_ONE and not decision.verdicts:
        out.append(block(day, symbol, decision.reason, "aborted", None, equity))
    entered = decision.outcome == "APPROVE" and any(a.is_entry and a.symbol == symbol for a in decision.actions)
    wanted = next((v["entries"][0] for v in reversed(decision.verdicts) if v.get("entries")), None)
    for verdict in decision.verdicts:
        if verdict["decision"] == "APPROVE":
            continue
        kind = "aborted" if verdict["decision"] == "ABORT" else "rejected"
        kept_out = None if entered or not verdict.get("entries") else wanted
        for name in verdict["violations"]:
            out.append(block(day, symbol, name, kind, kept_out, equity, blocked=kept_out is not None))
    return out


def limit_rows(blocks: list[dict], feeds: dict[str, SymbolFeed], costs: Costs, last: date | None) -> pd.DataFrame:
    """The limits' rows, each blocked entry with what it would have made by `last` (`missed_pnl`)."""
    missed = {}
    for b in blocks:
        key = (b["day"], b["symbol"])
        if b["blocked"] and b["entry"] is not None and key not in missed and b["entry"].symbol == b["symbol"]:
            missed[key] = what_if(feeds[b["symbol"]], b["day"], b["entry"], b["equity"], last, costs)
    rows = [{**b, "missed_pnl": missed.get((b["day"], b["symbol"]), 0.0) if b["blocked"] else 0.0} for b in blocks]
    return pd.DataFrame(rows, columns=BLOCK_COLUMNS)


def what_if(feed: SymbolFeed, day: date, entry: Action, equity: float, last: date, costs: Costs) -> float:
    """The P&L an entry kept out would have made: filled at `day`'s open, exited by the same stops,
    targets, holding limit and costs, by `last` at the latest."""
    book = Book(0.0, costs)
    i = feed.row[day]
    if (feed.opens[i] <= entry.stop_loss) if side_of(entry) > 0 else (feed.opens[i] >= entry.stop_loss):
        return 0.0  # through its stop at the open: it would not have filled
    book.enter(entry, book.fill_price(entry, feed.opens[i]), equity, day, "")
    j = i
    while book.open and j < len(feed.dates) and feed.dates[j] <= last:
        if j > i:
            book.exit_at_open(feed.symbol, feed.dates[j], feed.opens[j], False)
        book.exit_on_bar(feed.symbol, feed.dates[j], feed.highs[j], feed.lows[j], feed.closes[j])
        j += 1
    book.close_all(feed.dates[j - 1], {feed.symbol: feed.closes[j - 1]})
    return book.closed[0]["pnl"]
