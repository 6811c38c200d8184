"""The audit trail: every exchange, round and checked constraint in one SQLite file.

Built on sqlite-utils. The loop writes an exchange when it starts and each round when it ends,
so a crash leaves an INTERRUPTED exchange with every finished round. One connection per thread,
WAL, a busy timeout and BEGIN IMMEDIATE writes let threads and processes share the file.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import sqlite_utils
from pydantic import ValidationError

from core.journal import compact
from core.exchange.errors import InvalidInput, StoreError
from core.exchange.presets import explain, list_presets, load_preset
from core.exchange.schema import ENTRY_TYPES, ET, Artifact, Constraints, Round, Usage

DEFAULT_PATH = Path(__file__).resolve().parents[2] / "data" / "player_coach.db"
BUSY_TIMEOUT_MS = 30_000


def default_path() -> Path:
    """The database file: $PLAYER_COACH_DB, else data/player_coach.db."""
    return Path(os.environ.get("PLAYER_COACH_DB") or DEFAULT_PATH)


def _v1(db: sqlite_utils.Database) -> None:
    db["strategies"].create({"strategy_id": str, "first_seen": str, "last_seen": str}, pk="strategy_id")
    db["exchanges"].create(
        {
            "run_id": str, "timestamp": str, "outcome": str, "approved": int, "rounds_taken": int,
            "termination_reason": str, "total_tokens": int, "cost_usd": float, "usage": str,
            "symbol": str, "strategy_id": str, "player": str, "coach": str, "model": str,
            "violations": str, "constraint_snapshot": str, "portfolio_snapshot": str, "world_state": str,
            "finished": int,
        },
        pk="run_id",
    )
    db["rounds"].create(
        {
            "run_id": str, "round": int, "proposal": str, "reasoning": str, "decision": str, "violations": str,
            "checks": str, "feedback": str, "coach_opinion": str, "disagrees": int, "tokens": int, "usage": str,
            "latency_ms": float,
        },
        pk=("run_id", "round"),
        foreign_keys=[("run_id", "exchanges", "run_id")],
    )
    db["portfolio_snapshots"].create(
        {
            "id": int, "run_id": str, "timestamp": str, "equity": float, "peak_equity": float,
            "start_of_day_equity": float, "cumulative_pnl": float, "today_pnl": float, "positions": str,
        },
        pk="id",
        foreign_keys=[("run_id", "exchanges", "run_id")],
    )
    db["coach_memory"].create(
        {
            "id": int, "run_id": str, "round": int, "action": int, "strategy_id": str, "symbol": str,
            "action_type": str, "constraint": str, "value": float, "threshold": float, "passed": int,
            "rr": float, "outcome": str,
        },
        pk="id",
        foreign_keys=[("run_id", "exchanges", "run_id")],
    )
    db["presets"].create({"name": str, "constraints": str, "saved_at": str}, pk="name")
    db["exchanges"].create_index(["timestamp"])
    db["exchanges"].create_index(["outcome", "symbol", "timestamp"])
    db["exchanges"].create_index(["symbol", "timestamp"])
    db["exchanges"].create_index(["strategy_id", "timestamp"])
    db["portfolio_snapshots"].create_index(["run_id"])
    db["coach_memory"].create_index(["strategy_id", "constraint"])
    db["coach_memory"].create_index(["run_id"])


def _v2_backtests(db: sqlite_utils.Database) -> None:
    """Backtests (core.backtest): one row per run, one per finished day so a run can resume."""
    db["backtests"].create(
        {
            "run_key": str, "created": str, "updated": str, "status": str, "symbol": str, "start": str,
            "end": str, "preset": str, "constraints": str, "player": str, "coach": str, "model": str,
            "depth": str, "settings": str, "days_total": int, "days_done": int, "metrics": str,
        },
        pk="run_key",
    )
    db["backtest_days"].create(
        {
            "run_key": str, "day": str, "outcome": str, "reason": str, "rounds": int, "tokens": int,
            "cost_usd": float, "actions": str, "exchange_run_id": str,
        },
        pk=("run_key", "day"),
        foreign_keys=[("run_key", "backtests", "run_key")],
    )
    db["backtests"].create_index(["created"])


HISTORY_COLUMNS = {"market_time": str, "preset": str, "side": str, "size_pct": float, "entry": float, "stop": float,
                   "target": float, "fixed": str}
"""What History shows of each exchange beside its outcome: the market time (ET), the preset, the trade,
and the violations earlier rounds had that the last one fixed (`violations` then holds the standing ones)."""


def _v3_history(db: sqlite_utils.Database) -> None:
    """History's columns (HISTORY_COLUMNS), filled in for the exchanges already stored."""
    for column, kind in HISTORY_COLUMNS.items():
        db["exchanges"].add_column(column, kind)
    presets = _Presets(db)
    for run_id, constraints, world in db.execute(
            "select run_id, constraint_snapshot, world_state from exchanges").fetchall():
        rounds = db.execute("select proposal, violations from rounds where run_id = ? order by round",
                            [run_id]).fetchall()
        actions = json.loads(rounds[-1][0])["actions"] if rounds else []
        row = {"market_time": json.loads(world)["as_of"], "preset": presets.name(json.loads(constraints)),
               **_progress(actions, [json.loads(violations) for _, violations in rounds])}
        db.execute(f"update exchanges set {', '.join(f'{c} = ?' for c in row)} where run_id = ?",
                   [*row.values(), run_id])
    db["exchanges"].create_index(["market_time"])


