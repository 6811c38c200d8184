"""The journal's schema, as the steps that built it: sqlite-utils Migrations, each step in its own
transaction. A file of any earlier version opens: the steps it lacks run, in order. Append, never edit."""

from __future__ import annotations

import json

import sqlite_utils

from core.journal import compact
from core.journal.db import Schema, batches, compact_json, insert, insert_many, update
from core.journal.exchanges import coach_entries, progress, round_columns
from core.journal.history import HISTORY_COLUMNS
from core.journal.presets import PresetNames


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


def _v3_history(db: sqlite_utils.Database) -> None:
    """History's columns (HISTORY_COLUMNS), filled in for the exchanges already stored."""
    for column, kind in HISTORY_COLUMNS.items():
        db["exchanges"].add_column(column, kind)
    presets = PresetNames(db)
    for run_id, constraints, world in db.execute(
            "select run_id, constraint_snapshot, world_state from exchanges").fetchall():
        rounds = db.execute("select proposal, violations from rounds where run_id = ? order by round",
                            [run_id]).fetchall()
        actions = json.loads(rounds[-1][0])["actions"] if rounds else []
        row = {"market_time": json.loads(world)["as_of"], "preset": presets.name(json.loads(constraints)),
               **progress(actions, [json.loads(violations) for _, violations in rounds])}
        update(db, "exchanges", row, "run_id", run_id)
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


def _v9_lean(db: sqlite_utils.Database) -> None:
    """A lean store (issue 14): an exchange's snapshots and each round's JSON and texts packed with
    core.compact, coach memory one row per checked action (the per-check rows are a view)."""
    db.execute("create table dictionaries (id integer primary key, text blob not null)")
    db.execute("insert into dictionaries (id, text) values (1, ?)", [compact.dictionary()])
    packer = compact.Packer({1: compact.dictionary()})

    db.execute("alter table exchanges add column detail blob")
    for rowid, usage, constraints, portfolio, world in batches(
            db, "select rowid, usage, constraint_snapshot, portfolio_snapshot, world_state from exchanges "
                "where rowid > ? order by rowid limit ?"):
        detail = {"usage": json.loads(usage), "constraint_snapshot": json.loads(constraints),
                  "portfolio_snapshot": json.loads(portfolio), "world_state": json.loads(world)}
        db.execute("update exchanges set detail = ? where rowid = ?", [packer.pack(compact_json(detail)), rowid])
    for column in ("usage", "constraint_snapshot", "portfolio_snapshot", "world_state"):
        db.execute(f"alter table exchanges drop column {column}")

    wide = ("proposal", "reasoning", "checks", "feedback", "coach_opinion", "disagrees", "tokens", "usage", "latency_ms",
            "agent_path", "complete", "reasoning_check", "reasoning_grade")
    kept = [(c.name, c.type) for c in db["rounds"].columns if c.name not in wide]  # later migrations' columns too
    create_rounds(db, "rounds_lean", [(n, t) for n, t in kept if n not in ("run_id", "round", "decision", "violations")])
    create_coach_entries(db)
    rebuilt = ("run_id", "round", "decision", "violations", "body", *(n for n, _ in kept[4:]))
    for row in batches(db, "select r.rowid, r.*, e.strategy_id from rounds r join exchanges e using (run_id) "
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
        columns = {**old, **round_columns(old["run_id"], record, packer)}
        insert(db, "rounds_lean", {c: columns[c] for c in rebuilt})
        if record["complete"]:
            insert_many(db, "coach_entries", coach_entries(old["run_id"], old["strategy_id"], record))
    db.execute("drop table rounds")
    db.execute("alter table rounds_lean rename to rounds")
    db.execute("drop table coach_memory")
    db.execute(
        "create view coach_memory as select e.run_id, e.round, e.action, e.strategy_id, e.symbol, e.action_type, "
        "json_extract(c.value, '$[0]') as \"constraint\", json_extract(c.value, '$[2]') as value, "
        "json_extract(c.value, '$[3]') as threshold, json_extract(c.value, '$[1]') as passed, e.rr, e.outcome "
        "from coach_entries e, json_each(e.checks) c")


def create_rounds(db: sqlite_utils.Database, name: str, extra: list[tuple[str, str]]) -> None:
    """Rounds, clustered by exchange: the decision and violations in plain columns (History counts them),
    the whole round packed in `body` (see exchanges.round_columns)."""
    more = "".join(f', "{column}" {kind}' for column, kind in extra)
    db.execute(f"create table {name} (run_id text not null references exchanges(run_id), round integer not null, "
               f"decision text, violations text, body blob{more}, primary key (run_id, round)) without rowid")


def create_coach_entries(db: sqlite_utils.Database) -> None:
    """Coach memory, one row per checked action of a round: its checks as [[constraint, passed, value,
    threshold], ...] (proposal-wide checks in every entry's list). The `coach_memory` view spreads them out."""
    db.execute("create table coach_entries (run_id text not null references exchanges(run_id), round integer not null, "
               "action integer not null, strategy_id text, symbol text, action_type text, outcome text, rr real, "
               "checks text, primary key (run_id, round, action)) without rowid")
    db.execute("create index idx_coach_entries_strategy_id on coach_entries (strategy_id)")


def _v10_repeat_groups(db: sqlite_utils.Database) -> None:
    """Exchanges run as one group by core.repeat (the same inputs k times) share a repeat_id; History shows a
    group as one row. Exchanges stored before were each on their own: null."""
    if "repeat_id" not in db["exchanges"].columns_dict:
        db["exchanges"].add_column("repeat_id", str)
    db["exchanges"].create_index(["repeat_id"], if_not_exists=True)


def _v11_what_ifs(db: sqlite_utils.Database) -> None:
    """What each rule costs, stored with the backtest it was computed for (reopened with it), and the
    evidence behind a preset saved from a frontier (the spec, the challenge, the figures)."""
    db["backtest_what_ifs"].create({"run_key": str, "kind": str, "created": str, "rows": str, "notes": str},
                                   pk=("run_key", "kind"), foreign_keys=[("run_key", "backtests", "run_key")],
                                   if_not_exists=True)
    if "evidence" not in db["presets"].columns_dict:
        db["presets"].add_column("evidence", str)


def _v12_recorded(db: sqlite_utils.Database) -> None:
    """When each exchange was recorded (UTC), which prune goes by: a backtest's exchange is dated on its simulated
    day, so its timestamp says nothing about its age in the file. Exchanges stored before: their timestamp."""
    db["exchanges"].add_column("recorded", str)
    db.execute("update exchanges set recorded = timestamp")


def _v13_player_index(db: sqlite_utils.Database) -> None:
    """History filters by the Player (house, Claude, an agent of your own, one over MCP) and lists them: an index."""
    db["exchanges"].create_index(["player"], if_not_exists=True)


MIGRATIONS = Schema("player_coach", [_v1, _v2_backtests, _v3_history, _v4_agent_path, _v5_portfolio_backtests,
                                     _v6_round_complete, _v7_backtest_jobs, _v8_reasoning, _v9_lean,
                                     _v10_repeat_groups, _v11_what_ifs, _v12_recorded, _v13_player_index])
"""The schema's steps in order; schema version N means the first N have run."""
