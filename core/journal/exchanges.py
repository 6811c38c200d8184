"""Exchanges in the journal: written as they happen (an exchange when it starts, each round when it ends,
so a crash leaves an INTERRUPTED exchange with every finished round), packed, and read back as artifacts.

An exchange is a row of `exchanges` (History's columns plain, the rest packed in `detail`), its rounds
(decision and violations plain, the rest packed in `body`: see `round_columns`), its portfolio snapshot
and its coach memory (`coach_entries`, one row per checked action; the `coach_memory` view spreads them).
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable
from datetime import datetime, timezone

import sqlite_utils
from pydantic import ValidationError

from core.exchange.errors import InvalidInput, StoreError
from core.exchange.presets import explain
from core.exchange.schema import ENTRY_TYPES, SIDES
from core.exchange.artifact import Artifact, Round, Usage
from core.journal import compact
from core.journal.db import StoreFile, chunks, compact_json, insert, insert_many, named_errors, update

PLAIN_FIELDS = ("run_id", "timestamp", "outcome", "approved", "rounds_taken", "termination_reason", "total_tokens",
                "strategy_id", "symbol", "agents", "rounds", "repeat_id")
"""The artifact's fields that have columns (or tables) of their own; the rest are packed into exchanges.detail."""

CHILDREN = ("coach_entries", "rounds", "portfolio_snapshots")
"""The tables whose rows belong to one exchange (by run_id)."""


DAMAGE = (zlib.error, KeyError, IndexError, ValueError, TypeError, AttributeError)
"""What unpacking a damaged blob raises (flipped bytes, a dictionary id the file lacks, emptied, not JSON)."""


def round_columns(run_id: str, record: dict, packer: compact.Packer) -> dict:
    """A round's JSON form (a migration reads rounds back as such) as its row: see _round_row."""
    evaluation = record["evaluation"]
    rest = {**record, "proposal": {k: v for k, v in record["proposal"].items() if k != "reasoning"},
            "evaluation": {k: v for k, v in evaluation.items() if k != "feedback"}}
    return _round_row(run_id, record["round"], evaluation["decision"], evaluation["violations"],
                      [record["proposal"]["reasoning"], evaluation["feedback"]], compact_json(rest), packer)


def _round_columns(run_id: str, record: Round, packer: compact.Packer) -> dict:
    """A round as its row, its rest written as JSON by the model itself (pydantic's serializer, not a dict's dump
    through json: the same text but for a small float, 1e-05 written 0.00001, which reads back the same float)."""
    evaluation = record.evaluation
    return _round_row(run_id, record.round, evaluation.decision, evaluation.violations,
                      [record.proposal.reasoning, evaluation.feedback], record.model_dump_json(exclude=_SAID), packer)


_SAID = {"proposal": {"reasoning"}, "evaluation": {"feedback"}}  # what a round's body holds on its first line


def _round_row(run_id: str, number: int, decision: str, violations: list[str], said: list[str], rest: str,
               packer: compact.Packer) -> dict:
    """A round's row: `body` packs one line of what was said, [reasoning, critique], then one line of the rest
    (JSON: no line break inside either), so a text search unpacks only as far as the first line's end."""
    return {"run_id": run_id, "round": number, "decision": decision, "violations": json.dumps(violations),
            "body": packer.pack(f"{compact_json(said)}\n{rest}")}


def round_from(body: bytes, packer: compact.Packer) -> dict:
    """The JSON form of a round from its packed body (raises what a damaged body raises: see read_round)."""
    said, rest = packer.unpack(body).split("\n", 1)
    (reasoning, feedback), record = json.loads(said), json.loads(rest)
    record["proposal"] = {"reasoning": reasoning, **record["proposal"]}
    record["evaluation"]["feedback"] = feedback
    return record


def coach_entries(run_id: str, strategy_id: str | None, record: dict) -> list[dict]:
    """A round's coach memory rows from its JSON form (a migration's): see _coach_rows."""
    evaluation = record["evaluation"]
    return _coach_rows(run_id, strategy_id, record["round"], evaluation["decision"],
                       [(a["action_type"], a["symbol"]) for a in record["proposal"]["actions"]],
                       [(c["constraint"], c["action"], c["passed"], c.get("value"), c.get("threshold"))
                        for c in evaluation["checks"]])