def _v4_agent_path(db: sqlite_utils.Database) -> None:
    """How a model agent got each round's answer (forced or auto tool, repair): JSON, null for the house agents."""
    if "agent_path" not in db["rounds"].columns_dict:  # a database rebuilt by hand may have it already
        db["rounds"].add_column("agent_path", str)


def _v5_portfolio_backtests(db: sqlite_utils.Database) -> None:
    """Portfolio backtests: a stored day is one exchange per symbol, with its verdicts (which limits bound)."""
    days = db["backtest_days"]
    for column in ("symbol", "verdicts"):
        if column not in days.columns_dict:  # a file rolled back to an earlier version may have kept them
            days.add_column(column, str)
    db.execute("update backtest_days set symbol = (select symbol from backtests "
               "where backtests.run_key = backtest_days.run_key) where symbol is null")
    if days.pks != ["run_key", "day", "symbol"]:
        days.transform(pk=("run_key", "day", "symbol"))


def _v6_round_complete(db: sqlite_utils.Database) -> None:
    """A round the exchange stopped in is kept as it stood: complete = 0 (every earlier round is complete)."""
    if "complete" not in db["rounds"].columns_dict:
        db["rounds"].add_column("complete", int, not_null_default=1)


def _v7_backtest_jobs(db: sqlite_utils.Database) -> None:
    """What the Backtest page ran as one: the form (symbols, dates, presets, agents, costs) and its runs, in order,
    so a comparison of two presets is listed, reopened and resumed as one."""
    # if_not_exists: a file rolled back to an earlier version may have kept the table
    db["backtest_jobs"].create({"job_key": str, "created": str, "form": str, "run_keys": str}, pk="job_key",
                               if_not_exists=True)
    db["backtest_jobs"].create_index(["created"], if_not_exists=True)


def _v8_reasoning(db: sqlite_utils.Database) -> None:
    """Each round's reasoning check and optional grade (JSON); per exchange its lowest reasoning score (History
    filters on it) and the agents' classes. Rounds stored before have no check: their score stays null."""
    for table, columns in (("rounds", {"reasoning_check": str, "reasoning_grade": str}),
                           ("exchanges", {"reasoning_score": float, "player_class": str, "coach_class": str})):
        for column, kind in columns.items():
            if column not in db[table].columns_dict:
                db[table].add_column(column, kind)
    db["exchanges"].create_index(["reasoning_score"], if_not_exists=True)


PLAIN_FIELDS = ("run_id", "timestamp", "outcome", "approved", "rounds_taken", "termination_reason", "total_tokens",
                "strategy_id", "symbol", "agents", "rounds")
"""The artifact's fields that have columns (or tables) of their own; the rest are packed into exchanges.detail."""

_SEP = (",", ":")


def _json(value) -> str:
    return json.dumps(value, separators=_SEP, ensure_ascii=False)


def _v9_lean(db: sqlite_utils.Database) -> None:
    """A lean store (issue 14): an exchange's snapshots and each round's JSON and texts packed with
    core.compact, coach memory one row per checked action (the per-check rows are a view)."""
    db.execute("create table dictionaries (id integer primary key, text blob not null)")
    db.execute("insert into dictionaries (id, text) values (1, ?)", [compact.dictionary()])
    packer = compact.Packer({1: compact.dictionary()})

    db.execute("alter table exchanges add column detail blob")
    for rowid, usage, constraints, portfolio, world in _batches(
            db, "select rowid, usage, constraint_snapshot, portfolio_snapshot, world_state from exchanges "
                "where rowid > ? order by rowid limit ?"):
        detail = {"usage": json.loads(usage), "constraint_snapshot": json.loads(constraints),
                  "portfolio_snapshot": json.loads(portfolio), "world_state": json.loads(world)}
        db.execute("update exchanges set detail = ? where rowid = ?", [packer.pack(_json(detail)), rowid])
    for column in ("usage", "constraint_snapshot", "portfolio_snapshot", "world_state"):
        db.execute(f"alter table exchanges drop column {column}")

    wide = ("proposal", "reasoning", "checks", "feedback", "coach_opinion", "disagrees", "tokens", "usage", "latency_ms",
            "agent_path", "complete", "reasoning_check", "reasoning_grade")
    kept = [(c.name, c.type) for c in db["rounds"].columns if c.name not in wide]  # later migrations' columns too
    _create_rounds(db, "rounds_lean", [(n, t) for n, t in kept if n not in ("run_id", "round", "decision", "violations")])
    _create_coach_entries(db)
    rebuilt = ("run_id", "round", "decision", "violations", "body", *(n for n, _ in kept[4:]))
    for row in _batches(db, "select r.rowid, r.*, e.strategy_id from rounds r join exchanges e using (run_id) "
                            "where r.rowid > ? order by r.rowid limit ?"):
        old = dict(zip(["rowid", *(c.name for c in db["rounds"].columns), "strategy_id"], row))
        record = {
            "round": old["round"], "proposal": json.loads(old["proposal"]),
            "evaluation": {"decision": old["decision"], "violations": json.loads(old["violations"]),
                           "checks": json.loads(old["checks"]), "feedback": old["feedback"],
                           "coach_opinion": json.loads(old["coach_opinion"]) if old["coach_opinion"] else None,
                           "disagrees": None if old["disagrees"] is None else bool(old["disagrees"])},
            "tokens": old["tokens"], "usage": json.loads(old["usage"]), "latency_ms": old["latency_ms"],
            "agent_path": json.loads(old["agent_path"]) if old.get("agent_path") else None,
            "complete": old.get("complete", 1) != 0,
            "reasoning_check": json.loads(old["reasoning_check"]) if old.get("reasoning_check") else None,
            "reasoning_grade": json.loads(old["reasoning_grade"]) if old.get("reasoning_grade") else None,
        }
        columns = {**old, **_round_columns(old["run_id"], record, packer)}
        _insert(db, "rounds_lean", {c: columns[c] for c in rebuilt})
        if record["complete"]:
            _insert_many(db, "coach_entries", _coach_entries(old["run_id"], old["strategy_id"], record))
    db.execute("drop table rounds")
    db.execute("alter table rounds_lean rename to rounds")
    db.execute("drop table coach_memory")
    db.execute(
        "create view coach_memory as select e.run_id, e.round, e.action, e.strategy_id, e.symbol, e.action_type, "
        "json_extract(c.value, '$[0]') as \"constraint\", json_extract(c.value, '$[2]') as value, "
        "json_extract(c.value, '$[3]') as threshold, json_extract(c.value, '$[1]') as passed, e.rr, e.outcome "
        "from coach_entries e, json_each(e.checks) c")


