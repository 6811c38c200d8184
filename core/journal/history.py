"""History in the journal: the stored exchanges a set of filters picks (`HistoryFilter`, built once from
History's widgets or the CLI's flags), listed, counted, summarised, and pruned."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterator, Sequence
from datetime import date, datetime, timedelta, timezone

from core.exchange.errors import InvalidInput, StoreError
from core.exchange.schema import ET
from core.exchange.artifact import Artifact
from core.journal.db import StoreFile, compact_json, named_errors
from core.journal.exchanges import CHILDREN, DAMAGE

HISTORY_COLUMNS = {"market_time": str, "preset": str, "side": str, "size_pct": float, "entry": float, "stop": float,
                   "target": float, "fixed": str}
"""What History shows of each exchange beside its outcome: the market time (ET), the preset, the trade,
and the violations earlier rounds had that the last one fixed (`violations` then holds the standing ones)."""

DATES_BY = {"market": "market_time", "run": "timestamp"}
"""What History's dates mean: the market time the exchange decided on (ET), or when it was run (UTC)."""

WALKED_PER_ROW = 50
"""How far History walks the date index for each row a page needs (offset + limit) before it calls the filter's
matches few and finds them through the filter's own index instead: a filter that keeps one row in 50 has filled
its page by then; one that keeps fewer costs a sort of those few."""

SEARCHES_KEPT = 8
"""How many text searches History keeps the matching exchanges of (see History._said): the searches of a
page run and its reruns, and a few the trader goes back to."""

FEW_DAYS_ROWS = 10_000
"""A date range of at most this many rows is read through the date index to count what a filter keeps (~3 ms at
100k); a wider one leaves the plan to SQLite."""

Bound = date | datetime | str | None
Choice = str | Sequence[str] | None


@dataclasses.dataclass(frozen=True)
class HistoryFilter:
    """Which stored exchanges History shows. Empty fields pick everything; `outcome`, `symbol`,
    `strategy` and `player` (who played the Player: house-player, claude-player, external: <client>...) take one
    value or several; a date bound means the whole day, a datetime an exact instant;
    `text` matches the reasoning and critiques literally, regardless of case; `unfaithful` keeps the
    exchanges whose reasoning misstated its own trade (reasoning_score < 1); `repeat_id` keeps one group of
    core.repeat; `one_per_group` lists a group as one row (its first matching exchange). `said` is History's,
    not the caller's: the run ids (a JSON list) of the exchanges whose rounds hold `text`."""

    outcome: Choice = None
    symbol: Choice = None
    strategy: Choice = None
    since: Bound = None
    until: Bound = None
    text: str | None = None
    dates_by: str = "run"
    unfaithful: bool = False
    repeat_id: str | None = None
    one_per_group: bool = False
    player: Choice = None  # last: the fields before it keep their places
    said: str | None = dataclasses.field(default=None, repr=False)

    def __post_init__(self):
        if self.dates_by not in DATES_BY:
            raise InvalidInput(f"dates_by: must be one of {', '.join(DATES_BY)}, got {self.dates_by!r}")

    @property
    def dated(self) -> str:
        """The column the dates filter and order on."""
        return DATES_BY[self.dates_by]

    @property
    def walkable(self) -> bool:
        """Whether a page may be found by walking the date index (see History.list_exchanges): the filter picks
        by a column with an index of its own, or keeps the exchanges a text search found (History._said)."""
        return bool(self.outcome or self.symbol or self.strategy or self.player or self.unfaithful or self.text) and \
            not self.repeat_id

    def where(self, walk: bool = False) -> tuple[str, list]:
        """The SQL where clause over `exchanges` and its parameters. `walk`: the columns with an index of their
        own are written +column, so that SQLite walks the date index and tests them row by row."""
        where, params = [], []
        plus = "+" if walk else ""
        for column, value in (("outcome", self.outcome), ("symbol", self.symbol), ("strategy_id", self.strategy),
                              ("player", self.player)):
            if value:
                values = [value] if isinstance(value, str) else list(value)
                where.append(f"{plus}{column} in ({', '.join('?' * len(values))})")
                params.extend(values)
        dates, bounds = self.dates()
        where += dates
        params += bounds
        if self.text:  # History looked the words up once (see History._said)
            where.append(f"{plus}run_id in (select value from json_each(?))")
            params.append(self.said)
        if self.unfaithful:
            where.append(f"{plus}reasoning_score < 1")
        if self.repeat_id:
            where.append("repeat_id = ?")
            params.append(self.repeat_id)
        matching = " and ".join(where) or "1 = 1"
        if self.one_per_group:  # a group's first exchange among those the other filters keep stands for it
            # "+repeat_id": no index for this test, or SQLite reads every ungrouped row through the repeat_id index
            # and sorts them all for a page of 20 (84 ms at 100k), where walking the date index stops at 20.
            return (f"{matching} and (+repeat_id is null or rowid in (select min(rowid) from exchanges "
                    f"where {matching} and repeat_id is not null group by repeat_id))"), params + params
        return matching, params

    def dates(self) -> tuple[list[str], list]:
        """The where clauses of `since` and `until` over the dated column, and their parameters."""
        where, params = [], []
        if self.since:
            where.append(f"{self.dated} >= ?")
            params.append(_instant(self.since, self.dates_by))
        if self.until:
            # A date means the whole day; a datetime is an exact bound.
            until = self.until
            bound = until + timedelta(days=1) if isinstance(until, date) and not isinstance(until, datetime) else until
            where.append(f"{self.dated} < ?")
            params.append(_instant(bound, self.dates_by))
        return where, params