def _coach_entries(run_id: str, strategy_id: str | None, record: Round) -> list[dict]:
    evaluation = record.evaluation
    return _coach_rows(run_id, strategy_id, record.round, evaluation.decision,
                       [(a.action_type, a.symbol) for a in record.proposal.actions],
                       [(c.constraint, c.action, c.passed, c.value, c.threshold) for c in evaluation.checks])


def _coach_rows(run_id: str, strategy_id: str | None, number: int, decision: str, actions: list[tuple[str, str]],
                checks: list[tuple]) -> list[dict]:
    """One coach memory row per checked action; a proposal-wide check counts for every entry action. `actions`:
    (action_type, symbol) each; `checks`: (constraint, action, passed, value, threshold) each."""
    entries = [i for i, (action_type, _) in enumerate(actions) if action_type in ENTRY_TYPES]
    rows: dict[int, list] = {}
    rr: dict[int | None, float | None] = {}
    for constraint, action, passed, value, threshold in checks:
        for index in ([action] if action is not None else entries):
            rows.setdefault(index, []).append([constraint, int(passed), value, threshold])
        if constraint == "min_risk_reward":
            rr[action] = value
    return [{"run_id": run_id, "round": number, "action": index, "strategy_id": strategy_id,
             "symbol": actions[index][1], "action_type": actions[index][0], "outcome": decision, "rr": rr.get(index),
             "checks": compact_json(checked)}
            for index, checked in sorted(rows.items())]


def progress(actions: list[dict], violations: list[list[str]]) -> dict:
    """The columns that follow the rounds: the last round's trade (`actions`, as dicts), its standing
    violations and the fixed ones (`violations`: each round's, in order)."""
    if not violations:
        return {"side": None, "size_pct": None, "entry": None, "stop": None, "target": None, "violations": "",
                "fixed": ""}
    shown = next((a for a in actions if a["action_type"] in ENTRY_TYPES), actions[0])
    side = SIDES[shown["action_type"]]
    if len(actions) > 1:
        side += f" +{len(actions) - 1}"
    standing = violations[-1]
    earlier = dict.fromkeys(v for vs in violations[:-1] for v in vs if v not in standing)
    return {"side": side, "size_pct": shown.get("size_pct"), "entry": shown.get("entry_price"),
            "stop": shown.get("stop_loss"), "target": shown.get("take_profit"), "violations": ", ".join(standing),
            "fixed": ", ".join(earlier)}


def _artifact_progress(artifact: Artifact) -> dict:
    """progress() of an artifact's rounds, and the lowest reasoning score among them (null: none stated a number)."""
    rounds = [r for r in artifact.rounds if r.complete]  # a round cut short decided nothing
    actions = [a.model_dump() for a in rounds[-1].proposal.actions] if rounds else []
    scores = [r.reasoning_check.score for r in artifact.rounds  # what was said counts, cut short or not
              if r.reasoning_check and r.reasoning_check.score is not None]
    return {**progress(actions, [r.evaluation.violations for r in rounds]),
            "reasoning_score": min(scores) if scores else None}


def _known_cost(usage: Usage) -> float | None:
    """The exchange's dollars for the list and sums; NULL (not 0) when no price was known (an unpriced model)."""
    return None if usage.cost_basis == "unknown" and not usage.cost_usd else usage.cost_usd


def _portfolio_row(artifact: Artifact) -> dict:
    """The portfolio_snapshots row: every column named here, never taken from the snapshot's keys."""
    snap = artifact.portfolio_snapshot
    return {
        "run_id": artifact.run_id, "timestamp": artifact.timestamp, "equity": snap.equity,
        "peak_equity": snap.peak_equity, "start_of_day_equity": snap.start_of_day_equity,
        "cumulative_pnl": snap.cumulative_pnl, "today_pnl": snap.today_pnl, "positions": json.dumps(snap.positions),
    }


def _detail(artifact: Artifact) -> dict:
    """The JSON form of what `exchanges.detail` packs: the artifact less its plain fields."""
    return artifact.model_dump(mode="json", exclude=_PACKED_AWAY)


_PACKED_AWAY = frozenset(PLAIN_FIELDS)