def _batches(db: sqlite_utils.Database, select: str, size: int = 2000) -> Iterator[tuple]:
    """The rows of `select` (rowid first; it ends "rowid > ? order by ... limit ?") a batch at a time, so the
    table may be rewritten meanwhile and a large file never sits in memory at once."""
    last = -1
    while rows := db.execute(select, [last, size]).fetchall():
        yield from rows
        last = rows[-1][0]


def _create_rounds(db: sqlite_utils.Database, name: str, extra: list[tuple[str, str]]) -> None:
    """Rounds, clustered by exchange: the decision and violations in plain columns (History counts them),
    the whole round packed in `body` (see _round_columns)."""
    more = "".join(f', "{column}" {kind}' for column, kind in extra)
    db.execute(f"create table {name} (run_id text not null references exchanges(run_id), round integer not null, "
               f"decision text, violations text, body blob{more}, primary key (run_id, round)) without rowid")


def _create_coach_entries(db: sqlite_utils.Database) -> None:
    """Coach memory, one row per checked action of a round: its checks as [[constraint, passed, value,
    threshold], ...] (proposal-wide checks in every entry's list). The `coach_memory` view spreads them out."""
    db.execute("create table coach_entries (run_id text not null references exchanges(run_id), round integer not null, "
               "action integer not null, strategy_id text, symbol text, action_type text, outcome text, rr real, "
               "checks text, primary key (run_id, round, action)) without rowid")
    db.execute("create index idx_coach_entries_strategy_id on coach_entries (strategy_id)")


def _round_columns(run_id: str, record: dict, packer: compact.Packer) -> dict:
    """A round (its JSON form) as its row. `body` packs one line of what was said, [reasoning, critique],
    then one line of the rest: a text search unpacks only as far as the first line's end."""
    evaluation = record["evaluation"]
    rest = {**record, "proposal": {k: v for k, v in record["proposal"].items() if k != "reasoning"},
            "evaluation": {k: v for k, v in evaluation.items() if k != "feedback"}}
    said = _json([record["proposal"]["reasoning"], evaluation["feedback"]])  # JSON: no line break inside
    return {"run_id": run_id, "round": record["round"], "decision": evaluation["decision"],
            "violations": json.dumps(evaluation["violations"]), "body": packer.pack(f"{said}\n{_json(rest)}")}


def _round_from(body: bytes, packer: compact.Packer) -> dict:
    said, rest = packer.unpack(body).split("\n", 1)
    (reasoning, feedback), record = json.loads(said), json.loads(rest)
    record["proposal"] = {"reasoning": reasoning, **record["proposal"]}
    record["evaluation"]["feedback"] = feedback
    return record


def _coach_entries(run_id: str, strategy_id: str | None, record: dict) -> list[dict]:
    """One coach memory row per checked action; a proposal-wide check counts for every entry action."""
    actions = record["proposal"]["actions"]
    evaluation = record["evaluation"]
    entries = [i for i, a in enumerate(actions) if a["action_type"] in ENTRY_TYPES]
    checks: dict[int, list] = {}
    rr: dict[int, float] = {}
    for check in evaluation["checks"]:
        for index in ([check["action"]] if check["action"] is not None else entries):
            checks.setdefault(index, []).append(
                [check["constraint"], int(check["passed"]), check.get("value"), check.get("threshold")])
        if check["constraint"] == "min_risk_reward":
            rr[check["action"]] = check.get("value")
    return [{"run_id": run_id, "round": record["round"], "action": index, "strategy_id": strategy_id,
             "symbol": actions[index]["symbol"], "action_type": actions[index]["action_type"],
             "outcome": evaluation["decision"], "rr": rr.get(index), "checks": _json(rows)}
            for index, rows in sorted(checks.items())]


MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [_v1, _v2_backtests, _v3_history, _v4_agent_path,
                                                              _v5_portfolio_backtests, _v6_round_complete,
                                                              _v7_backtest_jobs, _v8_reasoning, _v9_lean]
"""Forward migrations; schema version N means the first N have run. Append, never edit."""


DATES_BY = {"market": "market_time", "run": "timestamp"}
"""What History's dates mean: the market time the exchange decided on (ET), or when it was run (UTC)."""