def _chosen(matching: HistoryFilter | None, filters: dict) -> HistoryFilter:
    """The filter a call means: a HistoryFilter, the same fields as keywords (user code), or both."""
    if matching is None:
        return HistoryFilter(**filters)
    return dataclasses.replace(matching, **filters) if filters else matching


def _instant(value: date | datetime | str, dates_by: str = "run") -> str:
    """A bound as the stored text compares: UTC ISO for run times; for market times the ET wall clock,
    which the stored ISO text starts with whatever its offset (a date bound is just the date)."""
    if isinstance(value, str):
        return value
    if dates_by == "market":
        if not isinstance(value, datetime):
            return value.isoformat()
        return (value.astimezone(ET) if value.tzinfo else value).strftime("%Y-%m-%dT%H:%M:%S")
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    elif value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).isoformat()


class History(StoreFile):
    """The stored exchanges as History shows them. Each query takes a HistoryFilter, or its fields as keywords."""

    def __init__(self, *args, **kwargs):
        self._searches: dict[str, tuple[int, str, frozenset]] = {}  # words: changes(), run ids, skipped (_said)
        self._searches_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    LIST_COLUMNS = ("run_id, market_time, timestamp, outcome, approved, rounds_taken, termination_reason, "
                    "total_tokens, cost_usd, symbol, strategy_id, preset, side, size_pct, entry, stop, target, "
                    "violations, fixed, reasoning_score, player, coach, model, finished, repeat_id, "
                    "(select count(*) from exchanges as g where g.repeat_id = exchanges.repeat_id) as repeats")

    @named_errors
    def list_exchanges(self, matching: HistoryFilter | None = None, /, *, limit: int | None = 50,
                       offset: int | None = None, **filters) -> list[dict]:
        """Exchanges matching the filters, newest first by the dates they filter on (the last stored first among
        equal dates), as summary rows."""
        chosen = self._chosen(matching, filters)
        order = f"{chosen.dated} desc, rowid desc"
        if limit is not None and chosen.walkable:
            rows = self._walked(chosen, order, limit, offset or 0)
            if rows is not None:
                return rows
            order = "+" + order  # few rows match: SQLite finds them through the filter's own index and sorts them
        where, params = chosen.where()
        return self._rows(where, params, order, limit, offset)

    def _walked(self, chosen: HistoryFilter, order: str, limit: int, offset: int) -> list[dict] | None:
        """The page found by walking the date index, newest first, no further than WALKED_PER_ROW rows for each
        row it needs; None if those rows hold too few matches (the filter keeps few rows, or only older ones)."""
        dates, bounds = chosen.dates()
        oldest = next(self._db["exchanges"].rows_where(" and ".join(dates) or None, bounds, select=chosen.dated,
                                                       order_by=f"{chosen.dated} desc", limit=1,
                                                       offset=WALKED_PER_ROW * (offset + limit)), None)
        where, params = chosen.where(walk=True)
        if oldest is None:  # the dates hold no more rows than that: the walk reads them all
            return self._rows(where, params, order, limit, offset)
        rows = self._rows(f"{where} and {chosen.dated} >= ?", [*params, oldest[chosen.dated]], order, limit, offset)
        # Full, the page holds the newest matches: any row the walk did not reach is older than all of them.
        return rows if len(rows) == limit else None

    def _where(self, chosen: HistoryFilter) -> tuple[str, list]:
        """chosen.where() for a count: walking the date index when the dates hold no more than
        FEW_DAYS_ROWS rows, where SQLite would take an outcome's, symbol's, strategy's or player's index and read
        every row it holds to test the dates."""
        dates, bounds = chosen.dates()
        if not (dates and chosen.walkable):
            return chosen.where()
        held = self._db.execute(f"select count(*) from (select 1 from exchanges where {' and '.join(dates)} limit ?)",
                                [*bounds, FEW_DAYS_ROWS + 1]).fetchone()[0]
        return chosen.where(walk=held <= FEW_DAYS_ROWS)

    def _rows(self, where: str, params: list, order: str, limit: int | None, offset: int | None) -> list[dict]:
        return list(self._db["exchanges"].rows_where(where, params, order_by=order, select=self.LIST_COLUMNS,
                                                     limit=limit, offset=offset))

    @named_errors
    def count_exchanges(self, matching: HistoryFilter | None = None, /, **filters) -> int:
        """How many exchanges match the filters; with one_per_group, how many rows they list (a group as one)."""
        chosen = self._chosen(matching, filters)
        each = dataclasses.replace(chosen, one_per_group=False)
        count = self._db["exchanges"].count_where(*self._where(each))  # often from an index alone, no row read
        if chosen.one_per_group:  # less every group's matches but one, read through the repeat_id index
            where, params = each.where(walk=True)
            count -= self._db.execute(f"select coalesce(sum(n - 1), 0) from (select count(*) as n from exchanges "
                                      f"where {where} and repeat_id is not null group by repeat_id)", params).fetchone()[0]
        return count

    @named_errors
    def summary(self, matching: HistoryFilter | None = None, /, **filters) -> dict:
        """Count, approval rate, mean rounds, tokens and cost of the matching exchanges."""
        # SQLite's plan, whatever the dates: another would add the costs up in another order (a float's last digit).
        where, params = self._chosen(matching, filters).where()
        row = self._db.execute(
            "select count(*), avg(approved), avg(rounds_taken), coalesce(sum(total_tokens), 0), "
            f"coalesce(sum(cost_usd), 0) from exchanges where {where}", params
        ).fetchone()
        return {"count": row[0], "approval_rate": row[1] or 0.0, "mean_rounds": row[2] or 0.0,
                "tokens": row[3], "cost_usd": row[4]}

    @named_errors
    def violation_counts(self, matching: HistoryFilter | None = None, /, **filters) -> list[tuple[str, int]]:
        """How often each constraint was violated in the matching exchanges' rounds, most first."""
        where, params = self._where(self._chosen(matching, filters))
        # Unfiltered, every round counts: the subquery would only cost a pass over 100k exchanges.
        matching_rounds = "" if not params else f"where rounds.run_id in (select run_id from exchanges where {where}) "
        rows = self._db.execute(
            "select v.value, count(*) from rounds, json_each(rounds.violations) v "
            f"{matching_rounds}group by v.value order by count(*) desc, v.value", params
        ).fetchall()
        return [(name, n) for name, n in rows]

    @named_errors
    def outcomes_by_day(self, matching: HistoryFilter | None = None, /, **filters) -> list[tuple[str, str, int]]:
        """(day, outcome, exchanges) of the matching exchanges, oldest day first.

        The day is the market day (ET) or the day the exchange was run (UTC; a backtest's exchanges are
        dated on their simulated ET clock), as `dates_by` says.
        """
        chosen = self._chosen(matching, filters)
        where, params = self._where(chosen)
        return [tuple(row) for row in self._db.execute(
            f"select substr({chosen.dated}, 1, 10) as day, outcome, count(*) from exchanges where {where} "
            "group by day, outcome order by day, outcome", params
        ).fetchall()]

    def artifacts(self, matching: HistoryFilter | None = None, /, *, limit: int | None = None,
                  **filters) -> Iterator[Artifact | StoreError]:
        """The matching exchanges' whole artifacts, in list_exchanges' order, read one at a time. One that
        does not read back comes as its StoreError, in its place, and the stream goes on."""
        for row in self.list_exchanges(matching, limit=limit, **filters):
            try:
                yield self.get_exchange(row["run_id"])
            except StoreError as error:
                yield error

    @named_errors
    def strategies(self) -> list[str]:
        """Every strategy that has exchanges, most recent first."""
        return [r["strategy_id"] for r in self._db["strategies"].rows_where(order_by="last_seen desc")]

    @named_errors
    def players(self) -> list[str]:
        """Every Player that has exchanges (its name, as the artifact's agents.player), read from its index."""
        return [r[0] for r in self._db.execute("select distinct player from exchanges order by player")]

    @named_errors
    def symbols(self) -> list[str]:
        """Every symbol that has exchanges."""
        return [r[0] for r in self._db.execute("select distinct symbol from exchanges order by symbol")]

    def _said(self, words: str) -> str:
        """The run ids (a JSON list) of the exchanges with a round whose reasoning or critique holds the trader's
        words, matched literally and regardless of case: one pass over the packed rounds a search, kept for the
        later queries until the file changes (a new or finished exchange may match)."""
        changes, words = self.changes(), words.lower()
        if self._db.conn.in_transaction:  # this connection's own writes count, uncommitted: kept for nobody
            return self._search(words)[0]
        with self._searches_lock:
            kept = self._searches.pop(words, None)  # back in last: the least recent search goes first
        if kept is None or kept[0] != changes:
            kept = (changes, *self._search(words))
        with self._searches_lock:
            self._searches[words] = kept
            while len(self._searches) > SEARCHES_KEPT:
                del self._searches[next(iter(self._searches))]
        self._local.skipped = set(kept[2])
        return kept[1]

    def _search(self, words: str) -> tuple[str, frozenset]:
        """One pass over the rounds for `words` (lower case): the run ids that match, and the damaged rounds."""
        self._local.skipped = set()
        found = self._db.execute("select distinct run_id from rounds where said_contains(body, ?, run_id, round)",
                                 [words]).fetchall()
        return compact_json([run_id for run_id, in found]), frozenset(self._local.skipped)

    def _said_contains(self, body: bytes | None, words: str, run_id: str, number: int) -> bool:
        """SQL said_contains(body, words, run_id, round): a round's reasoning or critique holds `words` (lower case).
        A damaged round matches nothing and is counted (`skipped_rounds`)."""
        if body is None:
            return False
        try:
            said = json.loads(self._packer.unpack_line(body))
            return any(words in text.lower() for text in said)
        except DAMAGE:  # a set: a query that looks at a round twice still counts it once
            self._local.skipped = getattr(self._local, "skipped", set()) | {(run_id, number)}
            return False

    @property
    def skipped_rounds(self) -> int:
        """How many damaged rounds the last text search on this thread passed over (they match nothing)."""
        return len(getattr(self._local, "skipped", ()))

    def _chosen(self, matching: HistoryFilter | None, filters: dict) -> HistoryFilter:
        """The filter a call means (see _chosen), its words looked up (see _said)."""
        chosen = _chosen(matching, filters)
        return dataclasses.replace(chosen, said=self._said(chosen.text)) if chosen.text else chosen

    # -- pruning --------------------------------------------------------------------------------

    @named_errors
    def count_older(self, before: datetime | None, now: datetime | None = None) -> int:
        """How many exchanges prune(before) would delete."""
        return self._db["exchanges"].count_where(*_prunable(before, now))

    @named_errors
    def prune(self, before: datetime | None, now: datetime | None = None) -> int:
        """Delete the exchanges recorded before `before` (None: all) with their rounds, coach memory and
        portfolio snapshots, then VACUUM so the file shrinks. Returns how many exchanges went.

        It goes by when an exchange was recorded, not by its date (a backtest's exchanges are dated on their
        simulated day), and never touches one still being written (see STILL_WRITING). The backtests' own
        results stay.
        """
        where, params = _prunable(before, now)
        doomed = f"select run_id from exchanges where {where}"
        with self._write() as db:
            for table in CHILDREN:
                db.execute(f"delete from {table} where run_id in ({doomed})", params)
            deleted = db.execute(f"delete from exchanges where {where}", params).rowcount
            db.execute("delete from strategies where strategy_id not in "
                       "(select strategy_id from exchanges where strategy_id is not null)")
        if deleted:
            self._db.execute("vacuum")
            self.checkpoint()  # the WAL the vacuum wrote goes too
        return deleted


STILL_WRITING = timedelta(hours=1)
"""An unfinished exchange recorded less than this long ago is still being written: prune leaves it alone.
(One left unfinished longer than that lost its writer to a crash: it reads back INTERRUPTED.)"""


def _prunable(before: datetime | None, now: datetime | None) -> tuple[str, list]:
    """Where clause over `exchanges` for what prune(before) deletes, as of `now` (default: the clock)."""
    now = now or datetime.now(timezone.utc)
    where, params = "not (finished = 0 and recorded >= ?)", [_instant(now - STILL_WRITING)]
    if before is not None:
        where += " and recorded < ?"
        params.append(_instant(before))
    return where, params