class _UnderWay:
    """The exchange a thread started: its detail as written, and the snapshots it was dumped from."""

    __slots__ = ("run_id", "snapshots", "detail")

    def __init__(self, artifact: Artifact, detail: dict):
        self.run_id = artifact.run_id
        self.snapshots = (artifact.constraint_snapshot, artifact.portfolio_snapshot, artifact.world_state)
        self.detail = detail

    def holds(self, artifact: Artifact) -> bool:
        """Whether `artifact` is this exchange with the very snapshots its detail was dumped from."""
        mine = self.snapshots
        return (artifact.run_id == self.run_id and artifact.constraint_snapshot is mine[0]
                and artifact.portfolio_snapshot is mine[1] and artifact.world_state is mine[2])


def _validated(artifact: Artifact | dict) -> Artifact:
    """The artifact as the model, validated: no caller's key ever reaches the database."""
    if isinstance(artifact, Artifact):
        return artifact
    try:
        return Artifact.model_validate(artifact)
    except ValidationError as error:
        raise InvalidInput(f"artifact: {explain(error)}") from None


class Exchanges(StoreFile):
    """Writing exchanges as they happen or whole, and reading them back (in a Store, whose Presets
    name each exchange's schema)."""

    @named_errors
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
        # A live exchange is recorded now; a whole artifact (an import, a backfill) when it was run.
        recorded = artifact.timestamp if finished else datetime.now(timezone.utc).isoformat()
        detail = _detail(artifact)
        insert(db, "exchanges", {**self._exchange_row(artifact, detail, finished), "recorded": recorded}, key="run_id")
        insert(db, "portfolio_snapshots", _portfolio_row(artifact))
        if not finished:
            self._local.under_way = _UnderWay(artifact, detail)

    @named_errors
    def record_round(self, artifact: Artifact, record: Round) -> None:
        """Write one finished round, its checks into coach memory, and the exchange's progress."""
        with self._write() as db:
            self._round(db, artifact, record)
            update(db, "exchanges", {"rounds_taken": record.round, **_artifact_progress(artifact)}, "run_id",
                   artifact.run_id)

    def _round(self, db: sqlite_utils.Database, artifact: Artifact, record: Round) -> None:
        insert(db, "rounds", _round_columns(artifact.run_id, record, self._packer), key="run_id, round")
        if record.complete:  # the coach memory learns from verdicts given, not from a round cut short
            insert_many(db, "coach_entries", _coach_entries(artifact.run_id, artifact.strategy_id, record),
                        replace=True)

    @named_errors
    def finish_exchange(self, artifact: Artifact, last_round: Round | None = None) -> None:
        """Write the outcome of an exchange, with the round that decided it when given."""
        with self._write() as db:
            if last_round is not None:
                self._round(db, artifact, last_round)
            update(db, "exchanges", self._outcome_row(artifact, self._finished_detail(artifact), finished=True),
                   "run_id", artifact.run_id)

    @named_errors
    def explain_interruption(self, run_id: str, reason: str) -> None:
        """Say why an exchange ended INTERRUPTED when its caller learns it only afterwards (a page's run cut short
        by a click): its termination_reason becomes `reason`. Any other outcome is left as it is."""
        with self._write() as db:
            db.execute("update exchanges set termination_reason = ? where run_id = ? and outcome = 'INTERRUPTED'",
                       [reason, run_id])

    @named_errors
    def record(self, artifact: Artifact | dict) -> None:
        """Write a whole artifact at once (imports, tests, backfills); recording it again replaces it.

        A dict (an imported file) is validated through `Artifact` first: InvalidInput names what is wrong.
        """
        artifact = _validated(artifact)
        with self._write() as db:
            self._record(db, artifact)

    @named_errors
    def record_many(self, artifacts: Iterable[Artifact | dict], batch: int = 2_000) -> int:
        """Write whole artifacts, `batch` to a transaction (imports, backfills, benchmarks); returns how many."""
        count = 0
        for chunk in chunks(artifacts, batch):
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

    def _finished_detail(self, artifact: Artifact) -> dict | None:
        """The detail to write when an exchange ends, or None when the one written at its start still holds.

        Since the start only the usage can have changed: the snapshots are the loop's own copies, which
        nothing changes. So the exchange this thread started (the same snapshot objects) re-dumps its usage
        alone, and its detail is packed again only when that moved (a model's tokens; never a house exchange)."""
        started, self._local.under_way = getattr(self._local, "under_way", None), None
        if started is None or not started.holds(artifact):
            return _detail(artifact)
        usage = artifact.usage.model_dump(mode="json")
        return None if usage == started.detail["usage"] else {**started.detail, "usage": usage}

    def _outcome_row(self, artifact: Artifact, detail: dict | None, finished: bool) -> dict:
        """The columns that change as an exchange goes on (`detail` None: the one on record stands)."""
        packed = {} if detail is None else {"detail": self._packer.pack(compact_json(detail))}
        return {
            "outcome": artifact.outcome, "approved": int(artifact.approved),
            "rounds_taken": artifact.rounds_taken, "termination_reason": artifact.termination_reason,
            "total_tokens": artifact.total_tokens, "cost_usd": _known_cost(artifact.usage),
            **packed, "finished": int(finished), **_artifact_progress(artifact),
        }

    def _exchange_row(self, artifact: Artifact, detail: dict, finished: bool) -> dict:
        agents = artifact.agents
        return {
            "run_id": artifact.run_id, "timestamp": artifact.timestamp, "symbol": artifact.symbol,
            "strategy_id": artifact.strategy_id, "player": agents.player, "coach": agents.coach,
            "model": agents.model, "player_class": agents.player_class, "coach_class": agents.coach_class,
            # Read off the detail's JSON form, dumped once for the row: the same text a dump of each gives.
            "market_time": detail["world_state"]["as_of"],
            "preset": self._preset_name(detail["constraint_snapshot"]),
            "repeat_id": artifact.repeat_id, **self._outcome_row(artifact, detail, finished),
        }

    @named_errors
    def get_exchange(self, run_id: str) -> Artifact | None:
        """The artifact of one exchange, rebuilt from its rows, or None."""
        row = self._db.execute("select run_id, timestamp, outcome, approved, termination_reason, total_tokens, "
                               "strategy_id, symbol, player, coach, model, player_class, coach_class, "
                               "cast(detail as blob), repeat_id "  # a damaged blob may have turned into text
                               "from exchanges where run_id = ?", [run_id]).fetchone()
        if row is None:
            return None
        rounds = [self._read_round(run_id, number, body) for number, body in self._db.execute(
            "select round, cast(body as blob) from rounds where run_id = ? order by round", [run_id])]
        (run_id, timestamp, outcome, approved, reason, tokens, strategy, symbol, player, coach, model, player_class,
         coach_class, detail, repeat_id) = row
        try:
            packed = json.loads(self._packer.unpack(detail))
        except DAMAGE as error:
            raise self._damaged(f"exchange {run_id}: its detail (snapshots, usage)", error) from None
        stored = {
            "run_id": run_id, "timestamp": timestamp, "outcome": outcome, "approved": bool(approved),
            "rounds_taken": sum(r.get("complete", True) for r in rounds), "termination_reason": reason,
            "total_tokens": tokens, **packed, "rounds": rounds,
            "strategy_id": strategy, "symbol": symbol, "repeat_id": repeat_id,
            "agents": {"player": player, "coach": coach, "model": model, "player_class": player_class,
                       "coach_class": coach_class},
        }
        try:
            return Artifact.model_validate(stored)
        except ValidationError as error:
            raise StoreError(f"database {self.path}: exchange {run_id} does not read back as an artifact: "
                             f"{explain(error)}") from None

    def _read_round(self, run_id: str, number: int, body: bytes) -> dict:
        try:
            return round_from(body, self._packer)
        except DAMAGE as error:
            raise self._damaged(f"exchange {run_id}: round {number}", error) from None

    def _damaged(self, what: str, error: Exception) -> StoreError:
        """The error for a stored row that does not read back: the file, the row, why."""
        cause = self.problem or f"{type(error).__name__}: {error}"
        return StoreError(f"database {self.path}: {what} is damaged and does not read back ({cause}); "
                          "the other exchanges still read")

    @named_errors
    def coach_memory(self, strategy_id: str) -> list[dict]:
        """Every memory row of one strategy."""
        cursor = self._db.execute("select * from coach_memory where strategy_id = ?", [strategy_id])
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor]

    @named_errors
    def memory_summary(self, strategy_id: str, limit: int = 10) -> list[dict]:
        """Which constraints this strategy broke most, per symbol: the Player's lessons."""
        rows = self._db.execute(
            "select symbol, \"constraint\", sum(1 - passed) as failures, count(*) as checks from coach_memory "
            "where strategy_id = ? group by symbol, \"constraint\" having failures > 0 "
            "order by failures desc, symbol, \"constraint\" limit ?", [strategy_id, limit]
        ).fetchall()
        return [{"symbol": s, "constraint": c, "failures": f, "checks": n} for s, c, f, n in rows]