def _filters(outcome=None, symbol=None, strategy=None, since=None, until=None, text=None,
             dates_by: str = "run", unfaithful: bool = False) -> tuple[str, list]:
    """SQL where clause and parameters for the History filters (`unfaithful`: a round's reasoning misstated
    its own trade, reasoning_score < 1)."""
    where, params = [], []
    dated = DATES_BY[dates_by]
    for column, value in (("outcome", outcome), ("symbol", symbol), ("strategy_id", strategy)):
        if value:
            values = [value] if isinstance(value, str) else list(value)
            where.append(f"{column} in ({', '.join('?' * len(values))})")
            params.extend(values)
    if since:
        where.append(f"{dated} >= ?")
        params.append(_instant(since, dates_by))
    if until:
        # A date means the whole day; a datetime is an exact bound.
        bound = until + timedelta(days=1) if isinstance(until, date) and not isinstance(until, datetime) else until
        where.append(f"{dated} < ?")
        params.append(_instant(bound, dates_by))
    if text:
        # The trader's words, matched literally and regardless of case, in the packed reasoning and critique.
        where.append("run_id in (select run_id from rounds where said_contains(body, ?))")
        params.append(text.lower())
    if unfaithful:
        where.append("reasoning_score < 1")
    return " and ".join(where) or "1 = 1", params


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


class _Presets:
    """Names a constraint snapshot after the preset it equals: shipped first, then saved, else "edited"."""

    def __init__(self, db: sqlite_utils.Database):
        self.db = db
        self.shipped = {name: load_preset(name).model_dump(mode="json") for name in list_presets()}

    def name(self, snapshot: dict) -> str:
        for name, constraints in self.shipped.items():
            if constraints == snapshot:
                return name
        for name, text in self.db.execute("select name, constraints from presets order by name"):
            if json.loads(text) == snapshot:
                return name
        return EDITED


EDITED = "edited"
"""The preset column of an exchange whose schema matches no shipped or saved preset."""

SIDES = {"enter_long": "long", "enter_short": "short"}


def _progress(actions: list[dict], violations: list[list[str]]) -> dict:
    """The columns that follow the rounds: the last round's trade (`actions`, as dicts), its standing
    violations and the fixed ones (`violations`: each round's, in order)."""
    if not violations:
        return {"side": None, "size_pct": None, "entry": None, "stop": None, "target": None, "violations": "",
                "fixed": ""}
    shown = next((a for a in actions if a["action_type"] in ENTRY_TYPES), actions[0])
    side = SIDES.get(shown["action_type"], shown["action_type"])
    if len(actions) > 1:
        side += f" +{len(actions) - 1}"
    standing = violations[-1]
    earlier = dict.fromkeys(v for vs in violations[:-1] for v in vs if v not in standing)
    return {"side": side, "size_pct": shown.get("size_pct"), "entry": shown.get("entry_price"),
            "stop": shown.get("stop_loss"), "target": shown.get("take_profit"), "violations": ", ".join(standing),
            "fixed": ", ".join(earlier)}


# The loop's writes go through these two rather than Table.insert: sqlite-utils re-reads the
# table's schema on every insert, which measured at five times the cost of the write itself.
def _insert(db: sqlite_utils.Database, table: str, row: dict, key: str | None = None) -> None:
    """Insert a row; with `key`, update the row that has that key instead (an upsert keeps its children)."""
    columns = ", ".join(f'"{c}"' for c in row)
    sql = f"insert into {table} ({columns}) values ({', '.join('?' * len(row))})"
    if key:
        sql += f" on conflict({key}) do update set " + ", ".join(f'"{c}" = excluded."{c}"' for c in row if c != key)
    db.execute(sql, list(row.values()))


def _insert_many(db: sqlite_utils.Database, table: str, rows: list[dict], replace: bool = False) -> None:
    if rows:
        columns = ", ".join(f'"{c}"' for c in rows[0])
        verb = "insert or replace" if replace else "insert"
        db.conn.executemany(f"{verb} into {table} ({columns}) values ({', '.join('?' * len(rows[0]))})",
                            [list(r.values()) for r in rows])


def _known_cost(usage: Usage) -> float | None:
    """The exchange's dollars for the list and sums; NULL (not 0) when no price was known (an unpriced model)."""
    return None if usage.cost_basis == "unknown" and not usage.cost_usd else usage.cost_usd


def _chunks(items: Iterable, size: int) -> Iterator[tuple]:
    """Tuples of `size` items, the last one shorter (itertools.batched, which Python 3.11 lacks)."""
    items = iter(items)
    while chunk := tuple(itertools.islice(items, size)):
        yield chunk


CHILDREN = ("coach_entries", "rounds", "portfolio_snapshots")
"""The tables whose rows belong to one exchange (by run_id)."""


def _dumps(model) -> str:
    """A model as the JSON text the store keeps (json.dumps of its JSON form: the bytes never change)."""
    return json.dumps(model.model_dump(mode="json"))


def _portfolio_row(artifact: Artifact) -> dict:
    """The portfolio_snapshots row: every column named here, never taken from the snapshot's keys."""
    snap = artifact.portfolio_snapshot
    return {
        "run_id": artifact.run_id, "timestamp": artifact.timestamp, "equity": snap.equity,
        "peak_equity": snap.peak_equity, "start_of_day_equity": snap.start_of_day_equity,
        "cumulative_pnl": snap.cumulative_pnl, "today_pnl": snap.today_pnl, "positions": json.dumps(snap.positions),
    }


def _artifact_progress(artifact: Artifact) -> dict:
    """_progress of an artifact's rounds, and the lowest reasoning score among them (null: none stated a number)."""
    rounds = [r for r in artifact.rounds if r.complete]  # a round cut short decided nothing
    actions = [a.model_dump() for a in rounds[-1].proposal.actions] if rounds else []
    scores = [r.reasoning_check.score for r in artifact.rounds  # what was said counts, cut short or not
              if r.reasoning_check and r.reasoning_check.score is not None]
    return {**_progress(actions, [r.evaluation.violations for r in rounds]),
            "reasoning_score": min(scores) if scores else None}


def _validated(artifact: Artifact | dict) -> Artifact:
    """The artifact as the model, validated: no caller's key ever reaches the database."""
    if isinstance(artifact, Artifact):
        return artifact
    try:
        return Artifact.model_validate(artifact)
    except ValidationError as error:
        raise InvalidInput(f"artifact: {explain(error)}") from None


class Store:
    """The SQLite store. Safe to share between threads; every process may open its own."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else default_path()
        self._local = threading.local()
        self._presets: _Presets | None = None
        self._packer: compact.Packer | None = None
        # A file in a folder the app may not write to can still be read: WAL cannot make its side files
        # there, so it is opened read-only (and immutable) instead, and any write is a StoreError.
        self.read_only = self.path.exists() and not os.access(self.path.parent, os.W_OK)
        try:
            if not self.read_only:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._migrate()
            elif self.schema_version < len(MIGRATIONS):
                raise StoreError(f"database {self.path}: read-only and from an older version of the app; "
                                 "open it once where it can be written to")
            self._packer = compact.Packer(dict(self.db.execute("select id, text from dictionaries").fetchall()))
        except (OSError, sqlite3.DatabaseError) as error:
            raise StoreError(f"database {self.path}: {error}") from None

    @property
    def db(self) -> sqlite_utils.Database:
        """This thread's connection."""
        db = getattr(self._local, "db", None)
        if db is None:
            read_only = f"{self.path.resolve().as_uri()}?mode=ro&immutable=1"  # as_uri quotes spaces and ?
            target, uri = (read_only, True) if self.read_only else (self.path, False)
            conn = sqlite3.connect(target, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False, uri=uri)
            conn.execute(f"pragma busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("pragma foreign_keys = on")
            conn.execute("pragma synchronous = normal")  # WAL + normal: durable across app crashes, fast
            conn.create_function("said_contains", 2, self._said_contains, deterministic=True)
            db = self._local.db = sqlite_utils.Database(conn)
        return db

    @contextmanager
    def _write(self) -> Iterator[sqlite_utils.Database]:
        """One write transaction that takes the write lock up front, so concurrent writers queue."""
        db = self.db
        db.execute("begin immediate")
        try:
            yield db
        except BaseException:
            db.rollback()
            raise
        db.commit()

    def _migrate(self) -> None:
        db = self.db
        db.execute("pragma journal_mode = wal")
        with self._write():
            version = db.execute("pragma user_version").fetchone()[0]
            if version > len(MIGRATIONS):
                raise StoreError(f"database {self.path}: schema version {version} is newer than this app's "
                                 f"{len(MIGRATIONS)}; open it with a newer version of the app")
            for number, migration in enumerate(MIGRATIONS[version:], start=version + 1):
                migration(db)
                db.execute(f"pragma user_version = {number}")

    def _said_contains(self, body: bytes | None, words: str) -> bool:
        """SQL said_contains(body, words): a round's reasoning or critique holds `words` (lower case)."""
        if body is None:
            return False
        said = self._packer.unpack_line(body)
        return any(words in text.lower() for text in json.loads(said))

    @property
    def schema_version(self) -> int:
        return self.db.execute("pragma user_version").fetchone()[0]

    def checkpoint(self) -> None:
        """Fold the write-ahead log into the database file and truncate it (size_bytes then counts data only)."""
        self.db.execute("pragma wal_checkpoint(truncate)")

    def copy_bytes(self) -> bytes:
        """The whole database as one consistent file (the WAL included), for a download."""
        return self.db.conn.serialize()

    def size_bytes(self) -> int:
        """The database size on disk, WAL included."""
        wal = self.path.with_name(self.path.name + "-wal")
        return self.path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)

    # -- writing exchanges ------------------------------------------------------------------

    def start_exchange(self, artifact: Artifact) -> None:
        """Write the exchange as INTERRUPTED before any agent speaks, with its portfolio."""
        with self._write() as db:
            self._start(db, artifact)

    def _start(self, db: sqlite_utils.Database, artifact: Artifact, finished: bool = False) -> None:
        strategy = artifact.strategy_id
        if strategy:
            db.execute(
                "insert into strategies (strategy_id, first_seen, last_seen) values (?, ?, ?) "
                "on conflict(strategy_id) do update set last_seen = excluded.last_seen",
                [strategy, artifact.timestamp, artifact.timestamp],
            )
        _insert(db, "exchanges", self._exchange_row(artifact, finished), key="run_id")
        _insert(db, "portfolio_snapshots", _portfolio_row(artifact))

    def record_round(self, artifact: Artifact, record: Round) -> None:
        """Write one finished round, its checks into coach memory, and the exchange's progress."""
        with self._write() as db:
            self._round(db, artifact, record)
            progress = {"rounds_taken": record.round, **_artifact_progress(artifact)}
            db.execute(f"update exchanges set {', '.join(f'{c} = ?' for c in progress)} where run_id = ?",
                       [*progress.values(), artifact.run_id])

    def _round(self, db: sqlite_utils.Database, artifact: Artifact, record: Round) -> None:
        data = record.model_dump(mode="json")
        _insert(db, "rounds", _round_columns(artifact.run_id, data, self._packer), key="run_id, round")
        if record.complete:  # the coach memory learns from verdicts given, not from a round cut short
            _insert_many(db, "coach_entries", _coach_entries(artifact.run_id, artifact.strategy_id, data),
                         replace=True)

    def finish_exchange(self, artifact: Artifact, last_round: Round | None = None) -> None:
        """Write the outcome of an exchange, with the round that decided it when given."""
        with self._write() as db:
            if last_round is not None:
                self._round(db, artifact, last_round)
            outcome = self._outcome_row(artifact, finished=True)
            db.execute(f"update exchanges set {', '.join(f'{c} = ?' for c in outcome)} where run_id = ?",
                       [*outcome.values(), artifact.run_id])

    def record(self, artifact: Artifact | dict) -> None:
        """Write a whole artifact at once (imports, tests, backfills); recording it again replaces it.

        A dict (an imported file) is validated through `Artifact` first: InvalidInput names what is wrong.
        """
        artifact = _validated(artifact)
        with self._write() as db:
            self._record(db, artifact)

    def record_many(self, artifacts: Iterable[Artifact | dict], batch: int = 2_000) -> int:
        """Write whole artifacts, `batch` to a transaction (imports, backfills, benchmarks); returns how many."""
        count = 0
        for chunk in _chunks(artifacts, batch):
            with self._write() as db:
                for artifact in chunk:
                    self._record(db, _validated(artifact))
            count += len(chunk)
        return count

    def _record(self, db: sqlite_utils.Database, artifact: Artifact) -> None:
        # Children first, so a second import cannot double the coach memory the deriver counts.
        for table in CHILDREN:
            db.execute(f"delete from {table} where run_id = ?", [artifact.run_id])
        self._start(db, artifact, finished=True)
        for record in artifact.rounds:
            self._round(db, artifact, record)

    def _outcome_row(self, artifact: Artifact, finished: bool) -> dict:
        """The columns that change as an exchange goes on."""
        return {
            "outcome": artifact.outcome, "approved": int(artifact.approved),
            "rounds_taken": artifact.rounds_taken, "termination_reason": artifact.termination_reason,
            "total_tokens": artifact.total_tokens, "cost_usd": _known_cost(artifact.usage),
            "detail": self._packer.pack(_json(artifact.model_dump(mode="json", exclude=set(PLAIN_FIELDS)))),
            "finished": int(finished), **_artifact_progress(artifact),
        }

    def _exchange_row(self, artifact: Artifact, finished: bool) -> dict:
        agents = artifact.agents
        constraints = artifact.constraint_snapshot.model_dump(mode="json")
        world = artifact.world_state.model_dump(mode="json")
        return {
            "run_id": artifact.run_id, "timestamp": artifact.timestamp, "symbol": artifact.symbol,
            "strategy_id": artifact.strategy_id, "player": agents.player, "coach": agents.coach,
            "model": agents.model, "player_class": agents.player_class, "coach_class": agents.coach_class,
            "market_time": artifact.world_state.model_dump(mode="json")["as_of"],
            "preset": self._preset_name(artifact.constraint_snapshot.model_dump(mode="json")),
            **self._outcome_row(artifact, finished),
        }

    def _preset_name(self, snapshot: dict) -> str:
        if self._presets is None:
            self._presets = _Presets(self.db)
        return self._presets.name(snapshot)

    # -- reading ----------------------------------------------------------------------------

    LIST_COLUMNS = ("run_id, market_time, timestamp, outcome, approved, rounds_taken, termination_reason, "
                    "total_tokens, cost_usd, symbol, strategy_id, preset, side, size_pct, entry, stop, target, "
                    "violations, fixed, reasoning_score, player, coach, model, finished")

    def list_exchanges(self, outcome=None, symbol=None, strategy=None, since=None, until=None, text=None,
                       dates_by: str = "run", unfaithful: bool = False, limit: int | None = 50,
                       offset: int | None = None) -> list[dict]:
        """Exchanges matching the filters, newest first by the dates they filter on, as summary rows."""
        where, params = _filters(outcome, symbol, strategy, since, until, text, dates_by, unfaithful)
        return list(self.db["exchanges"].rows_where(
            where, params, order_by="timestamp desc" if dates_by == "run" else "market_time desc, rowid desc", select=self.LIST_COLUMNS,
            limit=limit, offset=offset,
        ))

    def count_exchanges(self, outcome=None, symbol=None, strategy=None, since=None, until=None, text=None,
                        dates_by: str = "run", unfaithful: bool = False) -> int:
        """How many exchanges match the filters."""
        return self.db["exchanges"].count_where(*_filters(outcome, symbol, strategy, since, until, text, dates_by,
                                                          unfaithful))

    def summary(self, outcome=None, symbol=None, strategy=None, since=None, until=None, text=None,
                dates_by: str = "run", unfaithful: bool = False) -> dict:
        """Count, approval rate, mean rounds, tokens and cost of the matching exchanges."""
        where, params = _filters(outcome, symbol, strategy, since, until, text, dates_by, unfaithful)
        row = self.db.execute(
            "select count(*), avg(approved), avg(rounds_taken), coalesce(sum(total_tokens), 0), "
            f"coalesce(sum(cost_usd), 0) from exchanges where {where}", params
        ).fetchone()
        return {"count": row[0], "approval_rate": row[1] or 0.0, "mean_rounds": row[2] or 0.0,
                "tokens": row[3], "cost_usd": row[4]}

    def violation_counts(self, outcome=None, symbol=None, strategy=None, since=None, until=None, text=None,
                         dates_by: str = "run", unfaithful: bool = False) -> list[tuple[str, int]]:
        """How often each constraint was violated in the matching exchanges' rounds, most first."""
        where, params = _filters(outcome, symbol, strategy, since, until, text, dates_by, unfaithful)
        # Unfiltered, every round counts: the subquery would only cost a pass over 100k exchanges.
        matching = "" if not params else f"where rounds.run_id in (select run_id from exchanges where {where}) "
        rows = self.db.execute(
            "select v.value, count(*) from rounds, json_each(rounds.violations) v "
            f"{matching}group by v.value order by count(*) desc, v.value", params
        ).fetchall()
        return [(name, n) for name, n in rows]

    def outcomes_by_day(self, outcome=None, symbol=None, strategy=None, since=None, until=None, text=None,
                        dates_by: str = "run", unfaithful: bool = False) -> list[tuple[str, str, int]]:
        """(day, outcome, exchanges) of the matching exchanges, oldest day first.

        The day is the market day (ET) or the day the exchange was run (UTC; a backtest's exchanges are
        dated on their simulated ET clock), as `dates_by` says.
        """
        where, params = _filters(outcome, symbol, strategy, since, until, text, dates_by, unfaithful)
        return [tuple(row) for row in self.db.execute(
            f"select substr({DATES_BY[dates_by]}, 1, 10) as day, outcome, count(*) from exchanges where {where} "
            "group by day, outcome order by day, outcome", params
        ).fetchall()]

    def get_exchange(self, run_id: str) -> Artifact | None:
        """The artifact of one exchange, rebuilt from its rows, or None."""
        row = self.db.execute("select run_id, timestamp, outcome, approved, termination_reason, total_tokens, "
                              "strategy_id, symbol, player, coach, model, player_class, coach_class, detail "
                              "from exchanges where run_id = ?",
                              [run_id]).fetchone()
        if row is None:
            return None
        rounds = [_round_from(body, self._packer) for (body,) in self.db.execute(
            "select body from rounds where run_id = ? order by round", [run_id])]
        (run_id, timestamp, outcome, approved, reason, tokens, strategy, symbol, player, coach, model, player_class,
         coach_class, detail) = row
        stored = {
            "run_id": run_id, "timestamp": timestamp, "outcome": outcome, "approved": bool(approved),
            "rounds_taken": sum(r.get("complete", True) for r in rounds), "termination_reason": reason, "total_tokens": tokens,
            **json.loads(self._packer.unpack(detail)), "rounds": rounds, "strategy_id": strategy, "symbol": symbol,
            "agents": {"player": player, "coach": coach, "model": model, "player_class": player_class,
                       "coach_class": coach_class},
        }
        try:
            return Artifact.model_validate(stored)
        except ValidationError as error:
            raise StoreError(f"database {self.path}: exchange {run_id} does not read back as an artifact: "
                             f"{explain(error)}") from None

    def strategies(self) -> list[str]:
        """Every strategy that has exchanges, most recent first."""
        return [r["strategy_id"] for r in self.db["strategies"].rows_where(order_by="last_seen desc")]

    def symbols(self) -> list[str]:
        """Every symbol that has exchanges."""
        return [r[0] for r in self.db.execute("select distinct symbol from exchanges order by symbol")]

    def coach_memory(self, strategy_id: str) -> list[dict]:
        """Every memory row of one strategy."""
        cursor = self.db.execute("select * from coach_memory where strategy_id = ?", [strategy_id])
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor]

    def memory_summary(self, strategy_id: str, limit: int = 10) -> list[dict]:
        """Which constraints this strategy broke most, per symbol: the Player's lessons."""
        rows = self.db.execute(
            "select symbol, \"constraint\", sum(1 - passed) as failures, count(*) as checks from coach_memory "
            "where strategy_id = ? group by symbol, \"constraint\" having failures > 0 "
            "order by failures desc, symbol, \"constraint\" limit ?", [strategy_id, limit]
        ).fetchall()
        return [{"symbol": s, "constraint": c, "failures": f, "checks": n} for s, c, f, n in rows]

    # -- pruning --------------------------------------------------------------------------------

    def count_older(self, before: datetime | None) -> int:
        """How many exchanges were run before `before` (None: every exchange); what prune would delete."""
        if before is None:
            return self.count_exchanges()
        return self.count_exchanges(until=before)

    def prune(self, before: datetime | None) -> int:
        """Delete the exchanges run before `before` (None: all) with their rounds, coach memory and
        portfolio snapshots, then VACUUM so the file shrinks. Returns how many exchanges went.

        A backtest's exchanges are dated on their simulated day; the backtests' own results stay.
        """
        where, params = ("1 = 1", []) if before is None else _filters(until=before)
        doomed = f"select run_id from exchanges where {where}"
        with self._write() as db:
            for table in CHILDREN:
                db.execute(f"delete from {table} where run_id in ({doomed})", params)
            deleted = db.execute(f"delete from exchanges where {where}", params).rowcount
            db.execute("delete from strategies where strategy_id not in "
                       "(select strategy_id from exchanges where strategy_id is not null)")
        if deleted:
            self.db.execute("vacuum")
            self.checkpoint()  # the WAL the vacuum wrote goes too
        return deleted

    # -- custom presets ---------------------------------------------------------------------

    def save_preset(self, name: str, constraints: Constraints) -> bool:
        """Save a named custom preset; True when it replaced one. Shipped names are refused."""
        name = name.strip()
        if not name:
            raise InvalidInput("preset name: must not be empty")
        if name.lower() in {shipped.lower() for shipped in list_presets()}:
            # A shipped preset is a fixed reference point (tests, backtests, the derive diff): never shadow it.
            raise InvalidInput(f"preset name: “{name}” is a shipped preset and stays as shipped; choose another name")
        with self._write() as db:
            replaced = db["presets"].count_where("name = ?", [name]) > 0
            db["presets"].insert(
                {"name": name, "constraints": constraints.model_dump_json(),
                 "saved_at": datetime.now(timezone.utc).isoformat()},
                replace=True,
            )
        return replaced

    def custom_presets(self) -> dict[str, Constraints]:
        """The saved custom presets that still validate, by name (see unusable_presets for the others)."""
        return {name: found for name, found in self._saved_presets().items() if isinstance(found, Constraints)}

    def unusable_presets(self) -> dict[str, str]:
        """Saved custom presets that no longer validate (an older app's fields, a hand-edited file), with why."""
        return {name: found for name, found in self._saved_presets().items() if isinstance(found, str)}

    def _saved_presets(self) -> dict[str, Constraints | str]:
        found: dict[str, Constraints | str] = {}
        for row in self.db["presets"].rows_where(order_by="name"):
            try:
                found[row["name"]] = Constraints.model_validate_json(row["constraints"])
            except ValidationError as error:
                found[row["name"]] = explain(error)
        return found

    # -- backtests (core.backtest): a row per run, a row per finished exchange so a run resumes --

    def start_backtest(self, row: dict) -> None:
        """Write (or update) a backtest as running; a run started before keeps its creation time."""
        with self._write() as db:
            existing = db.execute("select created from backtests where run_key = ?", [row["run_key"]]).fetchone()
            _insert(db, "backtests", {**row, "created": existing[0] if existing else row["created"]}, key="run_key")

    def save_backtest_day(self, row: dict) -> None:
        """Write one decided exchange of a backtest (run_key, day, symbol, outcome, actions, verdicts...)."""
        with self._write() as db:
            _insert(db, "backtest_days", row, key="run_key, day, symbol")

    def backtest_days(self, run_key: str) -> dict[tuple[str, str], dict]:
        """The stored exchanges of a backtest by (day, symbol)."""
        return {(r["day"], r["symbol"]): r for r in self.db["backtest_days"].rows_where("run_key = ?", [run_key])}

    def finish_backtest(self, run_key: str, status: str, days_done: int, metrics: dict) -> None:
        """Record where a backtest stands (finished, cancelled or paused), how many days it ran, its metrics."""
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        with self._write() as db:
            db.execute("update backtests set status = ?, updated = ?, days_done = ?, metrics = ? where run_key = ?",
                       [status, now, days_done, json.dumps(metrics), run_key])

    def set_backtest_status(self, run_key: str, status: str) -> None:
        """Mark a stored backtest (say cancelled by the user: its decided days stay, rerunning it resumes)."""
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        with self._write() as db:
            db.execute("update backtests set status = ?, updated = ? where run_key = ?", [status, now, run_key])

    def get_backtest(self, run_key: str) -> dict | None:
        """One stored backtest's row (settings and metrics parsed), or None."""
        rows = list(self.db["backtests"].rows_where("run_key = ?", [run_key]))
        return self._backtest_row(rows[0]) if rows else None

    def list_backtests(self, limit: int = 50) -> list[dict]:
        """Stored backtests, newest first, with their headline metrics."""
        return [self._backtest_row(r) for r in self.db["backtests"].rows_where(order_by="updated desc", limit=limit)]

    @staticmethod
    def _backtest_row(row: dict) -> dict:
        return {**row, "metrics": json.loads(row["metrics"] or "{}"), "settings": json.loads(row["settings"] or "{}")}

    def save_backtest_job(self, job_key: str, form: dict, run_keys: list[str]) -> None:
        """Write (or update) one run of the Backtest page: its form and the run keys it has started so far."""
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        with self._write() as db:
            existing = db.execute("select created from backtest_jobs where job_key = ?", [job_key]).fetchone()
            _insert(db, "backtest_jobs", {"job_key": job_key, "created": existing[0] if existing else now,
                                          "form": json.dumps(form), "run_keys": json.dumps(run_keys)}, key="job_key")

    def backtest_jobs(self, limit: int = 50) -> list[dict]:
        """The Backtest page's runs, newest first, with their forms and run keys parsed."""
        return [{**r, "form": json.loads(r["form"]), "run_keys": json.loads(r["run_keys"])}
                for r in self.db["backtest_jobs"].rows_where(order_by="created desc", limit=limit)]

def _named_errors(method):
    """A public Store method whose SQLite errors (a corrupt page, a read-only file, a full disk) come
    out as a StoreError naming the file and the cause."""

    @functools.wraps(method)
    def guarded(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as error:
            cause = "it is read-only here" if self.read_only or "readonly" in str(error) else error
            raise StoreError(f"database {self.path}: {cause}") from None

    return guarded


for _name, _method in list(vars(Store).items()):
    if not _name.startswith("_") and callable(_method) and not isinstance(_method, (staticmethod, classmethod)):
        setattr(Store, _name, _named_errors(_method))
